"""The one text that invites a supporter to note a contact, and their pause after a crisis."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from peerline.service.context import Context
from peerline.service.models import Supporter


def invite_to_debrief(
    rt: Context,
    supporter: Supporter,
    *,
    crisis: bool,
    conversation_id: int | None = None,
    via: str | None = None,
) -> None:
    """Invite a supporter to note the chat or call just ended; pause them after a crisis one.

    The pause keeps offers (and calls other than crisis calls) away for
    `PEERLINE_CRISIS_PAUSE_MINUTES`, unless they text #ready.
    """
    topics = ", ".join(rt.line.settings.note_topics)
    params: dict[str, Any] = {"topics": topics}
    minutes = rt.line.settings.crisis_pause_minutes
    if crisis and minutes:
        until = rt.now + timedelta(minutes=minutes)
        supporter.paused_until = max(supporter.paused_until or until, until)
        # A round just after the pause ends (a second late, so the pause has surely passed).
        rt.after_commit.match_at.append(until + timedelta(seconds=1))
        key, params["minutes"] = "debrief_invite_paused", minutes
    else:
        key = "debrief_invite"
    rt.to_supporter(supporter, key, conversation_id, via=via, **params)
