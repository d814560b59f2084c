"""The effect context: one transaction's session, clock, after-commit work, send and render."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol, TypeVar

from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from peerline.flows.catalogue import LANGUAGES, Catalogue, Phrase
from peerline.service import lanes, metrics, routing, segments
from peerline.service.availability import Rotas, load_line_rotas
from peerline.service.crisis_detection import ALIASES
from peerline.service.drafts import draft, write
from peerline.service.models import (
    ACTIVE,
    EXPIRED,
    OPEN_STATES,
    OUT_PENDING,
    PENDING,
    Alert,
    Contact,
    Conversation,
    Offer,
    OutboundMessage,
    Supporter,
    utcnow,
)
from peerline.service.services import LineServices

log = logging.getLogger(__name__)

LANGUAGE_NAMES = {"en": "English", "es": "Spanish"}
ERASE_WINDOW = timedelta(minutes=10)
ALIAS_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I or O: they read as 1 and 0
DEFAULT_CHAT_MINUTES = 20
# The texts that tell a queued texter their place; any of them lately makes another wait.
PLACE_IN_LINE = (
    "queued",
    "queued_returning",
    "crisis_queued",
    "still_waiting",
    "still_looking",
    "still_here",
    "same_ok",
)
# A question to the line while waiting ("hello? is anyone coming") is answered unless their
# place in line went out this lately: silence reads as nobody there, so a minute, not the
# reminder's minutes (PEERLINE_STILL_WAITING_MINUTES); a burst of questions within it gets one.
ASKED_QUIET = timedelta(seconds=60)
# The short answer to words after the menu (`menu_again`) is not said again this soon: texts
# of a burst ("💔", "😭", "🙏"; "hey", "u there?") were written before it could be read, while
# a question after it had arrived ("hello??" half a minute on) is answered again.
AGAIN_QUIET = timedelta(seconds=15)
# A BYE this soon after the question it asks in a chat flagged for crisis ends the chat.
BYE_ASKED = timedelta(minutes=10)
# Told again that someone is still not breathing, a worried texter hears 911 again after this.
EMERGENCY_AGAIN = timedelta(minutes=1)
# The texts that end in the line's menu ("reply YES to talk with a peer..."). Words written
# within MENU_QUIET of one get a short answer (`menu_again`), not the menu a second time.
MENU_TEXTS = (
    "welcome",
    "welcome_back",
    "welcome_story",
    "invite",
    "invite_story",
    "opted_in",
    "language_set",
    "open_now",
    "line_open",
    "help",
)
MENU_QUIET = timedelta(minutes=5)
# Words written this soon after a chat ended (nothing since) are about that chat: a 1-5 still
# rates it, other words reach its supporter while on shift, with a short, warm answer once.
AFTER_CHAT = timedelta(minutes=30)
# The answers to words after a chat: once each in that window.
AFTER_CHAT_REPLIES = ("after_chat", "after_chat_passed", "thanks_no_rating")
# While a number floods, the line does not repeat an automatic text within this window.
FLOOD_QUIET = timedelta(minutes=10)
# Chat texts still waiting to go to one person are joined into one SMS up to this many
# segments, and only when joining saves a segment. Two, as for every automatic text: a joined
# text holds a long code's slot for at most 2 s, so a crisis text written meanwhile still
# reaches the provider within 3 s (it waits behind at most the one text holding the slot), and
# a join that saves nothing would only keep a more urgent text from going in between.
COMBINE_SEGMENTS = 2
# A stuck queue is one alert: texted once, then kept up to date for this long unless resolved.
STUCK_QUEUE_REPEAT = timedelta(hours=1)
STUCK_QUEUE_LOCK = 0x50EE1A1E  # the transaction lock that makes it one alert
# Staff texts about a chat that name its crisis kind ({kind}): the offer of a texter who may be
# in crisis says which (runtime.offers passes the kind its round read; others read the record).
KIND_TEXTS = ("offer_priority",)
# The words for a crisis with no kind named (a call's "suicide" alone, a crisis transfer that
# failed): staff never read a category's code.
UNNAMED_CRISIS = "crisis_kind_unnamed"


def crisis_key_in(catalogue: Catalogue, category: str | None) -> str | None:
    """Return the catalogue key naming a crisis category in words, or None when the category
    names no kind (a crisis without one is stored as "crisis")."""
    if not category:
        return None
    key = f"crisis_kind_{ALIASES.get(category, category)}"
    if not catalogue.has("en", key):
        # A call or voicemail keeps 16 letters of its category ("burden_hopelessn").
        key = next((k for k in catalogue.texts["en"] if k.startswith(key)), key)
    return key if catalogue.has("en", key) and key != UNNAMED_CRISIS else None


def crisis_words_in(catalogue: Catalogue, category: str | None, language: str = "en") -> str:
    """Return a crisis category in words from a catalogue (what staff read, and the console
    shows), "no details" for a crisis with no kind it can name: never a code."""
    return catalogue.render(language, crisis_key_in(catalogue, category) or UNNAMED_CRISIS)


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


@dataclass
class JobsAfterCommit:
    """Work one transaction asks for, handed to the job queue only after it commits."""

    sends: list[int] = field(default_factory=list)
    expiries: list[tuple[int, int]] = field(default_factory=list)
    ticks: list[tuple[int, int]] = field(default_factory=list)
    chat_ticks: list[tuple[int, int]] = field(default_factory=list)
    open_notices: list[tuple[int, datetime]] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)  # call-backs to place
    # (queued at, offered at) of chats offered for the first time: counted once committed, so
    # that an offer tried and rolled back (`offers._make_way`) is not.
    first_offers: list[tuple[datetime | None, datetime]] = field(default_factory=list)
    match: bool = False
    match_at: list[datetime] = field(default_factory=list)  # pauses after a crisis chat end
    # (from number, id, lane) of texts written one by one: ranked in their senders' lanes at
    # once, with one pump job per sender, rather than a send job each.
    ranked: list[tuple[str, int, int]] = field(default_factory=list)

    def dispatch(self, line: LineServices) -> None:
        """Enqueue the work; a failure leaves it in the database for the sweep."""
        sends = self.sends
        if self.ranked:
            try:
                senders = line.lanes.add(
                    (lanes.sender_for(line.settings, number), message_id, lane)
                    for number, message_id, lane in self.ranked
                )
            except RedisError as exc:
                log.warning("texts not ranked (%s): send jobs instead", exc)
            else:
                crisis = {
                    lanes.sender_for(line.settings, number)
                    for number, _, lane in self.ranked
                    if lane == lanes.CRISIS
                }
                for sender in sorted(senders):
                    line.job_queue.pump(sender, urgent=sender in crisis)
                done = {message_id for _, message_id, _ in self.ranked}
                sends = [message_id for message_id in sends if message_id not in done]
        if len(sends) > 10:
            line.job_queue.send_many(sends)  # a fan-out: one round trip per thousand
        else:
            for outbound_id in sends:
                line.job_queue.send(outbound_id)
        for offer_id, seconds in self.expiries:
            line.job_queue.expire_offer(offer_id, seconds)
        for conversation_id, seconds in self.ticks:
            line.job_queue.queue_tick(conversation_id, seconds)
        for conversation_id, seconds in self.chat_ticks:
            line.job_queue.chat_tick(conversation_id, seconds)
        for conversation_id, at in self.open_notices:
            line.job_queue.notify_open(conversation_id, at)
        for call_id in self.calls:
            line.job_queue.place_call(call_id)
        for queued_at, offered_at in self.first_offers:
            metrics.first_offer(queued_at, offered_at)
        if self.match:
            line.job_queue.match()
        for at in self.match_at:
            line.job_queue.match_at(at)


class Reachable(Protocol):
    """Whom a text to a supporter needs: their phone and whether they opted out."""

    @property
    def phone_enc(self) -> str: ...

    @property
    def opted_out(self) -> bool: ...

    @property
    def language_list(self) -> list[str]: ...


def supporter_language(supporter: Reachable) -> str:
    """Return the language texts go to a supporter in: the first they speak that we write."""
    return next((lang for lang in supporter.language_list if lang in LANGUAGES), "en")


def relay_marks(rt: Context, language: str, *, raised: bool, other: bool) -> str:
    """Return the marks a relayed text carries for a supporter reading `language`: whether its
    words raised safety, whether they told of someone else at risk."""
    flag = rt.render(language, "safety_mark") + " " if raised else ""
    if other:
        flag += rt.render(language, "someone_else_mark") + " "
    return flag


class Context:
    """Apply effects within one transaction, collecting work for after the commit."""

    def __init__(self, line: LineServices, session: Session, now: datetime | None = None) -> None:
        self.line = line
        self.session = session
        self.now = now or utcnow()
        self.after_commit = JobsAfterCommit()
        # Supporters this transaction set away for missing offers (they are told once).
        self.set_away_now: set[int] = set()
        self.crisis_window = timedelta(minutes=line.settings.crisis_repeat_minutes)
        # Inside `about_a_call`: staff texts say call where the catalogue has a call's words.
        self._about_a_call = False
        # Each contact's number's lookup hashes under every key, by its sealed number: a step
        # asks for them several times (texts said lately, after a chat) and each is a decrypt
        # and a hash per key.
        self._phone_hashes: dict[str, list[str]] = {}

    def phone_hashes(self, contact: Contact) -> list[str]:
        """Return the lookup hashes of a contact's number under every key (the newest first),
        worked out once a transaction."""
        hashes = self._phone_hashes.get(contact.phone_enc)
        if hashes is None:
            vault = self.line.vault
            hashes = vault.lookup_hashes(vault.decrypt(contact.phone_enc))
            self._phone_hashes[contact.phone_enc] = hashes
        return hashes

    @contextmanager
    def about_a_call(self) -> Iterator[None]:
        """Within it, a catalogue text to a supporter that has a call's wording (the key with
        `_call` after it) is said with it, its purpose unchanged: the debrief invite after a
        phone call is the chat's, "call" for "chat"."""
        self._about_a_call = True
        try:
            yield
        finally:
            self._about_a_call = False

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
        commit. A text longer than Twilio takes goes as several messages, in order (the id
        returned is the last one's)."""
        message_id = 0
        for part in segments.split_body(text):
            message_id = write(
                self.session,
                draft(
                    self.line,
                    to_phone=to_phone,
                    recipient_kind=recipient_kind,
                    purpose=purpose,
                    text=part,
                    conversation_id=conversation_id,
                    now=self.now,
                    from_number=from_number,
                    valid_for=valid_for,
                ),
            )
            self.after_commit.sends.append(message_id)
            self.after_commit.ranked.append(
                (
                    from_number or self.line.settings.twilio_phone_number,
                    message_id,
                    lanes.lane_of(purpose),
                )
            )
        return message_id

    def crisis_key(self, category: str | None) -> str | None:
        """Return the catalogue key naming a crisis category in words, or None when the
        category names no kind (a crisis without one is stored as "crisis")."""
        return crisis_key_in(self.line.catalogue, category)

    def crisis_words(self, category: str | None, language: str = "en") -> str:
        """Return a crisis category in words for staff ("wishes to be dead", not "wish_dead");
        a crisis with no named kind, or one the catalogue cannot name, reads "no details",
        never a code."""
        return crisis_words_in(self.line.catalogue, category, language)

    def crisis_of(self, conversation_id: int) -> tuple[str | None, bool]:
        """Return the most urgent crisis category raised for a conversation's texter: in it
        (by their words or a supporter's #alert), or in their others within the crisis window
        (a texter flagged lately joins the line again at that priority); and whether it was
        raised only for someone else's danger: no text of the texter's own raised it ("my
        friend is going to kill herself tonight"), nor a supporter's #alert, in the same reach.
        One query (`routing.crises_of`, which reads a round's offers all at once)."""
        since = self.now - self.crisis_window
        return routing.crises_of(self.session, [conversation_id], since)[conversation_id]

    def crisis_kind(self, category: str | None) -> Callable[[str], str]:
        """Return a crisis category in words in whichever language a reader reads."""
        return partial(self.crisis_words, category)

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
        self,
        contact: Contact,
        conversation: Conversation | None,
        key: str,
        *,
        in_language: str | None = None,
        wording: str | None = None,
        **params: Any,
    ) -> None:
        """Send a catalogue text to a texter, unless they opted out (in `in_language`, this
        text only, else theirs; in the words of the key `wording`, when given, for `key`'s
        purpose)."""
        if contact.opted_out:
            return
        language = in_language or (conversation.language if conversation else contact.language)
        self.send(
            to_phone=self.line.vault.decrypt(contact.phone_enc),
            recipient_kind="texter",
            purpose=key,
            text=self.render(language, wording or key, params),
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
        wording: str | None = None,
        **params: Any,
    ) -> None:
        """Send a catalogue text (or given words) to a supporter, unless they opted out.

        `via` is the relay number of the chat or offer it concerns, so the supporter's phone
        keeps each chat in its own thread; without a pool everything comes from the line.
        `wording` is the key of its words when they are not `key`'s own (its purpose). A text
        that names a chat's crisis kind (KIND_TEXTS) is told it from the record when not given.
        """
        if supporter.opted_out:
            return
        if text is None:
            words = wording or key
            if self._about_a_call and self.line.catalogue.has("en", f"{words}_call"):
                words = f"{words}_call"
            if key in KIND_TEXTS and "kind" not in params and conversation_id is not None:
                category, others = self.crisis_of(conversation_id)
                params["kind"] = self.crisis_kind(category)
                if others and wording is None:
                    # Raised for someone else's danger: the offer says whose it is.
                    words = f"{key}_other"
            text = self.render(supporter_language(supporter), words, params)
        self.send(
            to_phone=self.line.vault.decrypt(supporter.phone_enc),
            recipient_kind="supporter",
            purpose=key,
            text=text,
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
        whole fits COMBINE_SEGMENTS and saves a segment: so each text goes exactly once, in
        order, on a line of its own that starts with the texter's alias. The row is locked: a
        worker about to send it waits, then reads it whole.
        """
        if supporter.opted_out:
            return
        via = conversation.relay_number
        if not self._join_pending(supporter.phone_enc, conversation.id, via, words):
            self.to_supporter(supporter, "relay", conversation.id, text=words, via=via)

    def _join_pending(
        self, phone_enc: str, conversation_id: int, via: str | None, words: str
    ) -> bool:
        """Join words to the recipient's newest text when it is a relay of this chat still
        pending (never tried), the whole fits COMBINE_SEGMENTS and takes fewer segments than
        the two apart; say whether it was."""
        vault = self.line.vault
        last = self.session.scalar(
            select(OutboundMessage)
            .where(
                OutboundMessage.to_hash == vault.lookup_hash(vault.decrypt(phone_enc)),
                OutboundMessage.status == OUT_PENDING,
            )
            .order_by(OutboundMessage.id.desc())
            .limit(1)
            .with_for_update()
        )
        if (
            last is None
            or last.status != OUT_PENDING
            or last.attempts != 0
            or last.purpose != "relay"
            or last.conversation_id != conversation_id
            or last.from_number != (via or self.line.settings.twilio_phone_number)
        ):
            return False
        before = vault.decrypt(last.body_enc)
        combined = f"{before}\n{words}"
        size = segments.count(combined)
        if size > COMBINE_SEGMENTS or size >= segments.count(before) + segments.count(words):
            return False
        last.body_enc, last.segments = vault.encrypt(combined), size
        self.session.flush()
        return True

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
        return len(told)

    def safety_alert(
        self,
        kind: str,
        conversation: Conversation | None,
        alias: str | Phrase,
        what: Phrase,
        *,
        queue: int | None = None,
        call: bool = False,
    ) -> int:
        """Alert on call that a texter or caller may be unsafe: the console keeps it in
        English, each coordinator reads it in their own language; return how many were
        texted. `queue` is how many wait, when the record does not say it yet; a `call`'s
        alert says nothing of the texting queue, which is not where a caller waits."""
        english = [self.line.catalogue.words("en", words) for words in (alias, what)]
        params: dict[str, Any] = {"alias": alias, "what": what}
        if queue is not None:
            params["queue"] = queue
        key = "safety_alert_call" if call else "safety_alert"
        return self.alert(kind, conversation, ": ".join(english), key=key, **params)

    def to_texter_words(self, conversation: Conversation, text: str) -> None:
        """Relay a supporter's words to the texter of a chat, joined (each on a line of its own
        that starts with the supporter's name) to the last one still waiting to go out."""
        contact = conversation.contact
        if contact.opted_out or self._join_pending(contact.phone_enc, conversation.id, None, text):
            return
        self.send(
            to_phone=self.line.vault.decrypt(contact.phone_enc),
            recipient_kind="texter",
            purpose="relay",
            text=text,
            conversation_id=conversation.id,
        )


def resolve_offer(rt: Context, offer_id: int, status: str) -> Offer | None:
    """Close a pending offer as declined or expired, and look for someone else.

    An expired offer (timed out, or never delivered) counts as missed: a supporter who
    misses `auto_away_after` in a row is set away, so offers going round again never
    keep a texter waiting on someone who is gone.
    """
    offer = _lock(rt.session, Offer, offer_id)
    if offer is None or offer.status != PENDING:
        return None
    offer.status, offer.resolved_at = status, rt.now
    rt.after_commit.match = True
    if status == EXPIRED:
        supporter = _lock(rt.session, Supporter, offer.supporter_id)
        # An offer made while they rested after a crisis chat (a texter in crisis, nobody else
        # free) may well be missed: that is no sign they are gone.
        resting = (
            supporter is not None
            and supporter.paused_until is not None
            and supporter.paused_until > offer.created_at
        )
        if supporter is not None and not resting:
            supporter.expired_in_row += 1
            if supporter.expired_in_row >= rt.line.settings.auto_away_after and not supporter.away:
                supporter.away = True
                rt.set_away_now.add(supporter.id)
                log.info("supporter %s set away after missed offers", supporter.id)
                left_with_nobody(rt, supporter)
    return offer


def left_with_nobody(rt: Context, supporter: Supporter) -> None:
    """Tell the on-call coordinators that setting `supporter` away for missed offers left
    texters waiting with nobody on shift to take them (everyone else away, at their cap, or
    missing offers too): once, as it happens. The stuck-queue alert would come only after
    PEERLINE_UNMATCHED_ALERT_SECONDS, and says nothing of why."""
    waiting = routing.queue_length(rt.session)
    if not waiting:
        return
    staff = routing.staffing(rt.session, rt.rotas(), rt.now, routing.policy_of(rt.line.settings))
    if staff.answering:
        return  # someone else takes chats: free now, or once their chat or rest ends
    rt.alert(
        "auto_away",
        None,
        f"{supporter.name} set away after {supporter.expired_in_row} missed offers; "
        f"nobody on shift can take chats ({staff.on_shift} on shift, {staff.away} away); "
        f"{waiting} waiting",
        key="auto_away_alert",
        supporter=supporter,
        name=supporter.name,
        count=supporter.expired_in_row,
        waiting=waiting,
    )


ContextKind = TypeVar("ContextKind", bound=Context)


@contextmanager
def transaction_of(
    kind: type[ContextKind], line: LineServices, now: datetime | None = None
) -> Iterator[ContextKind]:
    """Run a context of this kind in its own transaction; its work goes to Redis after
    commit."""
    with line.db.session() as session:
        context = kind(line, session, now)
        yield context
    context.after_commit.dispatch(line)


def transaction(line: LineServices, now: datetime | None = None) -> AbstractContextManager[Context]:
    """Run an effect context in its own transaction; its work goes to Redis after commit."""
    return transaction_of(Context, line, now)
