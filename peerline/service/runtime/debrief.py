"""After a chat: the supporter's debrief text, their pause after a crisis, notes, the record."""

from __future__ import annotations

from sqlalchemy import select

from peerline.flows.catalogue import Phrase
from peerline.flows.notes import Note
from peerline.service.context import Context
from peerline.service.debrief_invite import invite_to_debrief
from peerline.service.models import (
    ContactRecord,
    Conversation,
    DebriefRequest,
    SafetyEvent,
    Supporter,
)


def record_of(rt: Context, conversation: Conversation) -> ContactRecord:
    """Return the conversation's contact record, made on first use."""
    record = rt.session.scalar(
        select(ContactRecord).where(ContactRecord.conversation_id == conversation.id)
    )
    if record is None:
        record = ContactRecord(
            conversation_id=conversation.id,
            supporter_id=conversation.supporter_id,
            channel="sms",
            language=conversation.language,
            topics="",
            referred=False,
            returning_texter=False,
        )
        rt.session.add(record)
    return record


def _seconds(later: object, earlier: object) -> int | None:
    if later is None or earlier is None:
        return None
    return max(0, int((later - earlier).total_seconds()))  # type: ignore[operator]


def chat_ended(rt: Context, conversation: Conversation, supporter: Supporter | None) -> None:
    """Keep the chat's record and invite its supporter to note it; pause them after a crisis.

    Called however the chat ended (#done, BYE, time-out, #block, an erased texter): the
    supporter hears one text, in their language, with what they can do next.
    """
    record = record_of(rt, conversation)
    record.supporter_id = conversation.supporter_id
    record.language = conversation.language
    record.waited_seconds = _seconds(conversation.matched_at, conversation.queued_at)
    record.duration_seconds = _seconds(conversation.closed_at or rt.now, conversation.matched_at)
    record.ended_at = conversation.closed_at or rt.now
    record.crisis_category = rt.session.scalar(
        select(SafetyEvent.category)
        .where(SafetyEvent.conversation_id == conversation.id)
        .order_by(SafetyEvent.id.desc())
        .limit(1)
    ) or ("crisis" if conversation.crisis_at else None)
    record.returning_texter = (
        rt.session.scalar(
            select(Conversation.id)
            .where(
                Conversation.contact_id == conversation.contact_id,
                Conversation.id < conversation.id,
                Conversation.matched_at.is_not(None),
            )
            .limit(1)
        )
        is not None
    )
    if supporter is None:
        return
    invite_to_debrief(
        rt,
        supporter,
        crisis=conversation.crisis_at is not None,
        conversation_id=conversation.id,
        via=conversation.relay_number,
    )


def last_chat_of(
    rt: Context, supporter: Supporter, chat: Conversation | None
) -> Conversation | None:
    """Return the chat a #note, #referred or #debrief is about: the current one, else the last."""
    if chat is not None:
        return chat
    return rt.session.scalar(
        select(Conversation)
        .where(Conversation.supporter_id == supporter.id, Conversation.matched_at.is_not(None))
        .order_by(Conversation.matched_at.desc(), Conversation.id.desc())
        .limit(1)
    )


def save_note(rt: Context, conversation: Conversation, note: Note) -> None:
    """Keep a supporter's note on the chat's record; the few words encrypted, like a transcript."""
    # Words about a chat already purged or erased are not kept: it has no transcript.
    keep_note(rt, record_of(rt, conversation), note, words=conversation.purged_at is None)


def keep_note(rt: Context, record: ContactRecord, note: Note, *, words: bool = True) -> None:
    """Keep a note on a chat's or a call's record; its few words only when `words`."""
    if note.score is not None:
        record.supporter_score = note.score
    if note.topics:
        record.topics = ",".join(note.topics)
    if note.words and words:
        record.note_enc = rt.line.vault.encrypt(note.words)
    record.noted_at = rt.now


def mark_referred(rt: Context, conversation: Conversation) -> None:
    """Record that the chat gave a referral (#referred)."""
    record_of(rt, conversation).referred = True


def rated(rt: Context, conversation: Conversation, score: int) -> None:
    """Copy the texter's 1-5 onto the chat's record, when the chat had a supporter."""
    if conversation.matched_at is not None:
        record_of(rt, conversation).texter_rating = score


def ask_debrief(
    rt: Context,
    supporter: Supporter,
    conversation: Conversation | None,
    via: str | None = None,
    *,
    call_id: int | None = None,
    alias: str | Phrase | None = None,
) -> None:
    """Record a #debrief (once while open for that chat or call), alert on call, tell them."""
    if call_id is not None:
        same_chat = DebriefRequest.call_id == call_id
    elif conversation is not None:
        same_chat = DebriefRequest.conversation_id == conversation.id
    else:
        same_chat = DebriefRequest.conversation_id.is_(None) & DebriefRequest.call_id.is_(None)
    open_already = rt.session.scalar(
        select(DebriefRequest.id).where(
            DebriefRequest.supporter_id == supporter.id, same_chat, DebriefRequest.done_at.is_(None)
        )
    )
    if open_already is None:
        rt.session.add(
            DebriefRequest(
                supporter_id=supporter.id,
                conversation_id=conversation.id if conversation else None,
                call_id=call_id,
                created_at=rt.now,
            )
        )
    alias = alias or (conversation.contact.alias if conversation else "-")
    told = rt.alert(
        "debrief",
        conversation,
        f"{supporter.name} asked for a debrief",
        key="debrief_alert",
        supporter=supporter,
        name=supporter.name,
        alias=alias,
    )
    key = "debrief_ok" if told else "debrief_nobody_on_call"
    rt.to_supporter(supporter, key, conversation.id if conversation else None, via=via)


def ready(rt: Context, supporter: Supporter) -> None:
    """End a supporter's pause after a crisis chat, and look for a chat for them."""
    supporter.paused_until = None
    rt.after_commit.match = True
