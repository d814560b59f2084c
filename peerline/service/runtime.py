"""Carry out what the flows ask: the one place where messages are written and state changes."""

from __future__ import annotations

import logging
import math
import secrets
import statistics
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Protocol, cast

from sqlalchemy import Table, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached

from peerline.flows import effects as fx
from peerline.flows import supporter as supporter_flow
from peerline.flows import texter as texter_flow
from peerline.flows.keywords import Keyword, classify
from peerline.service import rota, routing, segments
from peerline.service.availability import Rotas, format_opening, load_line_rotas, rota_of
from peerline.service.line import Line, Unit
from peerline.service.models import (
    ACCEPTED,
    ACTIVE,
    CLOSED,
    DECLINED,
    EXPIRED,
    OPEN_STATES,
    OUT_PENDING,
    PENDING,
    QUEUED,
    RATING,
    WELCOMED,
    WITHDRAWN,
    Alert,
    Block,
    Contact,
    Conversation,
    Group,
    GroupSubscription,
    InboundMessage,
    Offer,
    OutboundMessage,
    SafetyEvent,
    Supporter,
    insert_on,
    utcnow,
)

log = logging.getLogger(__name__)

LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}
ERASE_WINDOW = timedelta(minutes=10)
ALIAS_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O: they read as 1 and 0
DEFAULT_CHAT_MINUTES = 20
# The texts that tell a queued texter their place; any of them lately makes another wait.
PLACE_IN_LINE = ("queued", "queued_returning", "still_waiting", "still_looking", "same_ok")
# While a number floods, the line does not repeat an automatic text within this window.
FLOOD_QUIET = timedelta(minutes=10)
# Relayed texts still waiting to go to a supporter are joined into one SMS up to this many
# segments (Twilio advises at most ten; four stays readable and arrives together).
COMBINE_SEGMENTS = 4
# A stuck queue is one alert: texted once, then kept up to date for this long unless resolved.
STUCK_QUEUE_REPEAT = timedelta(hours=1)
STUCK_QUEUE_LOCK = 0x50EE1A1E  # the transaction lock that makes it one alert


def _due(last: datetime | None, now: datetime, window: timedelta) -> bool:
    """Say whether something last done at `last` may be done again after `window`."""
    return last is None or now - last > window


def _lock(session: Session, model: Any, row_id: int) -> Any:
    """Return a row locked for this transaction (a no-op lock on SQLite, which serialises)."""
    # With the values as the lock found them: a row the session loaded before the lock would
    # otherwise keep what it read then (two #takes of one texter's parallel offers both saw
    # "queued" and both won).
    return session.scalar(
        select(model)
        .where(model.id == row_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


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


class Reachable(Protocol):
    """Whom a text to a supporter needs: their phone and whether they opted out."""

    @property
    def phone_enc(self) -> str: ...

    @property
    def opted_out(self) -> bool: ...


class Runtime:
    """Apply effects within one transaction, collecting work for after the commit."""

    def __init__(self, line: Line, session: Session, now: datetime | None = None) -> None:
        self.line = line
        self.session = session
        self.now = now or utcnow()
        self.unit = Unit()
        self.reply_via: str | None = None
        self.safety_raised = False
        # How many on-call coordinators the last alert was texted to (what #alert may claim).
        self.on_call_told = 0
        # Supporters this transaction set away for missing offers (they are told once).
        self._set_away_now: set[int] = set()
        self._crisis_window = timedelta(minutes=line.settings.crisis_repeat_minutes)

    # -- sending -------------------------------------------------------------------------

    def send(
        self,
        *,
        to_phone: str,
        recipient_kind: str,
        purpose: str,
        text: str,
        conversation_id: int | None,
        from_number: str | None = None,
        valid_for: int | None = None,
    ) -> int:
        """Write a message to the outbox and return its id; a worker sends it after the
        commit."""
        from peerline.service.outbox import draft, write

        message_id = write(
            self.session,
            draft(
                self.line,
                to_phone=to_phone,
                recipient_kind=recipient_kind,
                purpose=purpose,
                text=text,
                conversation_id=conversation_id,
                now=self.now,
                from_number=from_number,
                valid_for=valid_for,
            ),
        )
        self.unit.sends.append(message_id)
        return message_id

    def render(self, language: str, key: str, params: dict[str, Any] | None = None) -> str:
        """Return a catalogue text with the line's own placeholders filled."""
        values = dict(params or {})
        catalogue = self.line.catalogue
        nobody_free = values.pop("nobody_free", False)
        if "wait_minutes" in values:
            minutes = values.pop("wait_minutes")
            if nobody_free:
                values["wait"] = catalogue.render(language, "wait_nobody")
            elif minutes:
                values["wait"] = catalogue.render(language, "wait_minutes", minutes=minutes)
            else:
                values["wait"] = catalogue.render(language, "wait_unknown")
        return catalogue.render(language, key, **values)

    def to_texter(
        self, contact: Contact, conversation: Conversation | None, key: str, **params: Any
    ) -> None:
        """Send a catalogue text to a texter, unless they opted out."""
        if contact.opted_out:
            return
        language = conversation.language if conversation else contact.language
        self.send(
            to_phone=self.line.vault.decrypt(contact.phone_enc),
            recipient_kind="texter",
            purpose=key,
            text=self.render(language, key, params),
            conversation_id=conversation.id if conversation else None,
        )

    def to_supporter(
        self,
        supporter: Reachable,
        key: str,
        conversation_id: int | None = None,
        *,
        text: str | None = None,
        via: str | None = None,
        valid_for: int | None = None,
        **params: Any,
    ) -> None:
        """Send a catalogue text (or given words) to a supporter, unless they opted out.

        `via` is the relay number of the chat or offer it concerns, so the supporter's phone
        keeps each chat in its own thread; without a pool everything comes from the line.
        """
        if supporter.opted_out:
            return
        self.send(
            to_phone=self.line.vault.decrypt(supporter.phone_enc),
            recipient_kind="supporter",
            purpose=key,
            text=text if text is not None else self.render("en", key, params),
            conversation_id=conversation_id,
            from_number=via,
            valid_for=valid_for,
        )

    def relay_to_supporter(
        self, conversation: Conversation, supporter: Reachable, words: str
    ) -> None:
        """Relay one of a texter's texts to their supporter, joined to the last one still
        waiting to go out when a burst outruns the send rate.

        Only the supporter's newest message is joined to, only while it is a relay of this
        chat that no worker has begun to send (pending, never tried), and only while the
        whole fits COMBINE_SEGMENTS: so each text goes exactly once, in order, on a line of
        its own that starts with the texter's alias. The row is locked: a worker about to send
        it waits, then reads it whole.
        """
        if supporter.opted_out:
            return
        vault = self.line.vault
        via = conversation.relay_number
        last = self.session.scalar(
            select(OutboundMessage)
            .where(
                OutboundMessage.to_hash == vault.lookup_hash(vault.decrypt(supporter.phone_enc)),
                OutboundMessage.status == OUT_PENDING,
            )
            .order_by(OutboundMessage.id.desc())
            .limit(1)
            .with_for_update()
        )
        if (
            last is not None
            and last.status == OUT_PENDING
            and last.attempts == 0
            and last.purpose == "relay"
            and last.conversation_id == conversation.id
            and last.from_number == (via or self.line.settings.twilio_phone_number)
        ):
            combined = f"{vault.decrypt(last.body_enc)}\n{words}"
            if segments.count(combined) <= COMBINE_SEGMENTS:
                last.body_enc = vault.encrypt(combined)
                self.session.flush()
                return
        self.to_supporter(supporter, "relay", conversation.id, text=words, via=via)

    # -- reading state -------------------------------------------------------------------

    def open_conversation(self, contact_id: int) -> Conversation | None:
        """Return the contact's conversation that has not closed, if any."""
        return self.session.scalar(
            select(Conversation)
            .where(Conversation.contact_id == contact_id, Conversation.state.in_(OPEN_STATES))
            .order_by(Conversation.id.desc())
            .limit(1)
        )

    def chat_of(self, supporter_id: int, relay: str | None = None) -> Conversation | None:
        """Return the supporter's active chat on a relay number, or their only one."""
        query = select(Conversation).where(
            Conversation.supporter_id == supporter_id, Conversation.state == ACTIVE
        )
        if relay is not None:
            return self.session.scalar(query.where(Conversation.relay_number == relay).limit(1))
        chats = self.session.scalars(query.order_by(Conversation.matched_at.desc())).all()
        # Written to the line number while in several chats: we cannot tell which one.
        return chats[0] if len(chats) == 1 else None

    def pending_offer_of(self, supporter_id: int, relay: str | None = None) -> Offer | None:
        """Return the supporter's offer waiting for #take (on a relay number, if given)."""
        query = select(Offer).where(Offer.supporter_id == supporter_id, Offer.status == PENDING)
        if relay is not None:
            query = query.where(Offer.relay_number == relay)
        return self.session.scalar(query.order_by(Offer.id).limit(1))

    def rotas(self) -> Rotas:
        """Return the rotas, reading the time zone, holidays and rota version in one query."""
        return load_line_rotas(self.session, self.line.settings.line_timezone)

    def line_status(
        self, conversation: Conversation | None, language: str, priority: int = 0
    ) -> texter_flow.LineStatus:
        """Describe the line as a texter asking for a peer now would hear it (one who would
        join at `priority`, such as a crisis first text, if not queued yet)."""
        session = self.session
        rotas = self.rotas()
        tz = rotas.tz
        on_shift = rotas.on_shift(self.now)
        if conversation is not None and conversation.state == QUEUED:
            position = routing.queue_position(session, conversation)
        else:
            position = routing.queue_length(session, at_least=priority) + 1
        opening = None if on_shift else rotas.next_opening(self.now)
        staff = (
            routing.staffing(session, rotas, self.now, self.policy())
            if on_shift
            else routing.Staffing({})
        )
        return texter_flow.LineStatus(
            open_now=bool(on_shift),
            next_opening=format_opening(opening, tz, self.now, language) if opening else None,
            position=position,
            wait_minutes=self._expected_wait(position, staff),
            groups=self._groups_text(tz, language),
            nobody_free=bool(on_shift) and staff.taking_chats == 0,
        )

    def _expected_wait(self, position: int, staff: routing.Staffing) -> int | None:
        """Return the minutes a texter at `position` can expect to wait, from the line's own
        recent waits and chats and who is free now; None when nobody takes chats."""
        taking = staff.taking_chats
        if taking == 0:
            return None
        recent = self.session.execute(
            select(Conversation.queued_at, Conversation.matched_at, Conversation.closed_at)
            .where(Conversation.matched_at.is_not(None))
            .order_by(Conversation.id.desc())
            .limit(20)
        ).all()
        # Waits of the last day only: a wait from last week says little about this hour.
        waits = [
            (matched - queued).total_seconds() / 60
            for queued, matched, _ in recent
            if queued and matched and self.now - matched < timedelta(days=1)
        ]
        lengths = [
            (closed - matched).total_seconds() / 60
            for _, matched, closed in recent
            if closed and matched and closed >= matched
        ]
        timeout = self.line.settings.offer_timeout_seconds / 60
        if position <= staff.free:
            # Someone free is offered them at once: the wait is how long an offer takes.
            typical_wait = statistics.median(waits) if waits else timeout
            return max(1, math.ceil(min(typical_wait, timeout)))
        # Otherwise chats must end first: one each `length / taking` minutes on average, the
        # first after half a chat; never less than the people matched lately really waited.
        length = statistics.median(lengths) if lengths else DEFAULT_CHAT_MINUTES
        estimate = length * (position - staff.free - 0.5) / taking
        if waits:
            estimate = max(estimate, statistics.median(waits))
        return max(1, round(estimate))

    def _groups_text(self, tz: Any, language: str) -> str | None:
        from peerline.service.groups import upcoming_text

        return upcoming_text(self.session, tz, self.now, language)

    # -- texters -------------------------------------------------------------------------

    def contact_for(self, phone: str) -> Contact:
        """Return the contact for a number, locked for this transaction, creating it (with a
        fresh alias) if new."""
        vault = self.line.vault
        hashes = vault.lookup_hashes(phone)
        phone_hash = hashes[0]
        # Locked as it is read: a row locked after it was loaded keeps the values read before
        # the lock (the session does not overwrite an object it already holds).
        contact = self.session.scalar(
            select(Contact).where(Contact.phone_hash.in_(hashes)).with_for_update()
        )
        if contact is not None:
            return contact
        for attempt in range(40):
            # Short aliases while they last; each few collisions add a digit, so the line never
            # runs out (a letter and two digits alone would be used up by about 2,000 texters).
            digits = 2 + attempt // 4
            alias = secrets.choice(ALIAS_LETTERS) + str(
                10 ** (digits - 1) + secrets.randbelow(9 * 10 ** (digits - 1))
            )
            try:
                with self.session.begin_nested():
                    contact = Contact(
                        phone_hash=phone_hash,
                        phone_enc=vault.encrypt(phone),
                        alias=alias,
                        created_at=self.now,
                    )
                    self.session.add(contact)
                return contact
            except IntegrityError:
                # Either the alias is taken, or the same number arrived twice at once.
                existing = self.session.scalar(
                    select(Contact).where(Contact.phone_hash == phone_hash).with_for_update()
                )
                if existing is not None:
                    return existing
        raise RuntimeError("no free alias after 40 tries")

    def flooding(self, contact: Contact, inbound: InboundMessage, text: str) -> bool:
        """Say whether this number writes faster than PEERLINE_FLOOD_PER_MINUTE.

        A flood is never a reason to withhold words from a supporter or to skip the crisis
        check: every text is still stepped. It only quietens the line's own answers outside a
        chat (see `_quieten`), which is what a script or a prank would otherwise farm.
        """
        if classify(text) in (Keyword.STOP, Keyword.START, Keyword.HELP):
            return False  # opting out must work however fast someone texts
        recent = self.session.scalar(
            select(func.count())
            .select_from(InboundMessage)
            .where(
                InboundMessage.from_hash == inbound.from_hash,
                InboundMessage.received_at > inbound.received_at - timedelta(minutes=1),
            )
        )
        if (recent or 0) <= self.line.settings.flood_per_minute:
            return False
        log.info("flood from contact %s: stepped, automatic answers quietened", contact.id)
        return True

    def _said_lately(self, contact: Contact, key: str) -> bool:
        """Say whether the line sent this texter this automatic text within the quiet window."""
        to_hash = self.line.vault.lookup_hash(self.line.vault.decrypt(contact.phone_enc))
        return bool(
            self.session.scalar(
                select(OutboundMessage.id)
                .where(
                    OutboundMessage.to_hash == to_hash,
                    OutboundMessage.purpose == key,
                    OutboundMessage.created_at > self.now - FLOOD_QUIET,
                )
                .limit(1)
            )
        )

    def _quieten(self, contact: Contact, stage: str, effects: list[fx.Effect]) -> list[fx.Effect]:
        """Return a flooding texter's effects without automatic texts said lately.

        Words still reach a supporter and crisis resources still go out (they have their own
        window); what is withheld is an answer the texter already had in the last ten minutes.
        Outside a chat and the queue, they hear once why the line answers less.
        """
        kept: list[fx.Effect] = []
        withheld = False
        for effect in effects:
            if (
                isinstance(effect, fx.Reply)
                and effect.key != "crisis"
                and self._said_lately(contact, effect.key)
            ):
                withheld = True
                continue
            kept.append(effect)
        if withheld and stage not in (QUEUED, ACTIVE):
            if _due(contact.flood_noticed_at, self.now, FLOOD_QUIET):
                contact.flood_noticed_at = self.now
                kept.append(fx.Reply("flood_quiet"))
        return kept

    def texter_message(
        self,
        contact: Contact,
        inbound: InboundMessage,
        text: str,
        *,
        flood: bool = False,
        media: int = 0,
    ) -> None:
        """Step the texter's flow with one message (their contact locked by `contact_for`) and
        carry out its effects; a flood only quietens the line's automatic answers."""
        conversation = self.open_conversation(contact.id)
        returning = conversation is not None or bool(
            self.session.scalar(
                select(func.count())
                .select_from(Conversation)
                .where(Conversation.contact_id == contact.id)
            )
        )
        supporter = conversation.supporter if conversation else None
        previous_id = (
            self.previous_supporter_id(contact.id, conversation.id if conversation else None)
            if returning
            else None
        )
        previous = self.session.get(Supporter, previous_id) if previous_id else None
        state = texter_flow.TexterState(
            stage=conversation.state if conversation else texter_flow.NEW,
            language=conversation.language if conversation else contact.language,
            opted_out=contact.opted_out,
            returning=returning,
            supporter_name=supporter.name if supporter else None,
            previous_supporter=previous.name if previous and previous.active else None,
            crisis_reply_due=_due(contact.crisis_replied_at, self.now, self._crisis_window),
            erase_pending=not _due(contact.erase_requested_at, self.now, ERASE_WINDOW),
            still_waiting_due=self._still_waiting_due(conversation),
        )
        detection = self.line.crisis.detect(text)
        category = detection.category if detection.matched else None
        if state.stage == ACTIVE:
            status = texter_flow.LineStatus(open_now=True)  # relaying needs no rota
        else:
            # Crisis words join at their category's priority: the place they hear is true.
            priority = self.line.crisis.priority_of(category) if category else 0
            status = self.line_status(conversation, state.language, priority=priority)
        step = texter_flow.step(
            state, status, text, crisis=category, media=media, crisis_language=detection.language
        )
        if conversation is None and step.stage in OPEN_STATES:
            conversation = self._new_conversation(contact)
        if conversation is not None:
            inbound.conversation_id = conversation.id
        effects = step.effects
        if flood:
            effects = self._quieten(contact, step.stage, effects)
        for effect in effects:
            if (
                isinstance(effect, fx.JoinQueue)
                and conversation is not None
                and conversation.state == CLOSED
            ):
                # The last conversation just closed (a rating left unanswered): a new one
                # joins the queue, so the old one keeps its supporter and its record; a
                # crisis raised by these same words goes with it.
                closed, conversation = conversation, self._new_conversation(contact)
                conversation.priority, conversation.crisis_at = closed.priority, closed.crisis_at
                inbound.conversation_id = conversation.id
            self._texter_effect(effect, contact, conversation)
        if conversation is not None and step.stage in (*OPEN_STATES, CLOSED):
            if conversation.state != CLOSED or step.stage == CLOSED:
                conversation.state = step.stage
            if conversation.state == CLOSED and conversation.closed_at is None:
                conversation.closed_at = self.now

    def _still_waiting_due(self, conversation: Conversation | None) -> bool:
        """Say whether a queued texter may be told their place again: not when they heard it
        within the last few minutes (one text a burst, not one a message)."""
        if conversation is None or conversation.state != QUEUED:
            return True
        window = timedelta(minutes=self.line.settings.still_waiting_minutes)
        told = self.session.scalar(
            select(func.max(OutboundMessage.created_at)).where(
                OutboundMessage.conversation_id == conversation.id,
                OutboundMessage.purpose.in_(PLACE_IN_LINE),
            )
        )
        return _due(told, self.now, window)

    def _new_conversation(self, contact: Contact) -> Conversation:
        """Start a texter's new conversation, welcomed, in their language."""
        conversation = Conversation(
            contact_id=contact.id,
            state=WELCOMED,
            language=contact.language,
            created_at=self.now,
        )
        self.session.add(conversation)
        self.session.flush()
        return conversation

    def _texter_effect(
        self, effect: fx.Effect, contact: Contact, conversation: Conversation | None
    ) -> None:
        match effect:
            case fx.Reply(key=key, params=params):
                if key in ("crisis", "crisis_closed"):
                    contact.crisis_replied_at = self.now
                if key == "help_in_chat" and conversation and conversation.supporter:
                    params = {**params, "name": conversation.supporter.name}
                self.to_texter(contact, conversation, key, **params)
            case fx.Relay(text=text, picture=picture):
                if conversation is not None and conversation.supporter is not None:
                    nudge = self.line.settings.reply_nudge_minutes * 60
                    self.unit.chat_ticks.append((conversation.id, nudge))
                    flag = "[SAFETY] " if self.safety_raised else ""
                    mark = " " + self.render("en", "picture_too") if picture else ""
                    self.relay_to_supporter(
                        conversation, conversation.supporter, f"{flag}{contact.alias}: {text}{mark}"
                    )
            case fx.Notify(key=key, params=params):
                if conversation is not None and conversation.supporter is not None:
                    self.to_supporter(
                        conversation.supporter,
                        key,
                        conversation.id,
                        via=conversation.relay_number,
                        alias=contact.alias,
                        **params,
                    )
            case fx.SetOptOut(opted_out=opted_out):
                contact.opted_out = opted_out
                contact.opted_out_at = self.now if opted_out else None
                if opted_out:
                    # STOP means everything, group reminders included; START does not
                    # quietly bring them back.
                    self.subscribe(contact, False)
            case fx.Subscribe(on=on):
                self.subscribe(contact, on)
            case fx.WantCheckin():
                self.want_checkin(contact)
            case fx.SetLanguage(language=language):
                contact.language = language
                if conversation is not None:
                    conversation.language = language
            case fx.JoinQueue():
                assert conversation is not None
                conversation.state = QUEUED
                conversation.queued_at = conversation.queued_at or self.now
                conversation.notify_on_open = False
                self.unit.match = True
                self.unit.ticks.append((conversation.id, self._next_tick_delay(conversation)))
            case fx.LeaveQueue():
                if conversation is not None:
                    self.withdraw_offers(conversation, contact.alias)
            case fx.Close():
                if conversation is not None:
                    conversation.state = CLOSED
                    conversation.closed_at = conversation.closed_at or self.now
            case fx.Rate(score=score):
                if conversation is not None:
                    conversation.rating = score
                    conversation.state = CLOSED
            case fx.EndChat(by=by, ask_rating=ask_rating, opted_out=opted_out):
                if conversation is not None:
                    self.end_chat(conversation, by=by, ask_rating=ask_rating, opted_out=opted_out)
            case fx.RaiseSafety(source=source, category=category):
                if conversation is not None:
                    self.raise_safety(conversation, source, category)
            case fx.RequestErase():
                contact.erase_requested_at = self.now
            case fx.Erase():
                self.erase(contact)
            case fx.PreferPrevious():
                if conversation is not None:
                    conversation.preferred_supporter_id = self.previous_supporter_id(
                        contact.id, conversation.id
                    )
                    self.unit.match = True
            case fx.NotifyOnOpen():
                if conversation is not None:
                    conversation.notify_on_open = True
                    self.schedule_open_notice(conversation)
            case _:
                raise ValueError(f"a texter's flow cannot ask for {effect!r}")

    def previous_supporter_id(self, contact_id: int, current_id: int | None) -> int | None:
        """Return the supporter of the texter's last matched conversation, if any."""
        return self.session.scalar(
            select(Conversation.supporter_id)
            .where(
                Conversation.contact_id == contact_id,
                Conversation.supporter_id.is_not(None),
                Conversation.id != (current_id or 0),
                Conversation.state.in_((RATING, CLOSED)),
            )
            .order_by(Conversation.id.desc())
            .limit(1)
        )

    def schedule_open_notice(self, conversation: Conversation) -> None:
        """Schedule the 'we are open' text for when the rota next has someone on shift."""
        opening = self.rotas().next_opening(self.now)
        if opening is not None:
            self.unit.open_notices.append((conversation.id, opening))

    def withdraw_offers(self, conversation: Conversation, alias: str) -> None:
        """Withdraw pending offers for a conversation and tell the supporters."""
        offers = self.session.scalars(
            select(Offer).where(Offer.conversation_id == conversation.id, Offer.status == PENDING)
        ).all()
        for offer in offers:
            offer.status, offer.resolved_at = WITHDRAWN, self.now
            supporter = self.session.get(Supporter, offer.supporter_id)
            if supporter is not None:
                self.to_supporter(
                    supporter,
                    "offer_withdrawn",
                    conversation.id,
                    alias=alias,
                    via=offer.relay_number,
                )
        if offers:
            self.unit.match = True

    def end_chat(
        self,
        conversation: Conversation,
        *,
        by: str,
        ask_rating: bool = True,
        opted_out: bool = False,
    ) -> None:
        """End an active chat, free the supporter and tell the other side."""
        if conversation.state != ACTIVE:
            return
        contact, supporter = conversation.contact, conversation.supporter
        conversation.state = RATING if ask_rating else CLOSED
        conversation.closed_at, conversation.closed_by = self.now, by
        if supporter is not None:
            supporter.last_chat_ended_at = self.now
            if by == "texter":
                key = "texter_ended" if ask_rating else "texter_left"
                if opted_out:
                    # Carriers block every text to them now but their own confirmation
                    # (Twilio's says "Reply START to resubscribe"): the supporter hears why.
                    key = "texter_opted_out"
                self.to_supporter(
                    supporter,
                    key,
                    conversation.id,
                    alias=contact.alias,
                    via=conversation.relay_number,
                )
            else:
                self.to_texter(contact, conversation, "supporter_ended", name=supporter.name)
                if ask_rating:
                    self.to_texter(contact, conversation, "ask_rating")
        self.unit.match = True

    # -- supporters ----------------------------------------------------------------------

    def supporter_message(
        self, supporter: Supporter, inbound: InboundMessage, text: str, media: int = 0
    ) -> None:
        """Step a supporter's flow with one message (their row locked by the caller) and carry
        out its effects; pictures are not passed on, and the supporter hears so."""
        relay = (
            inbound.to_number
            if inbound.to_number in self.line.settings.twilio_relay_numbers
            else None
        )
        # The number they wrote to tells which chat or offer they mean; answers go back there.
        self.reply_via = relay
        chat = self.chat_of(supporter.id, relay)
        offer = self.pending_offer_of(supporter.id, relay)
        offered = self.session.get(Conversation, offer.conversation_id) if offer else None
        spec = self.line.holidays_spec(self.session)
        on_shift = rota.on_shift(
            rota_of(supporter),
            self.line.timezone(self.session),
            self.now,
            rota.Closures(spec) if spec else None,
        )
        state = supporter_flow.SupporterState(
            away=supporter.away,
            on_shift=on_shift,
            chat_alias=chat.contact.alias if chat else None,
            offer_id=offer.id if offer else None,
            offer_alias=offered.contact.alias if offered else None,
        )
        if chat is not None:
            inbound.conversation_id = chat.id
        if media:
            self.to_supporter(supporter, "picture_not_passed", chat.id if chat else None, via=relay)
            if not text.strip():
                return  # never an empty relay
        for effect in supporter_flow.step(state, text).effects:
            self._supporter_effect(effect, supporter, chat)

    def _supporter_effect(
        self, effect: fx.Effect, supporter: Supporter, chat: Conversation | None
    ) -> None:
        match effect:
            case fx.Reply(key=key, params=params):
                if key == "alert_ok":
                    # Say only what was done: whether anyone on call was really texted.
                    key = "alert_told" if self.on_call_told else "alert_nobody_on_call"
                self.to_supporter(
                    supporter, key, chat.id if chat else None, via=self.reply_via, **params
                )
            case fx.Relay(text=text):
                if chat is not None:
                    self.to_texter_words(chat, f"{supporter.name}: {text}")
            case fx.AcceptOffer(offer_id=offer_id):
                self.accept_offer(offer_id, supporter)
            case fx.DeclineOffer(offer_id=offer_id):
                self.resolve_offer(offer_id, DECLINED)
            case fx.EndChat(by=by, ask_rating=ask_rating):
                if chat is not None:
                    self.end_chat(chat, by=by, ask_rating=ask_rating)
            case fx.PassChat():
                if chat is not None:
                    self.pass_chat(chat, supporter)
            case fx.SetAway(away=away):
                supporter.away = away
                if away:
                    self.free_reminded_shift(supporter)
                    # Away means no offers at all, including any waiting on other numbers.
                    for other in self.session.scalars(
                        select(Offer).where(
                            Offer.supporter_id == supporter.id, Offer.status == PENDING
                        )
                    ):
                        self.resolve_offer(other.id, DECLINED)
                else:
                    supporter.expired_in_row = 0
                    self.unit.match = True
            case fx.SetOptOut(opted_out=opted_out):
                supporter.opted_out = opted_out
            case fx.RaiseSafety(source=source, category=category):
                if chat is not None:
                    self.raise_safety(chat, source, category, raised_by=supporter.name)
            case fx.PlaceCall(argument=argument):
                from peerline.service import calls

                calls.call_command(self, supporter, chat, argument)
            case fx.BlockTexter():
                if chat is not None:
                    alias = chat.contact.alias
                    self.block(chat.contact, f"#block by {supporter.name}", status="review")
                    self.alert("block_review", chat, f"{alias}: blocked by {supporter.name}")
            case _:
                raise ValueError(f"a supporter's flow cannot ask for {effect!r}")

    def to_texter_words(self, conversation: Conversation, text: str) -> None:
        """Relay a supporter's words to the texter of a chat."""
        contact = conversation.contact
        if contact.opted_out:
            return
        self.send(
            to_phone=self.line.vault.decrypt(contact.phone_enc),
            recipient_kind="texter",
            purpose="relay",
            text=text,
            conversation_id=conversation.id,
        )

    def accept_offer(self, offer_id: int, supporter: Supporter) -> bool:
        """Connect the supporter with the offered conversation, if it is still theirs."""
        offer = _lock(self.session, Offer, offer_id)
        if offer is None or offer.supporter_id != supporter.id or offer.status != PENDING:
            self.to_supporter(supporter, "no_offer", via=self.reply_via)
            return False
        conversation = _lock(self.session, Conversation, offer.conversation_id)
        if conversation is None or conversation.state != QUEUED:
            offer.status, offer.resolved_at = WITHDRAWN, self.now
            self.to_supporter(supporter, "already_taken", via=offer.relay_number)
            return False
        if routing.load_of(self.session, supporter.id) - 1 >= routing.sms_capacity(
            supporter, self.line.settings.twilio_relay_numbers
        ):
            self.to_supporter(supporter, "at_capacity", via=offer.relay_number)
            return False
        offer.status, offer.resolved_at = ACCEPTED, self.now
        conversation.state, conversation.supporter_id = ACTIVE, supporter.id
        conversation.matched_at, conversation.relay_number = self.now, offer.relay_number
        supporter.expired_in_row = 0
        contact = conversation.contact
        # Offered to several at once: the first #take wins and the others hear so.
        for other in self.session.scalars(
            select(Offer).where(
                Offer.conversation_id == conversation.id,
                Offer.status == PENDING,
                Offer.id != offer.id,
            )
        ).all():
            other.status, other.resolved_at = WITHDRAWN, self.now
            loser = self.session.get(Supporter, other.supporter_id)
            if loser is not None:
                self.to_supporter(loser, "already_taken", via=other.relay_number)
        self.session.flush()
        via = offer.relay_number
        backlog = self._waiting_words(conversation, offer.id)
        if backlog:
            self.to_supporter(
                supporter, "took_with_backlog", conversation.id, alias=contact.alias, via=via
            )
            for words in backlog:
                self.relay_to_supporter(conversation, supporter, f"{contact.alias}: {words}")
        else:
            self.to_supporter(supporter, "took", conversation.id, alias=contact.alias, via=via)
        self.to_texter(contact, conversation, "connected", name=supporter.name)
        return True

    def _waiting_words(self, conversation: Conversation, taking: int) -> list[str]:
        """Return what the texter wrote in this conversation before offer `taking` was
        taken: all of it, or since an earlier supporter took it (a chat handed back), oldest
        first.

        Keywords the line acted on (YES, GROUPS, ...) are left out; HELP and its kin are
        words to a supporter and stay in. Every other text stays, however many: the relay
        joins them into as few SMS as it can.
        """
        last_taken = self.session.scalar(
            select(func.max(Offer.resolved_at)).where(
                Offer.conversation_id == conversation.id,
                Offer.status == ACCEPTED,
                Offer.id != taking,
            )
        )
        query = select(InboundMessage).where(
            InboundMessage.conversation_id == conversation.id,
            InboundMessage.sender_kind == "texter",
        )
        if last_taken is not None:
            query = query.where(InboundMessage.received_at >= last_taken)
        rows = self.session.scalars(query.order_by(InboundMessage.id)).all()
        texts = [self.line.vault.decrypt(row.body_enc) for row in rows]
        words = (Keyword.NONE, Keyword.HELP, Keyword.RATING)
        # Twilio posts an empty body only with pictures: the supporter hears that one came.
        picture = self.render("en", "picture_waiting")
        return [t if t.strip() else picture for t in texts if not t.strip() or classify(t) in words]

    def resolve_offer(self, offer_id: int, status: str) -> Offer | None:
        """Close a pending offer as declined or expired, and look for someone else.

        An expired offer (timed out, or never delivered) counts as missed: a supporter who
        misses `auto_away_after` in a row is set away, so offers going round again never
        keep a texter waiting on someone who is gone.
        """
        offer = _lock(self.session, Offer, offer_id)
        if offer is None or offer.status != PENDING:
            return None
        offer.status, offer.resolved_at = status, self.now
        self.unit.match = True
        if status == EXPIRED:
            supporter = _lock(self.session, Supporter, offer.supporter_id)
            if supporter is not None:
                supporter.expired_in_row += 1
                if (
                    supporter.expired_in_row >= self.line.settings.auto_away_after
                    and not supporter.away
                ):
                    supporter.away = True
                    self._set_away_now.add(supporter.id)
                    log.info("supporter %s set away after missed offers", supporter.id)
        return offer

    def expire_offer(self, offer_id: int) -> None:
        """Time out an offer nobody took, offer the texter again at once, and tell the
        supporter truthfully where it went (set away if they keep missing offers)."""
        offer = self.session.get(Offer, offer_id)
        if offer is None or offer.status != PENDING or offer.expires_at > self.now:
            return
        offer = self.resolve_offer(offer_id, EXPIRED)
        if offer is None:
            return
        supporter = self.session.get(Supporter, offer.supporter_id)
        assert supporter is not None
        conversation = self.session.get(Conversation, offer.conversation_id)
        alias = conversation.contact.alias if conversation else "The texter"
        # Matched here, not in a later round, so that the text says where the offer went.
        made = self.find_offers()
        back_to_them = any(
            o.conversation_id == offer.conversation_id and o.supporter_id == supporter.id
            for o in made
        )
        elsewhere = self.session.scalar(
            select(func.count())
            .select_from(Offer)
            .where(
                Offer.conversation_id == offer.conversation_id,
                Offer.status == PENDING,
                Offer.supporter_id != supporter.id,
            )
        )
        if elsewhere:
            key = "offer_gone"
        elif back_to_them:
            key = ""  # the new offer itself says it timed out and comes back to them
        else:
            key = "offer_timed_out"
        if key:
            self.to_supporter(
                supporter, key, offer.conversation_id, alias=alias, via=offer.relay_number
            )
        if supporter.id in self._set_away_now:
            self.to_supporter(supporter, "auto_away", count=supporter.expired_in_row)
        self.announce(made, expired={offer.conversation_id: supporter.id})

    def pass_chat(self, conversation: Conversation, supporter: Supporter) -> None:
        """Hand a chat back to the queue, keeping the texter's place."""
        conversation.state, conversation.supporter_id = QUEUED, None
        conversation.matched_at = None
        supporter.last_chat_ended_at = self.now
        conversation.relay_number = None
        self.to_texter(conversation.contact, conversation, "finding_another", name=supporter.name)
        self.unit.match = True

    # -- safety, blocks and erasure -------------------------------------------------------

    def alert(
        self,
        kind: str,
        conversation: Conversation | None,
        detail: str,
        *,
        key: str = "safety_alert",
        supporter: Supporter | None = None,
        **params: Any,
    ) -> int:
        """Record an alert for the console and text every on-call coordinator about it;
        return how many coordinators could be texted."""
        self.session.add(
            Alert(
                kind=kind,
                conversation_id=conversation.id if conversation else None,
                supporter_id=supporter.id if supporter else None,
                detail=detail,
                created_at=self.now,
            )
        )
        if key == "safety_alert":
            params.setdefault("alias", conversation.contact.alias if conversation else "the line")
            params.setdefault("what", detail.split(": ", 1)[-1])
        params.setdefault("queue", routing.queue_length(self.session))
        on_call = self.session.scalars(
            select(Supporter).where(Supporter.on_call.is_(True), Supporter.active.is_(True))
        ).all()
        # The supporter the alert is about hears their own news in their own words.
        told = [
            c for c in on_call if (supporter is None or c.id != supporter.id) and not c.opted_out
        ]
        for coordinator in told:
            self.to_supporter(coordinator, key, **params)
        if not told:
            log.warning("no on-call coordinator to tell about a %s alert", kind)
        self.on_call_told = len(told)
        return len(told)

    def raise_safety(
        self, conversation: Conversation, source: str, category: str, raised_by: str | None = None
    ) -> None:
        """Put a conversation first, record the event, flag the supporter, alert on call."""
        first_in_window = _due(conversation.crisis_at, self.now, self._crisis_window)
        conversation.priority = max(conversation.priority, self.line.crisis.priority_of(category))
        conversation.crisis_at = self.now
        self.safety_raised = True
        self.session.add(
            SafetyEvent(
                conversation_id=conversation.id,
                source=source,
                category=category,
                created_at=self.now,
            )
        )
        if conversation.state == QUEUED:
            self.unit.match = True  # it now goes ahead of the queue
        alias = conversation.contact.alias
        if source == "supporter":
            self.alert("supporter_alert", conversation, f"{alias}: alert raised by {raised_by}")
            return
        if not first_in_window:
            return
        self.alert("crisis", conversation, f"{alias}: may be in crisis ({category})")
        supporter = conversation.supporter
        if conversation.state == ACTIVE and supporter is not None:
            self.to_supporter(
                supporter,
                "safety_flag",
                conversation.id,
                alias=alias,
                via=conversation.relay_number,
            )

    def blocked_message(self, phone: str, text: str) -> None:
        """Answer a blocked number only when its words may mean crisis: the crisis resources
        and an alert, at most once per crisis window; anything else stays unanswered."""
        detection = self.line.crisis.detect(text)
        if not detection.matched:
            return
        contact = self.contact_for(phone)
        if not _due(contact.crisis_replied_at, self.now, self._crisis_window):
            return
        contact.crisis_replied_at = self.now
        self.to_texter(contact, None, "crisis")
        # The alert points at their last conversation, where the console can lift the block.
        last = self.session.scalar(
            select(Conversation)
            .where(Conversation.contact_id == contact.id)
            .order_by(Conversation.id.desc())
            .limit(1)
        )
        self.alert(
            "blocked_crisis",
            last,
            f"{contact.alias}: blocked number wrote crisis words ({detection.category})",
            key="blocked_crisis_alert",
            alias=contact.alias,
        )

    def block(self, contact: Contact, reason: str, status: str = "active") -> None:
        """Stop answering a texter's number (until a coordinator lifts it)."""
        if self.session.scalar(select(Block.id).where(Block.phone_hash == contact.phone_hash)):
            return
        self.session.add(
            Block(
                phone_hash=contact.phone_hash,
                reason=reason,
                status=status,
                created_by=reason.split(" by ", 1)[-1],
                created_at=self.now,
            )
        )

    def erase(self, contact: Contact) -> None:
        """Erase a texter's number and every message of theirs, keeping anonymous counts."""
        phone = self.line.vault.decrypt(contact.phone_enc)
        hashes = self.line.vault.lookup_hashes(phone)
        conversations = self.session.scalars(
            select(Conversation).where(Conversation.contact_id == contact.id)
        ).all()
        ids = [c.id for c in conversations]
        for conversation in conversations:
            counted = self.session.scalar(
                select(func.count())
                .select_from(InboundMessage)
                .where(InboundMessage.conversation_id == conversation.id)
            )
            conversation.messages_in += int(counted or 0)
            conversation.purged_at = self.now
            if conversation.state != CLOSED:
                conversation.state, conversation.closed_at = CLOSED, self.now
        self.session.execute(
            delete(InboundMessage).where(
                or_(InboundMessage.conversation_id.in_(ids), InboundMessage.from_hash.in_(hashes))
            )
        )
        self.session.execute(
            delete(OutboundMessage).where(
                or_(OutboundMessage.conversation_id.in_(ids), OutboundMessage.to_hash.in_(hashes)),
                # Goodbyes to the supporter written in this same step still go out.
                OutboundMessage.id.not_in(self.unit.sends),
            )
        )
        from peerline.service.erasure import erase_elsewhere

        # Calls, call-backs and their recordings, alerts, reminders, texts kept aside (issue 16).
        erase_elsewhere(self.line, self.session, contact, phone, hashes, ids, self.now)
        # The row stays so reports keep their counts; nothing in it leads back to the person.
        contact.phone_hash = "erased-" + secrets.token_hex(16)
        contact.phone_enc = ""
        contact.opted_out, contact.erase_requested_at = True, None

    # -- reminders and chat timers --------------------------------------------------------

    def subscribe(self, contact: Contact, on: bool) -> None:
        """Start or stop a texter's group meeting reminders."""
        subscription = self.session.scalar(
            select(GroupSubscription).where(GroupSubscription.contact_id == contact.id)
        )
        if subscription is None:
            if on:
                self.session.add(
                    GroupSubscription(
                        contact_id=contact.id, created_at=self.now, updated_at=self.now
                    )
                )
            return
        subscription.active, subscription.updated_at = on, self.now

    def want_checkin(self, contact: Contact) -> None:
        """Schedule tomorrow's check-in after the texter's last chat, outside quiet hours."""
        from peerline.service.reminders import out_of_quiet_hours

        conversation = self.session.scalar(
            select(Conversation)
            .where(Conversation.contact_id == contact.id, Conversation.matched_at.is_not(None))
            .order_by(Conversation.id.desc())
            .limit(1)
        )
        if conversation is None:
            return
        tz = self.line.timezone(self.session)
        tomorrow = (self.now.astimezone(tz) + timedelta(days=1)).replace(second=0, microsecond=0)
        conversation.checkin_due_at = out_of_quiet_hours(
            tomorrow, tz, self.line.settings.quiet_hours
        )
        conversation.checkin_sent_at = None

    def free_reminded_shift(self, supporter: Supporter) -> None:
        """After a shift reminder, #away frees that shift and tells the on-call coordinator."""
        start, end = supporter.reminded_shift_start, supporter.reminded_shift_end
        if start is None or end is None or self.now >= end:
            return
        supporter.reminded_shift_start = supporter.reminded_shift_end = None
        tz = self.line.timezone(self.session)
        when = format_opening(start, tz, self.now, "en")
        self.to_supporter(supporter, "shift_freed")
        self.alert(
            "gap",
            None,
            f"{supporter.name} can't make the shift {when}",
            key="gap_alert",
            supporter=supporter,
            name=supporter.name,
            when=when,
        )

    def group_reminder(self, group_id: int, starts: datetime) -> int:
        """Text every subscriber before a meeting, once; return how many were written."""
        from peerline.service.outbox import draft, write_many
        from peerline.service.reminders import claim, subscribers

        group = self.session.get(Group, group_id)
        if group is None or starts <= self.now:
            return 0
        entry = claim(self.session, f"group-{group_id}-{int(starts.timestamp())}", self.now)
        if entry is None:
            return 0
        tz = self.line.timezone(self.session)
        join = f" Join: {group.join_url}" if group.join_url else ""
        valid = int((starts - self.now).total_seconds())
        people = subscribers(self.session)
        texts: dict[str, str] = {}  # the reminder in each language, rendered once
        drafts = []
        for phone_enc, language in people:
            if language not in texts:
                texts[language] = self.render(
                    language,
                    "group_reminder",
                    {
                        "group": group.name,
                        "when": format_opening(starts, tz, self.now, language),
                        "join": join,
                    },
                )
            # The same row `send` writes, each recipient and text encrypted on its own.
            drafts.append(
                draft(
                    self.line,
                    to_phone=self.line.vault.decrypt(phone_enc),
                    recipient_kind="texter",
                    purpose="group_reminder",
                    text=texts[language],
                    conversation_id=None,
                    now=self.now,
                    # A reminder that would arrive after the meeting began is not sent.
                    valid_for=valid,
                )
            )
        # Thousands of subscribers: written in bulk, not a flush per message.
        self.unit.sends.extend(write_many(self.session, drafts))
        entry.recipients = len(people)
        return len(people)

    def shift_reminder(self, supporter_id: int, start: datetime, end: datetime) -> bool:
        """Remind a supporter of their shift, once."""
        from peerline.service.reminders import claim

        supporter = self.session.get(Supporter, supporter_id)
        if supporter is None or not supporter.active or start <= self.now:
            return False
        if claim(self.session, f"shift-{supporter_id}-{int(start.timestamp())}", self.now) is None:
            return False
        supporter.reminded_shift_start, supporter.reminded_shift_end = start, end
        tz = self.line.timezone(self.session)
        self.to_supporter(
            supporter,
            "shift_reminder",
            when=format_opening(start, tz, self.now, "en"),
            valid_for=int((start - self.now).total_seconds()),
        )
        return True

    def checkin(self, conversation_id: int) -> bool:
        """Send the check-in a texter asked for, once."""
        conversation = _lock(self.session, Conversation, conversation_id)
        if (
            conversation is None
            or conversation.checkin_due_at is None
            or conversation.checkin_sent_at is not None
            or conversation.checkin_due_at > self.now + timedelta(minutes=1)
        ):
            return False
        conversation.checkin_sent_at = self.now
        self.to_texter(conversation.contact, None, "checkin")
        return True

    def chat_tick(self, conversation_id: int) -> int | None:
        """Nudge a supporter who has not answered, close a chat gone quiet; return next tick.

        A chat gone quiet in which the supporter never wrote goes back to the queue with an
        alert (nobody was with them); a chat flagged for safety never closes itself: its
        supporter is nudged and the on-call coordinator alerted, once each quiet period.
        """
        from peerline.service.reminders import last_words

        conversation = _lock(self.session, Conversation, conversation_id)
        if conversation is None or conversation.state != ACTIVE:
            return None
        settings = self.line.settings
        waiting, last_activity = last_words(self.session, conversation_id)
        idle = self.now - last_activity
        quiet = timedelta(minutes=settings.idle_close_minutes)
        if idle >= quiet and not self._supporter_wrote(conversation):
            self._unanswered(conversation, idle)
            return None
        if idle >= quiet and (conversation.crisis_at is not None or conversation.priority > 0):
            self._crisis_quiet(conversation, idle, last_activity)
            # Look again one quiet period on: the flag does not lapse while nobody writes.
            return max(1, int((quiet - idle % quiet).total_seconds()) + 1)
        if idle >= quiet:
            supporter = conversation.supporter
            conversation.state, conversation.closed_at = CLOSED, self.now
            conversation.closed_by = "idle"
            self.to_texter(conversation.contact, conversation, "chat_idle_closed")
            if supporter is not None:
                supporter.last_chat_ended_at = self.now
                self.to_supporter(
                    supporter,
                    "chat_idle_ended",
                    conversation.id,
                    alias=conversation.contact.alias,
                    via=conversation.relay_number,
                )
            self.unit.match = True
            return None
        answered = self.session.scalar(
            select(func.count())
            .select_from(InboundMessage)
            .where(
                InboundMessage.conversation_id == conversation_id,
                InboundMessage.sender_kind == "supporter",
                InboundMessage.id > (waiting.id if waiting else 0),
            )
        )
        if waiting is not None and not answered and conversation.nudged_inbound_id != waiting.id:
            waited = self.now - waiting.received_at
            if waited >= timedelta(minutes=settings.reply_nudge_minutes):
                conversation.nudged_inbound_id = waiting.id
                if conversation.supporter is not None:
                    self.to_supporter(
                        conversation.supporter,
                        "reply_nudge",
                        conversation.id,
                        alias=conversation.contact.alias,
                        minutes=int(waited.total_seconds() // 60),
                        via=conversation.relay_number,
                    )
        remaining = timedelta(minutes=settings.idle_close_minutes) - idle
        return max(1, int(remaining.total_seconds()) + 1)

    def _supporter_wrote(self, conversation: Conversation) -> bool:
        """Say whether the supporter wrote anything (words or a command) in this chat."""
        return bool(
            self.session.scalar(
                select(InboundMessage.id)
                .where(
                    InboundMessage.conversation_id == conversation.id,
                    InboundMessage.sender_kind == "supporter",
                    InboundMessage.received_at >= (conversation.matched_at or self.now),
                )
                .limit(1)
            )
        )

    def _unanswered(self, conversation: Conversation, idle: timedelta) -> None:
        """Put a texter whose supporter never wrote back in the queue, keeping their place,
        set that supporter away, and alert the on-call coordinator."""
        supporter, via = conversation.supporter, conversation.relay_number
        minutes = int(idle.total_seconds() // 60)
        alias = conversation.contact.alias
        name = supporter.name if supporter is not None else "their supporter"
        conversation.state, conversation.supporter_id = QUEUED, None
        conversation.matched_at, conversation.relay_number = None, None
        conversation.queued_at = conversation.queued_at or self.now
        if supporter is not None:
            supporter.last_chat_ended_at, supporter.away = self.now, True
            self.to_supporter(
                supporter,
                "chat_unanswered_supporter",
                conversation.id,
                alias=alias,
                minutes=minutes,
                via=via,
            )
        self.to_texter(conversation.contact, conversation, "chat_unanswered")
        self.alert(
            "unanswered",
            conversation,
            f"{alias}: no reply from {name} in {minutes} min; back in the queue",
            key="unanswered_alert",
            supporter=supporter,
            alias=alias,
            name=name,
            minutes=minutes,
        )
        self.unit.match = True
        self.unit.ticks.append((conversation.id, self._next_tick_delay(conversation)))

    def _crisis_quiet(
        self, conversation: Conversation, idle: timedelta, last_activity: datetime
    ) -> None:
        """Nudge the supporter of a flagged chat gone quiet and alert on call, once a period."""
        from peerline.service.reminders import claim

        quiet = timedelta(minutes=self.line.settings.idle_close_minutes)
        period = int(idle / quiet)
        key = f"crisis-quiet-{conversation.id}-{int(last_activity.timestamp())}-{period}"
        if claim(self.session, key, self.now) is None:
            return
        minutes = int(idle.total_seconds() // 60)
        alias, supporter = conversation.contact.alias, conversation.supporter
        name = supporter.name if supporter is not None else "no supporter"
        if supporter is not None:
            self.to_supporter(
                supporter,
                "crisis_quiet_nudge",
                conversation.id,
                alias=alias,
                minutes=minutes,
                via=conversation.relay_number,
            )
        self.alert(
            "crisis_quiet",
            conversation,
            f"{alias}: flagged chat quiet {minutes} min, kept open",
            key="crisis_quiet_alert",
            supporter=supporter,
            alias=alias,
            name=name,
            minutes=minutes,
        )

    # -- timers while waiting ------------------------------------------------------------

    def _next_tick_delay(self, conversation: Conversation) -> int:
        """Return seconds until the next wait update or unmatched alert is due."""
        settings = self.line.settings
        queued_at = conversation.queued_at or self.now
        update_due = queued_at + timedelta(
            seconds=settings.wait_update_seconds * (conversation.wait_updates + 1)
        )
        due = [update_due]
        if conversation.unmatched_alerted_at is None:
            due.append(queued_at + timedelta(seconds=settings.unmatched_alert_seconds))
        return max(1, int((min(due) - self.now).total_seconds()) + 1)

    def queue_tick(self, conversation_id: int) -> bool:
        """Send a due wait update and raise a due unmatched alert; say if still waiting."""
        conversation = _lock(self.session, Conversation, conversation_id)
        if conversation is None or conversation.state != QUEUED or conversation.queued_at is None:
            return False
        settings, waited = self.line.settings, self.now - conversation.queued_at
        due_updates = int(waited.total_seconds() // settings.wait_update_seconds)
        if due_updates > conversation.wait_updates:
            conversation.wait_updates = due_updates
            position = routing.queue_position(self.session, conversation)
            self.to_texter(conversation.contact, conversation, "still_looking", position=position)
        if (
            conversation.unmatched_alerted_at is None
            and waited.total_seconds() >= settings.unmatched_alert_seconds
        ):
            conversation.unmatched_alerted_at = self.now
            self.alert_unmatched(conversation, int(waited.total_seconds() // 60))
        return True

    def alert_unmatched(self, conversation: Conversation, minutes: int) -> None:
        """Tell the on-call coordinators that the queue is stuck: one alert that sums it up,
        not one text per texter; while it is open (for an hour) it is kept up to date."""
        session = self.session
        if self.line.db.is_postgres:
            # Texters crossing the threshold at the same moment make one alert, not several.
            session.execute(select(func.pg_advisory_xact_lock(STUCK_QUEUE_LOCK)))
        current = session.scalar(
            select(Alert)
            .where(
                Alert.kind == "unmatched",
                Alert.resolved_at.is_(None),
                Alert.created_at > self.now - STUCK_QUEUE_REPEAT,
            )
            .order_by(Alert.id.desc())
            .limit(1)
        )
        staff = routing.staffing(session, self.rotas(), self.now, self.policy())
        waiting = routing.queue_length(session)
        oldest = session.scalar(
            select(func.min(Conversation.queued_at)).where(Conversation.state == QUEUED)
        )
        longest = max(minutes, int((self.now - oldest).total_seconds() // 60) if oldest else 0)
        detail = (
            f"{waiting} waiting, the longest {longest} min; {staff.free} free of "
            f"{staff.on_shift} on shift, {staff.away} away"
        )
        if current is not None:
            current.detail = detail  # the console shows the queue as it is now
            return
        self.alert(
            "unmatched",
            None,
            detail,
            key="queue_stuck_alert",
            waiting=waiting,
            minutes=longest,
            on_shift=staff.on_shift,
            free=staff.free,
            away=staff.away,
        )

    def notify_open(self, conversation_id: int) -> None:
        """Tell a texter who asked that the line is open, once, if it is."""
        conversation = _lock(self.session, Conversation, conversation_id)
        if conversation is None or not conversation.notify_on_open:
            return
        if conversation.state not in (WELCOMED, RATING, CLOSED):
            conversation.notify_on_open = False
            return
        if not self.rotas().on_shift(self.now):
            # The rota changed since this was scheduled: wait for the new opening.
            self.schedule_open_notice(conversation)
            return
        conversation.notify_on_open = False
        self.to_texter(conversation.contact, conversation, "line_open")

    # -- matching ------------------------------------------------------------------------

    def policy(self) -> routing.Policy:
        """Return how offers are made, from the settings."""
        return routing.policy_of(self.line.settings)

    def match(self) -> list[routing.NewOffer]:
        """Offer waiting conversations to free supporters and announce the offers."""
        offers = self.find_offers()
        self.announce(offers)
        return offers

    def find_offers(self) -> list[routing.NewOffer]:
        """Write offers of waiting conversations to free supporters (not yet announced)."""
        locking = self.line.db.is_postgres
        return routing.match(self.session, self.rotas(), self.now, self.policy(), locking=locking)

    def announce(
        self, offers: Sequence[routing.NewOffer], expired: dict[int, int] | None = None
    ) -> None:
        """Text each offer to its supporter and time it out; `expired` maps a conversation
        to the supporter whose offer of it has just timed out."""
        timeout = self.line.settings.offer_timeout_seconds
        for offer in offers:
            # Routing hands over what the text needs: nothing is read again here.
            note = ""
            if not offer.language_matched:
                name = LANGUAGE_NAMES.get(offer.language, offer.language)
                note = f" (writes in {name}; no {name} speaker is free)"
            again = ""
            if offer.again:
                # Everyone free had already had it: true whether one supporter is free or more.
                if (expired or {}).get(offer.conversation_id) == offer.supporter_id:
                    again = " Your offer timed out; everyone free has had it, so it comes back."
                else:
                    again = " Everyone free has had it, so it comes round to you again."
            elif offer.alongside:
                again = " Another peer has this offer too: the first #take wins."
            self.to_supporter(
                offer.supporter,
                "offer_priority" if offer.priority > 0 else "offer",
                offer.conversation_id,
                alias=offer.alias,
                minutes=max(1, round(timeout / 60)),
                language_note=note,
                waited=_waited(offer.queued_at, self.now),
                returning=_returning(offer, self.now),
                again=again,
                via=offer.relay_number,
                # An offer that arrives after it timed out would only confuse.
                valid_for=timeout,
            )
            self.unit.expiries.append((offer.offer_id, timeout))


def _waited(queued_at: datetime | None, now: datetime) -> str:
    """Say how long a texter has waited, for an offer's text."""
    minutes = int((now - queued_at).total_seconds() // 60) if queued_at else 0
    if minutes < 1:
        return "just joined the line"
    if minutes < 120:
        return f"waiting {minutes} min"
    return f"waiting {minutes // 60} h {minutes % 60} min"


def _returning(offer: routing.NewOffer, now: datetime) -> str:
    """Say whether the texter talked with a peer before; with whom only when they asked for
    this supporter again (their consent to continuity)."""
    if offer.last_talked is not None:
        return f", returning: you talked with them {_ago(offer.last_talked, now)}"
    return ", returning texter" if offer.returning else ""


def _ago(when: datetime, now: datetime) -> str:
    """Say roughly how long ago something was, in a supporter's text."""
    days = (now - when).days
    if days < 1:
        return "less than a day ago"
    if days < 2:
        return "a day ago"
    if days < 7:
        return f"{days} days ago"
    if days < 14:
        return "last week"
    if days < 31:
        return f"{days // 7} weeks ago"
    return "over a month ago"


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


# What Advanced Opt-Out decided, as the word our flows know. HELP is not here: its words
# are the texter's own, and in a chat they go to the supporter as written.
OPT_OUT_WORDS = {"STOP": "STOP", "START": "START"}


@contextmanager
def step(line: Line, now: datetime | None = None) -> Iterator[Runtime]:
    """Run a Runtime in its own transaction; its queued work goes to Redis after the commit."""
    with line.db.session() as session:
        runtime = Runtime(line, session, now)
        yield runtime
    runtime.unit.dispatch(line)


def receive_sms(line: Line, message: Inbound, now: datetime | None = None) -> bool:
    """Record one inbound SMS and step its flow; return False when it was a duplicate."""
    with step(line, now) as runtime:
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
            runtime.supporter_message(supporter, inbound, body, media=message.media)
        elif blocked:
            # Kept on record and unanswered, unless the words may mean crisis.
            runtime.blocked_message(message.from_number, body)
        else:
            contact = runtime.contact_for(message.from_number)
            flood = runtime.flooding(contact, inbound, body)
            runtime.texter_message(contact, inbound, body, flood=flood, media=message.media)
    return True


def run_matching(line: Line, now: datetime | None = None) -> Sequence[routing.NewOffer]:
    """Run one matching round in its own transaction."""
    with step(line, now) as runtime:
        return runtime.match()


def expire_offer(line: Line, offer_id: int, now: datetime | None = None) -> None:
    """Time out one offer in its own transaction."""
    with step(line, now) as runtime:
        runtime.expire_offer(offer_id)


def overdue_offers(session: Session, now: datetime) -> list[int]:
    """Return pending offers past their time, whose time-out job may have been lost."""
    return list(
        session.scalars(
            select(Offer.id)
            .where(Offer.status == PENDING, Offer.expires_at < now - timedelta(seconds=5))
            .order_by(Offer.id)
        )
    )


def catch_up_timers(line: Line, now: datetime) -> int:
    """Run waiting-texter timers and open notices that are due, whatever Redis lost."""
    with line.db.session() as session:
        waiting = list(session.scalars(select(Conversation.id).where(Conversation.state == QUEUED)))
        wanting = list(
            session.scalars(select(Conversation.id).where(Conversation.notify_on_open.is_(True)))
        )
    for conversation_id in waiting:
        with step(line, now) as runtime:
            runtime.queue_tick(conversation_id)
    for conversation_id in wanting:
        with step(line, now) as runtime:
            runtime.notify_open(conversation_id)
    return len(waiting) + len(wanting)


def replay_spooled(line: Line) -> int:
    """Feed webhooks spooled while the database was down through the normal path."""
    from peerline.service import outbox
    from peerline.service.privacy import BadPhoneNumber, normalise_phone

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
