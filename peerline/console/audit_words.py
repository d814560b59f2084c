"""What each audit entry's code means, in words a coordinator reads in the log."""

from __future__ import annotations

# Codes stay in the database (they are what filters and tests match); the page shows these.
WORDS = {
    "sign_in": "signed in",
    "sign_in.failed": "failed to sign in",
    "sign_in.slowed": "sign-in slowed after many tries",
    "sign_out": "signed out",
    "password.changed": "changed a password",
    "sessions.ended": "ended sessions",
    "account.access": "changed an account's access",
    "supporter.added": "added a supporter",
    "supporter.edited": "edited a supporter",
    "supporter.deactivated": "deactivated a supporter",
    "supporter.reactivated": "reactivated a supporter",
    "supporter.number_viewed": "viewed a supporter's number",
    "shift.added": "added a shift",
    "shift.moved": "moved a shift",
    "shift.removed": "removed a shift",
    "cover.added": "added a cover shift",
    "cover.removed": "removed a cover shift",
    "time_off.added": "added time off",
    "time_off.removed": "removed time off",
    "transcript.opened": "opened a transcript",
    "report.exported": "exported a report",
    "alert.resolved": "resolved an alert",
    "debrief.done": "marked a debrief request done",
    "alert.opened": "opened an alert's conversation",
    "block.added": "blocked a number",
    "block.lifted": "lifted a block",
    "block.upheld": "upheld a block after review",
    "callback.done": "marked a call-back done",
    "callback.reopened": "reopened a call-back",
    "voicemail.listen": "listened to a voicemail",
    "group.added": "added a group",
    "group.edited": "edited a group's schedule",
    "group.removed": "removed a group",
    "group.cancelled": "cancelled a group meeting",
    "group.restored": "restored a group meeting",
    "crisis_review.opened": "opened a missed alert for review",
    "crisis_review.added": "taught the crisis detector",
}

FAMILIES = {
    "sign_in": "signing in",
    "sign_out": "signing out",
    "password": "passwords",
    "sessions": "sessions",
    "account": "accounts",
    "supporter": "supporters",
    "shift": "shifts",
    "cover": "cover shifts",
    "time_off": "time off",
    "transcript": "transcripts",
    "report": "reports",
    "alert": "alerts",
    "block": "blocks",
    "callback": "call-backs",
    "voicemail": "voicemails",
    "group": "groups",
    "crisis_review": "crisis review",
}


def in_words(action: str) -> str:
    """Return an audit code as words ("sign_in" -> "signed in"); an unknown code, readably."""
    return WORDS.get(action) or action.replace("_", " ").replace(".", ": ")


def family_words(family: str) -> str:
    """Return an audit code family ("shift") as the filter names it ("shifts")."""
    return FAMILIES.get(family) or family.replace("_", " ")
