"""Texter intake: record an inbound SMS once, find its contact, run it through its flow."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import make_transient_to_detached

from peerline.flows.keywords import Keyword, classify
from peerline.flows.texter import ATTEMPT
from peerline.service import outbox
from peerline.service.context import (
    Context,
    _due,
    transaction,
)
from peerline.service.models import (
    Block,
    Contact,
    Conversation,
    InboundMessage,
    Supporter,
    insert_on,
    utcnow,
)
from peerline.service.privacy import BadPhoneNumber, normalise_phone
from peerline.service.runtime.supporter import supporter_message
from peerline.service.runtime.texter import (
    texter_message,
)
from peerline.service.services import LineServices

log = logging.getLogger(__name__)

_INBOX = cast(Table, InboundMessage.__table__)


@cache
def _record_inbound(dialect: str) -> Any:
    """Return the insert of an inbound text that writes nothing when its MessageSid is known,
    returning the new row's id."""
    return (
        insert_on(dialect, _INBOX)
        .on_conflict_do_nothing(index_elements=[_INBOX.c.message_sid])
        .returning(_INBOX.c.id)
    )


def flooding(rt: Context, contact: Contact, inbound: InboundMessage, text: str) -> bool:
    """Say whether this number writes faster than PEERLINE_FLOOD_PER_MINUTE.

    A flood is never a reason to withhold words from a supporter or to skip the crisis
    check: every text is still stepped. It only quietens the line's own answers outside a
    chat (see `_quieten`), which is what a script or a prank would otherwise farm.
    """
    if classify(text) in (Keyword.STOP, Keyword.START, Keyword.HELP):
        return False  # opting out must work however fast someone texts
    recent = rt.session.scalar(
        select(func.count())
        .select_from(InboundMessage)
        .where(
            InboundMessage.from_hash == inbound.from_hash,
            InboundMessage.received_at > inbound.received_at - timedelta(minutes=1),
        )
    )
    if (recent or 0) <= rt.line.settings.flood_per_minute:
        return False
    log.info("flood from contact %s: stepped, automatic answers quietened", contact.id)
    return True


def blocked_message(rt: Context, phone: str, text: str) -> None:
    """Answer a blocked number only when its words may mean crisis: the crisis resources
    and an alert, at most once per crisis window; anything else stays unanswered."""
    detection = rt.line.crisis.detect(text)
    if not detection.matched:
        return
    contact = rt.contact_for(phone)
    if not _due(contact.crisis_replied_at, rt.now, rt.crisis_window):
        return
    contact.crisis_replied_at = rt.now
    # An attempt under way hears 911 now and Poison Control first, as anyone would.
    attempt = detection.category == ATTEMPT
    rt.to_texter(contact, None, "crisis", wording="crisis_attempt" if attempt else None)
    # The alert points at their last conversation, where the console can lift the block.
    last = rt.session.scalar(
        select(Conversation)
        .where(Conversation.contact_id == contact.id)
        .order_by(Conversation.id.desc())
        .limit(1)
    )
    rt.alert(
        "blocked_crisis",
        last,
        f"{contact.alias}: blocked number wrote crisis words "
        f"({rt.crisis_words(detection.category)})",
        key="blocked_crisis_alert",
        alias=contact.alias,
    )


@dataclass(frozen=True)
class Inbound:
    """One inbound SMS webhook, parsed and checked."""

    message_sid: str
    from_number: str
    to_number: str
    body: str
    # Twilio's Advanced Opt-Out tells us what it made of the message: STOP, START or HELP.
    opt_out_type: str | None = None
    # When the webhook took it in, if it waited in Redis before being stepped.
    received_at: datetime | None = None
    # How many pictures came with it (Twilio's NumMedia); they are never passed on.
    media: int = 0

    def fields(self) -> dict[str, Any]:
        """Return the fields as a plain dict (as `dataclasses.asdict`, without its deep copy)."""
        return {
            "message_sid": self.message_sid,
            "from_number": self.from_number,
            "to_number": self.to_number,
            "body": self.body,
            "opt_out_type": self.opt_out_type,
            "received_at": self.received_at,
            "media": self.media,
        }


# What Advanced Opt-Out decided, as the word our flows know. HELP is not here: its words
# are the texter's own, and in a chat they go to the supporter as written.
OPT_OUT_WORDS = {"STOP": "STOP", "START": "START"}


def receive_sms(line: LineServices, message: Inbound, now: datetime | None = None) -> bool:
    """Record one inbound SMS and run it through its flow; return False when it was a duplicate."""
    with transaction(line, now) as runtime:
        session = runtime.session
        vault = line.vault
        hashes = vault.lookup_hashes(message.from_number)
        # Locked as it is read: a supporter's step starts from their row as it is now.
        supporter = session.scalar(
            select(Supporter).where(Supporter.phone_hash.in_(hashes)).with_for_update()
        )
        blocked = supporter is None and session.scalar(
            select(Block.id).where(Block.phone_hash.in_(hashes))
        )
        values = {
            "message_sid": message.message_sid,
            "from_hash": hashes[0],
            "to_number": message.to_number,
            "body_enc": vault.encrypt(message.body),
            "sender_kind": "supporter" if supporter else ("blocked" if blocked else "texter"),
            "conversation_id": None,
            # A backlog must not make texts sent minutes apart look like a flood.
            "received_at": min(message.received_at or runtime.now, runtime.now),
        }
        # The unique MessageSid, not a cache, is what makes a retried webhook act once: the
        # row is written only if no row has its MessageSid yet (no savepoint needed).
        dialect = session.get_bind().dialect.name
        inbound_id = session.connection().scalar(_record_inbound(dialect), values)
        if inbound_id is None:
            return False
        inbound = InboundMessage(id=inbound_id, **values)
        make_transient_to_detached(inbound)  # the row exists: changes to it become UPDATEs
        session.add(inbound)
        body = OPT_OUT_WORDS.get((message.opt_out_type or "").upper(), message.body)
        if supporter is not None:
            supporter_message(runtime, supporter, inbound, body, media=message.media)
        elif blocked:
            # Kept on record and unanswered, unless the words may mean crisis.
            blocked_message(runtime, message.from_number, body)
        else:
            contact = runtime.contact_for(message.from_number)
            flood = flooding(runtime, contact, inbound, body)
            texter_message(runtime, contact, inbound, body, flood=flood, media=message.media)
    return True


def replay_spooled(line: LineServices) -> int:
    """Feed webhooks spooled while the database was down through the normal path."""
    region = line.settings.default_region

    def handle(entry: dict[str, Any]) -> None:
        form = dict(entry["form"])
        if entry["kind"] == "status":
            with line.db.session() as session:
                code = form.get("ErrorCode")
                outbox.apply_status(
                    session,
                    form.get("MessageSid", ""),
                    (form.get("MessageStatus") or form.get("SmsStatus") or "").lower(),
                    int(code) if code and code.isdigit() else None,
                    utcnow(),
                    line,
                )
            return
        try:
            sender = normalise_phone(form["From"], region)
            to = normalise_phone(form.get("To") or line.settings.twilio_phone_number, region)
        except (KeyError, BadPhoneNumber):
            log.error("spooled webhook without a usable From: dropped")
            return
        receive_sms(
            line,
            Inbound(
                message_sid=form["MessageSid"],
                from_number=sender,
                to_number=to,
                body=form.get("Body", ""),
                opt_out_type=form.get("OptOutType") or None,
                media=int(form["NumMedia"]) if str(form.get("NumMedia", "")).isdigit() else 0,
            ),
        )

    return line.spool.replay(handle)
