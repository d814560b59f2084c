"""Safety: raising a crisis, blocking a number, erasing a texter."""

from __future__ import annotations

import logging
import secrets

from sqlalchemy import delete, func, or_, select, update

from peerline.flows.catalogue import Phrase
from peerline.flows.texter import ATTEMPT
from peerline.service import metrics, routing
from peerline.service.context import (
    Context,
    _due,
)
from peerline.service.erasure import erase_elsewhere
from peerline.service.models import (
    ACTIVE,
    CLOSED,
    QUEUED,
    Alert,
    Block,
    Contact,
    ContactRecord,
    Conversation,
    InboundMessage,
    OutboundMessage,
    SafetyEvent,
)

log = logging.getLogger(__name__)


def raise_safety(
    rt: Context,
    conversation: Conversation,
    source: str,
    category: str,
    raised_by: str | None = None,
    *,
    someone_else: bool = False,
    first_own: bool = False,
    joining: bool = False,
) -> int:
    """Put a conversation first, record the event, flag the supporter, alert on call; return
    how many on-call coordinators were texted (none when the alert was not due).

    `someone_else` says the words told of someone else at risk, not of the texter's own crisis:
    the supporter's flag says so. `first_own` says these are the texter's own crisis words for
    the first time in the window: a supporter flagged only for someone else is flagged again.
    `joining` says the same words put the texter in the queue (after this): the alert counts
    them among those waiting."""
    first_in_window = _news(rt, conversation, category)
    conversation.priority = max(conversation.priority, rt.line.crisis.priority_of(category))
    conversation.crisis_at = rt.now
    metrics.CRISIS_FLAGS.labels(source=source).inc()
    rt.session.add(
        SafetyEvent(
            conversation_id=conversation.id,
            source=source,
            category=category,
            created_at=rt.now,
        )
    )
    if conversation.state == QUEUED:
        rt.after_commit.match = True  # it now goes ahead of the queue
    alias = conversation.contact.alias
    if source == "supporter":
        raised = Phrase("alert_what_raised", {"name": raised_by})
        return rt.safety_alert("supporter_alert", conversation, alias, raised)
    if not first_in_window:
        supporter = conversation.supporter
        if first_own and conversation.state == ACTIVE and supporter is not None:
            # The window's first flag was for someone else's risk ("Ask how they are too"):
            # the texter's own crisis now is news to the supporter.
            _flag(rt, conversation, category)
        return 0
    what = "alert_what_someone_else" if someone_else else "alert_what_crisis"
    if conversation.contact.opted_out:
        what = "alert_what_opted_out"  # the coordinator cannot text them back either
    crisis = Phrase(what, {"kind": rt.crisis_kind(category)})
    queue = None
    if joining and conversation.state != QUEUED:
        # Counted as waiting: "Queue: 0 waiting" read as if nobody waited, them included.
        queue = routing.queue_length(rt.session) + 1
    told = rt.safety_alert("crisis", conversation, alias, crisis, queue=queue)
    supporter = conversation.supporter
    if conversation.state == ACTIVE and supporter is not None:
        if someone_else:
            via = conversation.relay_number
            rt.to_supporter(
                supporter, "safety_flag_someone_else", conversation.id, alias=alias, via=via
            )
        else:
            _flag(rt, conversation, category)
    return told


def _news(rt: Context, conversation: Conversation, category: str) -> bool:
    """Say whether crisis words of `category` are news to on call: nothing was raised in this
    very conversation within the crisis window, or only less urgent kinds. A flag raised in an
    earlier conversation (perhaps wrongly), whose priority a new one took on joining the line,
    holds no alert back; nor do "i want to die" raised minutes ago the alert for pills taken
    now. Once a conversation per level: the same kind again, or a lesser one, is not news."""
    if _due(conversation.crisis_at, rt.now, rt.crisis_window):
        return True
    raised = rt.session.scalars(
        select(SafetyEvent.category).where(
            SafetyEvent.conversation_id == conversation.id,
            SafetyEvent.created_at > rt.now - rt.crisis_window,
        )
    ).all()
    level = rt.line.crisis.priority_of(category)
    return all(rt.line.crisis.priority_of(earlier) < level for earlier in raised)


def _flag(rt: Context, conversation: Conversation, category: str) -> None:
    """Flag a chat's texter to its supporter with the kind of crisis in words; for an attempt
    under way, that they were texted to call 911 now (texter.ATTEMPT's words)."""
    supporter = conversation.supporter
    if supporter is None:
        return
    rt.to_supporter(
        supporter,
        "safety_flag",
        conversation.id,
        wording="safety_flag_attempt" if category == ATTEMPT else None,
        alias=conversation.contact.alias,
        kind=rt.crisis_kind(category),
        via=conversation.relay_number,
    )


# The alert that a texter who may be in crisis opted out (STOP): once a conversation.
OPTED_OUT_IN_CRISIS = "crisis_opted_out"


def opted_out_in_crisis(rt: Context, conversation: Conversation, *, erased: bool = False) -> int:
    """Alert on call that a texter who may be in crisis (their own crisis flagged within the
    crisis window, not only someone else's danger they told of) opted out (STOP, END, ...)
    and can no longer be texted, by alias, naming the supporter of the chat they left; once a
    conversation. Return how many coordinators were texted (none when told already, or
    when the crisis was someone else's).

    Carriers let nothing through after an opt-out but their own confirmation: the supporter
    hears the texter left, and without this nobody who could still act would know. `erased`:
    they erased their number and texts (DELETE confirmed), which leaves the line as unable to
    reach them (the alert's text goes out; its record goes with the erasure)."""
    told_already = rt.session.scalar(
        select(Alert.id)
        .where(Alert.kind == OPTED_OUT_IN_CRISIS, Alert.conversation_id == conversation.id)
        .limit(1)
    )
    if told_already is not None:
        return 0
    category, others = rt.crisis_of(conversation.id)
    if others:
        # Raised for someone else's danger ("my friend is going to kill herself tonight"):
        # on call heard of it then; the texter's STOP is not news of a crisis of theirs.
        return 0
    kind = rt.crisis_kind(category)
    supporter = conversation.supporter if conversation.state == ACTIVE else None
    if erased:
        what = Phrase("alert_what_erased", {"kind": kind})
    elif supporter is not None:
        what = Phrase("alert_what_stopped_chat", {"kind": kind, "name": supporter.name})
    else:
        what = Phrase("alert_what_stopped", {"kind": kind})
    # They leave the line with these same words: not counted among those waiting.
    queue = routing.queue_length(rt.session) - (1 if conversation.state == QUEUED else 0)
    alias = conversation.contact.alias
    return rt.safety_alert(OPTED_OUT_IN_CRISIS, conversation, alias, what, queue=max(0, queue))


def block(rt: Context, contact: Contact, reason: str, status: str = "active") -> None:
    """Stop answering a texter's number (until a coordinator lifts it)."""
    if rt.session.scalar(select(Block.id).where(Block.phone_hash == contact.phone_hash)):
        return
    rt.session.add(
        Block(
            phone_hash=contact.phone_hash,
            reason=reason,
            status=status,
            created_by=reason.split(" by ", 1)[-1],
            created_at=rt.now,
        )
    )


def erase(rt: Context, contact: Contact) -> None:
    """Erase a texter's number and every message of theirs, keeping anonymous counts."""
    phone = rt.line.vault.decrypt(contact.phone_enc)
    hashes = rt.line.vault.lookup_hashes(phone)
    conversations = rt.session.scalars(
        select(Conversation).where(Conversation.contact_id == contact.id)
    ).all()
    ids = [c.id for c in conversations]
    for conversation in conversations:
        counted = rt.session.scalar(
            select(func.count())
            .select_from(InboundMessage)
            .where(InboundMessage.conversation_id == conversation.id)
        )
        conversation.messages_in += int(counted or 0)
        conversation.purged_at = rt.now
        if conversation.state != CLOSED:
            conversation.state, conversation.closed_at = CLOSED, rt.now
    rt.session.execute(
        delete(InboundMessage).where(
            or_(InboundMessage.conversation_id.in_(ids), InboundMessage.from_hash.in_(hashes))
        )
    )
    rt.session.execute(
        delete(OutboundMessage).where(
            or_(OutboundMessage.conversation_id.in_(ids), OutboundMessage.to_hash.in_(hashes)),
            # Goodbyes to the supporter written in this same step still go out.
            OutboundMessage.id.not_in(rt.after_commit.sends),
        )
    )

    # A supporter's few words about these chats go with the transcript; the counts stay.
    rt.session.execute(
        update(ContactRecord).where(ContactRecord.conversation_id.in_(ids)).values(note_enc=None)
    )
    # Calls, call-backs and their recordings, alerts, reminders, texts kept aside (issue 16).
    erase_elsewhere(rt.line, rt.session, contact, phone, hashes, ids, rt.now)
    # The row stays so reports keep their counts; nothing in it leads back to the person.
    contact.phone_hash = "erased-" + secrets.token_hex(16)
    contact.phone_enc = ""
    contact.opted_out, contact.erase_requested_at = True, None
