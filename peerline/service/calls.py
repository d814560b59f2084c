"""The voice line: menu, screened forwarding to supporters, voicemail and masked call-backs.

Each webhook step is one function here that opens its own transaction, moves the call on
and returns an *answer*: plain data saying what the person on the line hears next. The
voice blueprint renders answers as TwiML; nothing here knows about XML or Flask.

Every step is safe to repeat: Twilio retries webhooks, so a step that finds the call already
past it answers with what the call should hear now instead of acting again.
"""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import yaml
from redis.exceptions import RedisError
from sqlalchemy import event, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from peerline.service.availability import Rotas, format_opening, load_rotas
from peerline.service.call_models import (
    BRIDGING,
    CALLBACK,
    CALLING_SUPPORTER,
    CONNECTED,
    DIALING,
    ENDED,
    FAILED,
    INBOUND,
    MENU,
    PLACING,
    REQUEST_CALLING,
    REQUEST_DONE,
    REQUEST_OPEN,
    RINGING,
    TRANSFERRED,
    VOICEMAIL,
    Call,
    CallbackRequest,
    CallLeg,
)
from peerline.service.call_states import MACHINE, STALE_AFTER, STATUS_RANK, TERMINAL, UNANSWERED
from peerline.service.context import Context, step
from peerline.service.line import Line
from peerline.service.models import (
    ACTIVE,
    PENDING,
    Alert,
    AuditEvent,
    Block,
    Contact,
    Conversation,
    Offer,
    SafetyEvent,
    Supporter,
    utcnow,
)
from peerline.service.settings import Settings, SettingsError

if TYPE_CHECKING:
    from twilio.rest import Client


log = logging.getLogger(__name__)

PREFIX = "/webhooks/voice"
# Twilio dials at most ten <Number>s at once in one <Dial>.
MAX_SIMULTANEOUS = 10
# Why a caller is asked to leave a message (each a prompt saying so).
LEAVE_REASONS = frozenset({"closed", "closed_no_shifts", "busy", "no_answer"})
# Menus without a choice (silence or a wrong key) before we connect the caller anyway:
# someone who cannot press keys or speak clearly still reaches a person, and nobody loops.
MENUS_BEFORE_PEER = 2
# The crisis line to transfer to by the line's country, as a full E.164 number: a three-digit
# code such as 988 may not route through the provider. US and Canada: the 988 Lifeline's
# ten-digit number (what is said stays "9 8 8").
CRISIS_NUMBERS = {"US": "+18002738255", "CA": "+18002738255"}
# How far ahead, in days, an opening is named by its weekday alone; further, by its date.
WEEKDAY_HORIZON = 6


# -- settings ----------------------------------------------------------------------------


@dataclass(frozen=True)
class VoiceSettings:
    """The voice line's settings, read from `Settings.extra` with defaults, strictly."""

    strategy: str = "ring_all"  # ring_all: up to ten at once; sequential: one after another
    ring_seconds: int = 20  # short enough that a personal voicemail does not answer first
    max_rounds: int = 3
    crisis_number: str = CRISIS_NUMBERS["US"]
    calls_during_chat: bool = False
    # Text a caller who hung up before leaving a message (off: they may not want a text).
    missed_call_text: bool = False
    voicemail_seconds: int = 120
    whisper_seconds: int = 8
    messages_file: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> VoiceSettings:
        """Return the voice settings, raising SettingsError for a malformed value."""
        extra: Mapping[str, Any] = settings.extra

        def number(key: str, default: int, low: int, high: int) -> int:
            value = extra.get(key, default)
            try:
                parsed = int(value)
            except (TypeError, ValueError) as exc:
                raise SettingsError(f"{key}: {value!r} is not a whole number") from exc
            if not low <= parsed <= high:
                raise SettingsError(f"{key}: must be between {low} and {high}, not {parsed}")
            return parsed

        strategy = str(extra.get("voice_strategy", cls.strategy)).lower().replace("-", "_")
        if strategy not in ("ring_all", "sequential"):
            raise SettingsError(f"voice_strategy: {strategy!r} must be ring_all or sequential")
        crisis = _crisis_number(extra.get("voice_crisis_number"), settings.default_region)
        during_chat = _flag(extra.get("voice_calls_during_chat", cls.calls_during_chat))
        messages = extra.get("voice_messages_file")
        return cls(
            strategy=strategy,
            # <Dial timeout> runs from 5 to 600 seconds.
            ring_seconds=number("voice_ring_seconds", cls.ring_seconds, 5, 600),
            max_rounds=number("voice_max_rounds", cls.max_rounds, 1, 20),
            crisis_number=crisis,
            calls_during_chat=during_chat,
            missed_call_text=_flag(extra.get("voice_missed_call_text", False)),
            voicemail_seconds=number("voice_voicemail_seconds", cls.voicemail_seconds, 10, 600),
            whisper_seconds=number("voice_whisper_seconds", cls.whisper_seconds, 3, 30),
            messages_file=str(messages) if messages else None,
        )


def _flag(value: Any) -> bool:
    """Return a yes/no setting, as written in the environment or a mapping."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _crisis_number(value: Any, region: str) -> str:
    """Return the crisis line's number in E.164, checked; by the line's country by default."""
    import phonenumbers

    if value is None or not str(value).strip():
        default = CRISIS_NUMBERS.get(region.upper())
        if default is None:
            raise SettingsError(
                f"voice_crisis_number: no default crisis line for region {region!r}; "
                "set PEERLINE_CRISIS_LINE_NUMBER to its full number"
            )
        return default
    raw = str(value).strip()
    if not re.fullmatch(r"\+?[\d\s().-]{3,24}", raw):
        raise SettingsError(f"voice_crisis_number: {raw!r} is not a number to dial")
    try:
        parsed = phonenumbers.parse(raw, region.upper())
    except phonenumbers.NumberParseException as exc:
        raise SettingsError(f"voice_crisis_number: {raw!r} is not a number to dial") from exc
    if not phonenumbers.is_valid_number(parsed):
        # 988 and other short codes land here: they may not route from a provider's line.
        raise SettingsError(
            f"voice_crisis_number: {raw!r} is not a full phone number; use the crisis "
            "line's ten-digit (E.164) number, like +18002738255 for 988 in the US and Canada"
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def voice_settings(line: Line) -> VoiceSettings:
    """Return the line's voice settings."""
    # Not cached: Settings holds a dict, so it cannot key a cache, and parsing is cheap.
    return VoiceSettings.from_settings(line.settings)


def telephony_available(settings: Settings) -> bool:
    """Say whether the line can place calls: not in embedded mode without a Twilio endpoint."""
    return not settings.embedded or bool(settings.twilio_api_base_url)


# -- prompts -----------------------------------------------------------------------------


class Prompts:
    """What the voice line says, by language, from one editable catalogue."""

    def __init__(self, texts: Mapping[str, Mapping[str, str]]) -> None:
        self.texts = texts

    @classmethod
    def load(cls, override: str | None = None) -> Prompts:
        """Load the packaged prompts, with a coordinator's file laid over them."""
        source = resources.files("peerline.flows").joinpath("voice_messages.yaml")
        texts: dict[str, dict[str, str]] = yaml.safe_load(source.read_text("utf-8"))
        if override:
            extra = yaml.safe_load(Path(override).read_text("utf-8")) or {}
            for language, entries in extra.items():
                texts.setdefault(language, {}).update(entries)
        return cls(texts)

    def languages(self) -> list[str]:
        """Return the languages the line can speak."""
        return list(self.texts)

    def text(self, language: str, key: str, /, **params: Any) -> str:
        """Return a prompt in a language (English when it has none), placeholders filled."""
        table = self.texts.get(language) or self.texts["en"]
        template = table.get(key) or self.texts["en"][key]
        # One line of text, without the space an empty placeholder leaves before a stop.
        text = " ".join(template.format(**params).split())
        return re.sub(r" +([.,;:!?])", r"\1", text)


@lru_cache(maxsize=8)
def prompts_for(override: str | None) -> Prompts:
    """Return the prompts, loaded once per process."""
    return Prompts.load(override)


def prompts(line: Line) -> Prompts:
    """Return the line's voice prompts."""
    return prompts_for(voice_settings(line).messages_file)


# -- answers: what the person on the line hears next -------------------------------------


@dataclass(frozen=True)
class Menu:
    """The greeting (on the first time) and the menu, after an optional notice.

    `switched` is the menu right after the caller chose its language: they heard the line's
    name already, so it starts with the emergency notice and the one key.
    """

    call_id: int
    language: str
    greeting: bool = False
    notice: str | None = None
    switched: bool = False


@dataclass(frozen=True)
class CrisisOffer:
    """Crisis words heard: say where to turn, offer the crisis line (3), else go on."""

    call_id: int
    language: str


@dataclass(frozen=True)
class GroupTimes:
    """The next group meetings read out, then the menu again."""

    call_id: int
    language: str
    groups: str | None
    can_text: bool


@dataclass(frozen=True)
class Transfer:
    """A hand-over to the crisis line."""

    call_id: int
    language: str
    number: str
    quiet: bool = False  # a key press skipped the notice


@dataclass(frozen=True)
class RingLeg:
    """One supporter's phone to ring, screened by a whisper."""

    leg_id: int
    phone: str


@dataclass(frozen=True)
class Ring:
    """Ring one or more supporters; the caller hears that they are being connected."""

    call_id: int
    language: str
    round: int
    legs: tuple[RingLeg, ...]
    ring_seconds: int
    # Said (skippable by a key) before the phones ring; none after the caller pressed 1.
    notice: str | None = None


@dataclass(frozen=True)
class LeaveMessage:
    """Say why nobody can answer and when the line opens, then record a voicemail."""

    call_id: int
    language: str
    reason: str  # closed, closed_no_shifts, busy, no_answer
    opening: str | None
    can_record: bool
    max_seconds: int
    quiet: bool = False  # a key press skipped the prompt: straight to the beep


@dataclass(frozen=True)
class Goodbye:
    """Say something, then hang up."""

    language: str
    key: str | None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Whisper:
    """Ask the supporter who answered to press 1; anything else hangs up their leg."""

    leg_id: int
    caller_language: str
    seconds: int
    crisis: bool = False
    # The caller's language is not one this supporter speaks: none who does was free.
    other_language: bool = False


@dataclass(frozen=True)
class Bridge:
    """End the whisper without hanging up, so Twilio connects the two."""

    # Nothing said by default: every second here is a second the caller waits.
    key: str | None = None


@dataclass(frozen=True)
class CallbackWhisper:
    """Ask the supporter we called to press 1 before we ring the other person."""

    call_id: int
    alias: str
    reference: str | None
    seconds: int


@dataclass(frozen=True)
class CallbackDial:
    """Ring the texter or caller from the line's number and connect the supporter."""

    call_id: int
    alias: str
    phone: str
    ring_seconds: int


Answer = (
    Menu
    | CrisisOffer
    | GroupTimes
    | Transfer
    | Ring
    | LeaveMessage
    | Goodbye
    | Whisper
    | Bridge
    | CallbackWhisper
    | CallbackDial
)


class UnknownCall(LookupError):
    """A webhook names a call or leg we have no record of, or one that is not its own."""


# -- inbound calls -----------------------------------------------------------------------


@dataclass(frozen=True)
class InboundCall:
    """One incoming call webhook, parsed; `from_number` is None when the caller hid it."""

    call_sid: str
    from_number: str | None
    to_number: str


def _lock(session: Session, model: Any, row_id: int) -> Any:
    """Return a row locked for this transaction (SQLite serialises writers instead)."""
    return session.scalar(select(model).where(model.id == row_id).with_for_update())


def _step(line: Line, now: datetime) -> AbstractContextManager[Context]:
    """Return the runtime's own transaction, which hands its queued work on after commit."""
    return step(line, now)


def receive_call(line: Line, inbound: InboundCall, now: datetime | None = None) -> Answer:
    """Record a new call and greet it; a retried webhook gets what the call hears now."""
    now = now or utcnow()
    with line.db.session() as session:
        existing = session.scalar(select(Call).where(Call.call_sid == inbound.call_sid))
        if existing is not None:
            return _current(line, session, existing, now)
        vault = line.vault
        hashes = vault.lookup_hashes(inbound.from_number) if inbound.from_number else []
        contact = (
            session.scalar(select(Contact).where(Contact.phone_hash.in_(hashes)))
            if hashes
            else None
        )
        blocked = bool(hashes) and session.scalar(
            select(Block.id).where(Block.phone_hash.in_(hashes))
        )
        call = Call(
            call_sid=inbound.call_sid,
            direction=INBOUND,
            contact_id=contact.id if contact else None,
            from_hash=hashes[0] if hashes else None,
            from_enc=vault.encrypt(inbound.from_number) if inbound.from_number else None,
            language=contact.language if contact and contact.language in ("en", "es") else "en",
            state=ENDED if blocked else MENU,
            outcome="blocked" if blocked else None,
            created_at=now,
        )
        try:
            # The unique CallSid is what makes a retried webhook act once.
            with session.begin_nested():
                session.add(call)
        except IntegrityError:
            existing = session.scalar(select(Call).where(Call.call_sid == inbound.call_sid))
            if existing is None:
                raise
            return _current(line, session, existing, now)
        if blocked:
            return Goodbye(call.language, "blocked")
        return Menu(call.id, call.language, greeting=True)


def _call_for(session: Session, call_id: int, call_sid: str) -> Call:
    """Return an inbound call locked, checking that the webhook is about this call."""
    call = _lock(session, Call, call_id)
    if call is None or call.call_sid != call_sid:
        raise UnknownCall(f"CallSid {call_sid} is not call {call_id}")
    return call


def _current(
    line: Line, session: Session, call: Call, now: datetime, *, quiet: bool = False
) -> Answer:
    """Return what a call should hear now, for a webhook Twilio sent again.

    `quiet` is for a key pressed during a notice: the same step without the words.
    """
    if call.state == MENU:
        return Menu(call.id, call.language, greeting=call.menu_attempts == 0 and not quiet)
    if call.state == RINGING:
        legs = [leg for leg in call.legs if leg.round == call.round]
        notice = None if quiet or call.round <= 1 else "still_trying"
        return _ring_answer(line, call, legs, notice)
    if call.state == VOICEMAIL:
        if call.outcome == "voicemail":
            return Goodbye(call.language, "voicemail_saved")
        reason = call.outcome if call.outcome in LEAVE_REASONS else "no_answer"
        return _leave_message(line, session, call, reason, now, quiet=quiet)
    if call.state == TRANSFERRED:
        return Transfer(call.id, call.language, voice_settings(line).crisis_number, quiet=quiet)
    if call.outcome == "blocked":
        return Goodbye(call.language, "blocked")
    return Goodbye(call.language, "goodbye")


# Menu choices: keys, and words heard (accents and case ignored), most urgent first.
PEER, GROUPS, CRISIS, TEXT_GROUPS, SWITCH, REPEAT = (
    "peer",
    "groups",
    "crisis",
    "text_groups",
    "language",
    "repeat",
)
DIGITS = {"1": PEER, "2": GROUPS, "3": CRISIS, "4": TEXT_GROUPS, "8": SWITCH, "9": REPEAT}
# Each choice's words, by the language they belong to: a Spanish word heard at the English
# menu ("hablar") switches the call to Spanish.
WORDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (CRISIS, "en", ("crisis", "emergency", "988", "nine eight eight")),
    (CRISIS, "es", ("emergencia",)),
    (PEER, "en", ("peer", "talk", "someone", "person", "supporter")),
    (PEER, "es", ("companer", "hablar", "persona", "alguien")),
    (GROUPS, "en", ("group", "meeting")),
    (GROUPS, "es", ("grupo", "reunion")),
    ("es", "es", ("espanol", "spanish")),
    ("en", "en", ("english", "ingles")),
    (REPEAT, "en", ("repeat", "again", "menu")),
    (REPEAT, "es", ("repetir", "otra vez")),
)
LANGUAGES = ("en", "es")
# Words that, shortly before a choice's word in the same clause, say the caller does not
# want it ("I'm not in crisis", "no es una emergencia"), as the crisis detector reads them.
NEGATORS = frozenset(
    {"not", "no", "never", "dont", "don", "isnt", "arent", "wasnt", "aint", "without"}
    | {"nunca", "ni", "sin", "tampoco"}
)
NEGATION_WINDOW = 3


def _plain(text: str) -> str:
    """Return text lower-cased without accents, as speech recognition may or may not add them."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _negated(words: Sequence[str], at: int) -> bool:
    """Say whether a negator comes within a few words before position `at`."""
    return any(word in NEGATORS for word in words[max(0, at - NEGATION_WINDOW) : at])


def _heard(clause: str, keyword: str) -> bool:
    """Say whether a clause holds a keyword (a word's start) not negated just before it."""
    words = re.findall(r"[a-z0-9]+", clause)
    if " " in keyword:
        parts = keyword.split()
        return any(
            words[i : i + len(parts)] == parts and not _negated(words, i) for i in range(len(words))
        )
    return any(w.startswith(keyword) and not _negated(words, i) for i, w in enumerate(words))


def parse_choice(digits: str, speech: str, menu_language: str = "en") -> str | None:
    """Return the menu choice from pressed keys or spoken words, or None.

    Key 8 means "the other language" (SWITCH); a spoken language name means that language,
    and so does a Spanish menu word heard at the English menu. A word negated close before
    ("I'm not in crisis, I just want to talk") does not count.
    """
    if digits:
        return DIGITS.get(digits.strip()[:1])
    # Apostrophes dropped ("don't" is "dont"); clauses split where speech recognition puts
    # punctuation, so a negation never reaches past its clause.
    heard = _plain(speech).replace("'", "").replace("\u2019", "")
    clauses = re.split(r"[,.;:!?]|\bbut\b|\bpero\b", heard)
    for choice, language, keywords in WORDS:
        if any(_heard(clause, keyword) for clause in clauses for keyword in keywords):
            if menu_language == "en" and language == "es" and choice in (PEER, GROUPS, REPEAT):
                return "es"
            return choice
    return None


def _hung_up(line: Line, rt: Context, call: Call, status: str | None) -> bool:
    """Apply the CallStatus a voice request carries; say whether the caller has gone."""
    if status is None or status not in STATUS_RANK:
        return False
    _apply_call_status(line, rt, call, status, None)
    return call.status in TERMINAL


def choose(
    line: Line,
    call_id: int,
    call_sid: str,
    digits: str,
    speech: str,
    menu_language: str | None = None,
    now: datetime | None = None,
    status: str | None = None,
) -> Answer:
    """Act on a menu choice (keys or speech); two menus without one connect to a peer.

    `menu_language` is the language of the menu the caller answered, so that key 8 means
    the same thing when Twilio sends the request again. Crisis words are looked for in what
    was said before any menu word: they get the crisis line offered at once.
    """
    now = now or utcnow()
    with _step(line, now) as rt:
        call = _call_for(rt.session, call_id, call_sid)
        if _hung_up(line, rt, call, status):
            return Goodbye(call.language, None)
        if call.state != MENU:
            return _current(line, rt.session, call, now)
        detection = line.crisis.detect(speech) if speech else None
        if detection is not None and detection.matched and call.crisis is None:
            if detection.language in LANGUAGES:
                call.language = str(detection.language)  # answered in the words' language
            _raise_crisis(line, rt, call, detection.category or "crisis", "voice_menu")
            return CrisisOffer(call.id, call.language)
        heard_in = menu_language or call.language
        choice = parse_choice(digits, speech, heard_in)
        if choice == SWITCH:
            choice = next(lang for lang in LANGUAGES if lang != heard_in)
        if choice in LANGUAGES:
            call.language, choice = str(choice), SWITCH
        if choice is None and call.crisis is not None:
            # After the crisis offer, anything but the crisis line means a person: no menus.
            choice = PEER
        if choice is None:
            call.menu_attempts += 1
            if call.menu_attempts < MENUS_BEFORE_PEER:
                notice = "not_an_option" if digits or speech else "no_input"
                return Menu(call.id, call.language, notice=notice)
            return _choose_peer(line, rt, call, "connecting")
        return MENU_ACTIONS[choice](line, rt, call, None)


def connect(
    line: Line, call_id: int, call_sid: str, status: str | None, now: datetime | None = None
) -> Answer:
    """Ring supporters for a caller who stayed on after the crisis offer."""
    now = now or utcnow()
    with _step(line, now) as rt:
        call = _call_for(rt.session, call_id, call_sid)
        if _hung_up(line, rt, call, status):
            return Goodbye(call.language, None)
        if call.state != MENU:
            return _current(line, rt.session, call, now)
        return _choose_peer(line, rt, call, None)


def now_step(
    line: Line, call_id: int, call_sid: str, status: str | None, now: datetime | None = None
) -> Answer:
    """Return where the call is, without the notice a key press just skipped."""
    now = now or utcnow()
    with _step(line, now) as rt:
        call = _call_for(rt.session, call_id, call_sid)
        if _hung_up(line, rt, call, status):
            return Goodbye(call.language, None)
        return _current(line, rt.session, call, now, quiet=True)


def _raise_crisis(line: Line, rt: Context, call: Call, category: str, source: str) -> None:
    """Mark a call as a crisis, record the event and alert the on-call coordinators, once."""
    if call.crisis is not None:
        return
    call.crisis = category[:16]
    rt.session.add(SafetyEvent(source="detector", category=source, created_at=rt.now))
    alias = call.contact.alias if call.contact else "A caller"
    rt.alert("crisis", None, f"{alias}: may be in crisis ({category}) on a phone call", alias=alias)


def _choose_peer(line: Line, rt: Context, call: Call, notice: str | None) -> Answer:
    """Ring supporters (menu 1)."""
    call.menu_choice = PEER
    return _start_round(line, rt, call, rt.now, notice)


def _choose_groups(line: Line, rt: Context, call: Call, notice: str | None) -> Answer:
    """Read out the next group meetings (menu 2)."""
    call.menu_choice, call.outcome = GROUPS, call.outcome or "groups"
    spoken = _groups_text(line, rt.session, call.language, rt.now)
    return GroupTimes(call.id, call.language, spoken, bool(spoken) and _can_text(rt, call))


def _choose_crisis(line: Line, rt: Context, call: Call, notice: str | None) -> Answer:
    """Transfer to the crisis line (menu 3)."""
    call.menu_choice, call.state, call.outcome = CRISIS, TRANSFERRED, "crisis_transfer"
    return Transfer(call.id, call.language, voice_settings(line).crisis_number)


def _choose_text_groups(line: Line, rt: Context, call: Call, notice: str | None) -> Answer:
    """Text the group times and links, once, to a caller we may text (4)."""
    from peerline.service.groups import upcoming_text

    tz = line.timezone(rt.session)
    groups = upcoming_text(rt.session, tz, rt.now, call.language)
    if not groups or not _can_text(rt, call):
        return Menu(call.id, call.language, notice="not_an_option")
    if call.groups_texted_at is not None:
        return Menu(call.id, call.language, notice="groups_texted")
    assert call.from_enc is not None
    call.groups_texted_at = rt.now
    rt.send(
        to_phone=line.vault.decrypt(call.from_enc),
        recipient_kind="texter",
        purpose="voice_groups",
        text=prompts(line).text(call.language, "sms_groups", groups=groups),
        conversation_id=None,
    )
    return Menu(call.id, call.language, notice="groups_texted")


def _choose_repeat(line: Line, rt: Context, call: Call, notice: str | None) -> Answer:
    """Say the menu again (menu 9)."""
    return Menu(call.id, call.language)


def _choose_language(line: Line, rt: Context, call: Call, notice: str | None) -> Answer:
    """Greet the caller in the language just chosen (menu 8, or its name), with its notice."""
    return Menu(call.id, call.language, greeting=True, switched=True)  # choose() set it


MENU_ACTIONS: dict[str, Callable[[Line, Context, Call, str | None], Answer]] = {
    PEER: _choose_peer,
    GROUPS: _choose_groups,
    CRISIS: _choose_crisis,
    TEXT_GROUPS: _choose_text_groups,
    REPEAT: _choose_repeat,
    SWITCH: _choose_language,
}


def _can_text(rt: Context, call: Call) -> bool:
    """Say whether we may text this caller: a known number that has not opted out."""
    if call.from_enc is None:
        return False
    contact = rt.session.get(Contact, call.contact_id) if call.contact_id else None
    return contact is None or not contact.opted_out


def _groups_text(line: Line, session: Session, language: str, now: datetime) -> str | None:
    """Return the next group meetings as words to speak: links are for texts, not ears."""
    from peerline.service.groups import upcoming_text

    text = upcoming_text(session, line.timezone(session), now, language)
    if not text:
        return None
    return " ".join(re.sub(r"https?://\S+", "", text).split())


def crisis_done(
    line: Line,
    call_id: int,
    call_sid: str,
    dial_status: str,
    now: datetime | None = None,
    status: str | None = None,
) -> Answer:
    """Finish a crisis transfer: if it never connected, say how to reach the line directly."""
    now = now or utcnow()
    with _step(line, now) as rt:
        call = _call_for(rt.session, call_id, call_sid)
        if dial_status in ("completed", "answered"):
            _hung_up(line, rt, call, status)
            return Goodbye(call.language, None)
        call.outcome = "crisis_transfer_failed"
        if _hung_up(line, rt, call, status):
            return Goodbye(call.language, None)
        return Goodbye(call.language, "crisis_failed")


# -- ringing supporters ------------------------------------------------------------------


def supporters_on_calls(session: Session, now: datetime | None = None) -> set[int]:
    """Return supporters being rung or talking on a call now: offer them no SMS chats."""
    since = (now or utcnow()) - STALE_AFTER
    legs = session.scalars(
        select(CallLeg.supporter_id)
        .join(Call, Call.id == CallLeg.call_id)
        .where(
            CallLeg.ended_at.is_(None),
            or_(CallLeg.status.is_(None), CallLeg.status.not_in(TERMINAL)),
            Call.ended_at.is_(None),
            CallLeg.created_at >= since,
        )
    )
    callbacks = session.scalars(
        select(Call.supporter_id).where(
            Call.direction == CALLBACK,
            Call.ended_at.is_(None),
            Call.state.not_in((FAILED, ENDED)),
            Call.created_at >= since,
        )
    )
    return {sid for sid in [*legs, *callbacks] if sid is not None}


def _busy_by_sms(session: Session, supporter_ids: Sequence[int]) -> set[int]:
    """Return supporters with an SMS chat going or an offer waiting for their #take."""
    chats = session.scalars(
        select(Conversation.supporter_id).where(
            Conversation.supporter_id.in_(supporter_ids), Conversation.state == ACTIVE
        )
    )
    offers = session.scalars(
        select(Offer.supporter_id).where(
            Offer.supporter_id.in_(supporter_ids), Offer.status == PENDING
        )
    )
    return {sid for sid in [*chats, *offers] if sid is not None}


def _at_shift_cap(
    line: Line, session: Session, rotas: Rotas, supporter_ids: Sequence[int], now: datetime
) -> set[int]:
    """Return supporters who took as many chats and calls this shift as the cap allows."""
    cap = line.settings.shift_chat_cap
    if not supporter_ids:
        return set()
    since = now - timedelta(days=2)
    taken: list[tuple[int | None, datetime | None]] = [
        (sid, at)
        for sid, at in session.execute(
            select(Conversation.supporter_id, Conversation.matched_at).where(
                Conversation.supporter_id.in_(supporter_ids), Conversation.matched_at >= since
            )
        )
    ]
    taken += [
        (sid, at)
        for sid, at in session.execute(
            select(CallLeg.supporter_id, CallLeg.answered_at).where(
                CallLeg.supporter_id.in_(supporter_ids),
                CallLeg.accepted.is_(True),
                CallLeg.answered_at >= since,
            )
        )
    ]
    counts: dict[int, int] = {}
    starts: dict[int, datetime | None] = {}
    for sid, at in taken:
        if sid is None or at is None:
            continue
        if sid not in starts:
            starts[sid] = rotas.shift_start(sid, now)
        start = starts[sid]
        if start is not None and at >= start:
            counts[sid] = counts.get(sid, 0) + 1
    return {sid for sid, n in counts.items() if n >= cap}


def ringable(
    line: Line,
    session: Session,
    on_shift: Iterable[int],
    *,
    language: str,
    exclude: Iterable[int] = (),
    caller_hash: str | None = None,
    now: datetime | None = None,
    rotas: Rotas | None = None,
    crisis: bool = False,
) -> list[Supporter]:
    """Return supporters to ring, best first: on shift, free, taking calls, not yet tried.

    The shift cap that stops chat offers stops rings too; a crisis call rings past the cap
    and past SMS chats, as a crisis text goes to the front of the queue.
    """
    settings = voice_settings(line)
    now = now or utcnow()
    ids = set(on_shift) - set(exclude) - supporters_on_calls(session, now)
    if not ids:
        return []
    found = list(
        session.scalars(
            select(Supporter).where(
                Supporter.id.in_(ids),
                Supporter.active.is_(True),
                Supporter.away.is_(False),
                Supporter.takes_calls.is_(True),
                Supporter.opted_out.is_(False),
            )
        )
    )
    if not settings.calls_during_chat and not crisis:
        busy = _busy_by_sms(session, [s.id for s in found])
        found = [s for s in found if s.id not in busy]
    if rotas is not None and not crisis:
        capped = _at_shift_cap(line, session, rotas, [s.id for s in found], now)
        found = [s for s in found if s.id not in capped]
    if caller_hash is not None:
        # A supporter testing the line from their own phone must not ring themselves.
        found = [s for s in found if s.phone_hash != caller_hash]
    last_rung = dict(
        session.execute(
            select(CallLeg.supporter_id, func.max(CallLeg.created_at))
            .where(CallLeg.supporter_id.in_([s.id for s in found]))
            .group_by(CallLeg.supporter_id)
        ).all()
    )

    def rank(s: Supporter) -> tuple[int, float, int]:
        rung = last_rung.get(s.id)
        # The caller's language first, then whoever was rung least recently.
        return (0 if language in s.language_list else 1, rung.timestamp() if rung else 0.0, s.id)

    return sorted(found, key=rank)


def _texting_supporter(
    session: Session, call: Call, on_shift: Iterable[int], now: datetime
) -> tuple[Supporter, Conversation] | None:
    """Return the supporter in an SMS chat with this caller, if they could take the call."""
    if call.contact_id is None:
        return None
    chat = session.scalar(
        select(Conversation)
        .where(Conversation.contact_id == call.contact_id, Conversation.state == ACTIVE)
        .order_by(Conversation.id.desc())
        .limit(1)
    )
    if chat is None or chat.supporter is None:
        return None
    supporter = chat.supporter
    free = (
        supporter.id in set(on_shift)
        and supporter.active
        and not supporter.away
        and supporter.takes_calls
        and not supporter.opted_out
        and supporter.id not in supporters_on_calls(session, now)
        and supporter.phone_hash != call.from_hash
    )
    return (supporter, chat) if free else None


def _start_round(line: Line, rt: Context, call: Call, now: datetime, notice: str | None) -> Answer:
    """Ring the next supporters for a call, or offer a voicemail when there are none."""
    session = rt.session
    rotas = load_rotas(session, line.timezone(session), line.holidays_spec(session))
    on_shift = rotas.on_shift(now)
    if not on_shift:
        opening = rotas.next_opening(now)
        call.state = VOICEMAIL
        call.outcome = "closed" if opening else "closed_no_shifts"
        return _leave_message(line, session, call, call.outcome, now)
    # Tried: answered and did not accept, or rang out. A leg cut short because someone
    # else's phone answered first may be rung again.
    tried = {leg.supporter_id for leg in call.legs if leg.outcome not in (None, "canceled")}
    settings = voice_settings(line)
    if call.round >= settings.max_rounds:
        call.state, call.outcome = VOICEMAIL, "no_answer"
        return _leave_message(line, session, call, call.outcome, now)
    chosen: list[Supporter] = []
    if call.round == 0 and call.crisis is None:
        # The supporter already texting with this caller is told, and rung first, alone.
        texting = _texting_supporter(session, call, on_shift, now)
        if texting is not None:
            supporter, chat = texting
            chosen = [supporter]
            alias = chat.contact.alias
            _tell(rt, supporter, "sms_chat_caller_calling", chat, alias=alias)
    if not chosen:
        candidates = ringable(
            line,
            session,
            on_shift,
            language=call.language,
            exclude=tried,
            caller_hash=call.from_hash,
            now=now,
            rotas=rotas,
            crisis=call.crisis is not None,
        )
        # A crisis call rings everyone free at once, whatever the strategy.
        ring_all = settings.strategy == "ring_all" or call.crisis is not None
        size = MAX_SIMULTANEOUS if ring_all else 1
        speakers = [s for s in candidates if call.language in s.language_list]
        if call.language != "en" and speakers:
            # Only those who speak the caller's language while any is free; the others
            # (their whisper says so) when none is.
            candidates = speakers
        chosen = candidates[:size]
    if not chosen:
        call.state = VOICEMAIL
        call.outcome = "busy" if call.round == 0 else "no_answer"
        return _leave_message(line, session, call, call.outcome, now)
    call.round += 1
    call.state = RINGING
    legs = [
        CallLeg(call_id=call.id, supporter_id=s.id, round=call.round, created_at=now)
        for s in chosen
    ]
    session.add_all(legs)
    session.flush()
    return _ring_answer(line, call, legs, notice)


def _ring_answer(line: Line, call: Call, legs: Sequence[CallLeg], notice: str | None) -> Ring:
    """Return the answer that rings a round's legs."""
    vault = line.vault
    return Ring(
        call_id=call.id,
        language=call.language,
        round=call.round,
        legs=tuple(RingLeg(leg.id, vault.decrypt(leg.supporter.phone_enc)) for leg in legs),
        ring_seconds=voice_settings(line).ring_seconds,
        notice=notice,
    )


def opening_words(when: datetime, tz: ZoneInfo, now: datetime, language: str) -> str:
    """Say when the line opens: by weekday within six days, by its date beyond."""
    local, today = when.astimezone(tz), now.astimezone(tz).date()
    if (local.date() - today).days <= WEEKDAY_HORIZON:
        return format_opening(when, tz, now, language)
    if language == "es":
        days = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
        months = (
            "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre "
            "diciembre"
        ).split()
        day = f"el {days[local.weekday()]} {local.day} de {months[local.month - 1]}"
        return f"{day} a las {local.strftime('%H:%M')} ({local.tzname()})"
    clock = local.strftime("%I:%M %p").lstrip("0")
    date = f"{local.strftime('%A')}, {local.strftime('%B')} {local.day}"
    return f"on {date}, at {clock} ({local.tzname()})"


def _leave_message(
    line: Line, session: Session, call: Call, reason: str, now: datetime, *, quiet: bool = False
) -> LeaveMessage:
    """Return the answer that says why nobody can answer and records a message."""
    opening = None
    if reason == "closed":
        tz = line.timezone(session)
        rotas = load_rotas(session, tz, line.holidays_spec(session))
        when = rotas.next_opening(now)
        opening = opening_words(when, tz, now, call.language) if when else None
        if opening is None:
            reason = "closed_no_shifts"
    return LeaveMessage(
        call_id=call.id,
        language=call.language,
        reason=reason,
        opening=opening,
        can_record=call.from_enc is not None,
        max_seconds=voice_settings(line).voicemail_seconds,
        quiet=quiet,
    )


def dial_ended(
    line: Line,
    call_id: int,
    round_number: int,
    call_sid: str,
    dial_status: str,
    dial_seconds: int | None,
    now: datetime | None = None,
    status: str | None = None,
) -> Answer:
    """Act on the end of a ringing round: after a talk say goodbye, else ring on or record.

    The caller's own CallStatus comes with it: a caller who hung up while the phones rang is
    ended here, legs and all, with or without a status callback to follow.
    """
    now = now or utcnow()
    with _step(line, now) as rt:
        session = rt.session
        call = _call_for(session, call_id, call_sid)
        if call.round == round_number and call.state == CONNECTED and dial_seconds is not None:
            call.talk_seconds = call.talk_seconds or dial_seconds
        if _hung_up(line, rt, call, status):
            return Goodbye(call.language, None)  # legs ended, supporters free for texts
        if call.round != round_number or call.state not in (RINGING, CONNECTED):
            return _current(line, session, call, now)
        if call.state == CONNECTED:
            # The supporter hung up first and the caller is still on the line.
            call.state = ENDED
            rt.unit.match = True
            return Goodbye(call.language, "goodbye")
        legs = list(
            session.scalars(
                select(CallLeg)
                .where(CallLeg.call_id == call.id, CallLeg.round == round_number)
                .order_by(CallLeg.id)
                .with_for_update()
            )
        )
        someone_answered = any(leg.answered_at for leg in legs)
        for leg in legs:
            if leg.outcome is None:
                if leg.answered_at is not None:
                    leg.outcome = "no_input"
                elif someone_answered:
                    leg.outcome = "canceled"
                else:
                    leg.outcome = dial_status if dial_status in UNANSWERED else "no-answer"
            leg.ended_at = leg.ended_at or now
        rt.unit.match = True
        if call.status in TERMINAL:
            return Goodbye(call.language, None)  # the caller hung up while it rang
        return _start_round(line, rt, call, now, "still_trying")


# -- the whisper on a supporter's phone --------------------------------------------------


def _leg_for(session: Session, leg_id: int, parent_sid: str | None) -> tuple[CallLeg, Call]:
    """Return a leg and its call, both locked, checking the webhook is about this call."""
    call_id = session.scalar(select(CallLeg.call_id).where(CallLeg.id == leg_id))
    if call_id is None:
        raise UnknownCall(f"no leg {leg_id}")
    # Always the call first, then the leg: every step locks in that order, so none deadlock.
    call = _lock(session, Call, call_id)
    leg = _lock(session, CallLeg, leg_id)
    if parent_sid and call.call_sid != parent_sid:
        raise UnknownCall(f"ParentCallSid {parent_sid} is not the call of leg {leg_id}")
    return leg, call


def whisper(
    line: Line, leg_id: int, leg_sid: str, parent_sid: str | None, now: datetime | None = None
) -> Answer:
    """Screen a supporter who answered: only pressing 1 connects them."""
    now = now or utcnow()
    with line.db.session() as session:
        leg, call = _leg_for(session, leg_id, parent_sid)
        if leg.leg_sid is None:
            leg.leg_sid = leg_sid
        leg.answered_at = leg.answered_at or now
        if leg.accepted:
            return Bridge()
        if call.supporter_id is not None:
            leg.outcome = leg.outcome or "taken"
            return Goodbye("en", "whisper_taken")
        if call.state != RINGING or call.round != leg.round or call.status in TERMINAL:
            leg.outcome = leg.outcome or "canceled"
            return Goodbye("en", "whisper_gone")
        speaks = call.language == "en" or call.language in leg.supporter.language_list
        return Whisper(
            leg.id,
            call.language,
            voice_settings(line).whisper_seconds,
            crisis=call.crisis is not None,
            other_language=not speaks,
        )


def accept(
    line: Line,
    leg_id: int,
    leg_sid: str,
    digits: str,
    parent_sid: str | None,
    now: datetime | None = None,
) -> Answer:
    """Connect the supporter who pressed 1, unless someone else was first."""
    now = now or utcnow()
    with line.db.session() as session:
        leg, call = _leg_for(session, leg_id, parent_sid)
        if leg.leg_sid is None:
            leg.leg_sid = leg_sid
        if leg.accepted:
            return Bridge()
        if digits.strip() != "1":
            leg.outcome = "declined"
            return Goodbye("en", None)
        if call.supporter_id is not None:
            leg.outcome = "taken"
            return Goodbye("en", "whisper_taken")
        if call.state != RINGING or call.round != leg.round or call.status in TERMINAL:
            leg.outcome = "canceled"
            return Goodbye("en", "whisper_gone")
        leg.accepted, leg.outcome = True, "accepted"
        leg.answered_at = leg.answered_at or now
        call.state, call.supporter_id = CONNECTED, leg.supporter_id
        call.connected_at, call.outcome = now, "connected"
        for other in call.legs:
            if other.id != leg.id and other.round == leg.round and other.outcome is None:
                # Twilio hangs up the other phones once this one is bridged.
                other.outcome = "taken"
        return Bridge()


# -- status callbacks --------------------------------------------------------------------


def _advance(current: str | None, new: str) -> bool:
    """Say whether a status moves a call forward (late, repeated or unknown ones do not)."""
    if new not in STATUS_RANK:
        return False
    if current is None:
        return True
    return STATUS_RANK[new] > STATUS_RANK.get(current, -1)


def leg_status(
    line: Line,
    leg_id: int,
    leg_sid: str,
    status: str,
    seconds: int | None,
    now: datetime | None = None,
) -> None:
    """Apply a supporter leg's status callback, once and never backwards."""
    now = now or utcnow()
    with line.db.session() as session:
        leg, call = _leg_for(session, leg_id, None)
        if leg.leg_sid is None:
            leg.leg_sid = leg_sid
        elif leg.leg_sid != leg_sid:
            raise UnknownCall(f"CallSid {leg_sid} is not leg {leg_id}")
        if not _advance(leg.status, status):
            return
        leg.status = status
        if status in ("in-progress", "answered"):
            leg.answered_at = leg.answered_at or now
        if status in TERMINAL:
            leg.ended_at = leg.ended_at or now
            if seconds is not None:
                leg.duration_seconds = seconds
            if leg.outcome is None and status in UNANSWERED | {"canceled"}:
                leg.outcome = status
            if leg.accepted and seconds is not None:
                call.talk_seconds = seconds


def call_status(
    line: Line, call_sid: str, status: str, seconds: int | None, now: datetime | None = None
) -> bool:
    """Apply a call's status callback once and never backwards; False for an unknown call."""
    now = now or utcnow()
    with _step(line, now) as rt:
        session = rt.session
        call_id = session.scalar(select(Call.id).where(Call.call_sid == call_sid))
        if call_id is None:
            return False
        _apply_call_status(line, rt, _lock(session, Call, call_id), status, seconds)
    return True


def _apply_call_status(
    line: Line, rt: Context, call: Call, status: str, seconds: int | None
) -> None:
    """Move a locked call forward to a status, closing it on a final one."""
    if not _advance(call.status, status):
        return
    call.status = status
    if status not in TERMINAL:
        return
    now = rt.now
    call.ended_at = call.ended_at or now
    if seconds is not None:
        call.duration_seconds = seconds
    for leg in call.legs:
        if leg.ended_at is None:
            # Legs we never heard the end of must not keep their supporter "on a call".
            leg.ended_at = now
            leg.outcome = leg.outcome or "canceled"
    # Whoever this call held (rung, talking, calling back) may be offered texts again.
    rt.unit.match = True
    if call.direction == CALLBACK:
        _callback_ended(line, rt, call, status)
        return
    if call.outcome is None or call.outcome == "groups":
        left = {MENU: "hung_up_in_menu", RINGING: "hung_up_while_ringing"}
        call.outcome = left.get(call.state, call.outcome or "ended")
    if call.state == VOICEMAIL and call.callback_request_id is None:
        _missed_call(line, rt, call)
    call.state = ENDED


def _missed_call(line: Line, rt: Context, call: Call) -> None:
    """Record a caller who hung up before leaving a message, for the coordinators."""
    call.outcome = "missed"
    alias = call.contact.alias if call.contact else "a caller with a hidden number"
    crisis = f", who used crisis words ({call.crisis})," if call.crisis else ""
    rt.session.add(
        Alert(
            kind="missed_call",
            detail=f"Missed call from {alias}{crisis} who hung up before leaving a message",
            created_at=rt.now,
        )
    )
    if not voice_settings(line).missed_call_text or call.from_enc is None:
        return
    contact = call.contact or rt.contact_for(line.vault.decrypt(call.from_enc))
    if contact is not None and not contact.opted_out:
        rt.send(
            to_phone=line.vault.decrypt(call.from_enc),
            recipient_kind="texter",
            purpose="missed_call",
            text=prompts(line).text(call.language, "sms_missed_call"),
            conversation_id=None,
        )


# -- voicemail and call-back requests ----------------------------------------------------


def _new_request(
    session: Session, contact_id: int, language: str, now: datetime
) -> CallbackRequest:
    """Store a call-back request under a short reference no other uses, like VM-4821."""
    for attempt in range(30):
        # Four digits are easy to read out and type; past many collisions, use six.
        digits = 4 if attempt < 20 else 6
        request = CallbackRequest(
            reference=f"VM-{secrets.randbelow(10**digits):0{digits}d}",
            kind="voicemail",
            contact_id=contact_id,
            language=language,
            created_at=now,
        )
        try:
            # The unique reference decides, so two voicemails at once never share one.
            with session.begin_nested():
                session.add(request)
            return request
        except IntegrityError:
            continue
    raise RuntimeError("no free call-back reference after 30 tries")


def voicemail(
    line: Line,
    call_id: int,
    call_sid: str,
    *,
    recording_sid: str | None,
    recording_url: str | None,
    seconds: int | None,
    status: str = "completed",
    now: datetime | None = None,
    call_status: str | None = None,
) -> Answer:
    """Keep a voicemail as a call-back request and tell supporters, once per call.

    Both the <Record> action and the recording status callback land here, in either order.
    A crisis call's voicemail is marked as one, in the request, the notice and an alert.
    """
    now = now or utcnow()
    with _step(line, now) as rt:
        answer = _keep_voicemail(
            line, rt, call_id, call_sid, recording_sid, recording_url, seconds, status
        )
        call = _call_for(rt.session, call_id, call_sid)
        if _hung_up(line, rt, call, call_status):
            return Goodbye(call.language, None)
        return answer


def _keep_voicemail(
    line: Line,
    rt: Context,
    call_id: int,
    call_sid: str,
    recording_sid: str | None,
    recording_url: str | None,
    seconds: int | None,
    status: str,
) -> Answer:
    """Store a voicemail's request and announce it once; return what the caller hears."""
    session, now = rt.session, rt.now
    call = _call_for(session, call_id, call_sid)
    nothing = not recording_url or status != "completed" or seconds == 0
    if call.from_enc is None or (nothing and call.callback_request_id is None):
        return Goodbye(call.language, "voicemail_none")
    request = call.callback_request
    if request is None:
        contact = (
            session.get(Contact, call.contact_id)
            if call.contact_id
            else rt.contact_for(line.vault.decrypt(call.from_enc))
        )
        assert contact is not None
        call.contact_id = contact.id
        request = _new_request(session, contact.id, call.language, now)
        call.callback_request_id = request.id
        call.callback_request = request
    if recording_sid and request.recording_sid is None:
        request.recording_sid = recording_sid
    if recording_url and request.recording_url_enc is None:
        request.recording_url_enc = line.vault.encrypt(recording_url)
    if seconds:
        request.recording_seconds = seconds
    request.crisis = request.crisis or call.crisis
    call.outcome = "voicemail"
    if request.notified_at is None:
        request.notified_at = now
        _announce_voicemail(line, rt, call, request)
    return Goodbye(call.language, "voicemail_saved")


def _announce_voicemail(line: Line, rt: Context, call: Call, request: CallbackRequest) -> None:
    """Text supporters on shift (or on call) a reference, and offer the caller a text."""
    session, texts = rt.session, prompts(line)
    contact = request.contact
    recipients = _recipients(line, rt)
    language = texts.text(call.language, "language_name")
    notice = texts.text(
        "en",
        "sms_crisis_voicemail_notice" if request.crisis else "sms_voicemail_notice",
        reference=request.reference,
        alias=contact.alias,
        seconds=request.recording_seconds or 0,
        language=language,
    )
    for supporter in recipients:
        rt.to_supporter(supporter, "voicemail", text=notice)
    if not recipients:
        log.warning("nobody on shift or on call to hear of voicemail %s", request.reference)
    if request.crisis:
        _crisis_voicemail_alert(rt, request)
    session.add(
        Alert(
            kind="voicemail",
            detail=(
                f"Voicemail {request.reference} from {contact.alias} "
                f"({request.recording_seconds or 0} s) is waiting for a call-back"
            ),
            created_at=rt.now,
        )
    )
    if not contact.opted_out:
        # An opted-out caller may still call and be called back, but gets no texts.
        rt.send(
            to_phone=line.vault.decrypt(contact.phone_enc),
            recipient_kind="texter",
            purpose="voicemail_saved",
            text=texts.text(call.language, "sms_voicemail_saved"),
            conversation_id=None,
        )


def _recipients(line: Line, rt: Context) -> list[Supporter]:
    """Return who hears of a voicemail: supporters on shift, else those on call."""
    session = rt.session
    rotas = load_rotas(session, line.timezone(session), line.holidays_spec(session))
    ready = [Supporter.active.is_(True), Supporter.opted_out.is_(False)]
    found = list(
        session.scalars(
            select(Supporter)
            .where(Supporter.id.in_(rotas.on_shift(rt.now)), Supporter.away.is_(False), *ready)
            .order_by(Supporter.id)
        )
    )
    return found or list(
        session.scalars(
            select(Supporter).where(Supporter.on_call.is_(True), *ready).order_by(Supporter.id)
        )
    )


def _crisis_voicemail_alert(rt: Context, request: CallbackRequest) -> None:
    """Alert the on-call coordinators that a voicemail holds crisis words."""
    alias = request.contact.alias
    rt.alert(
        "crisis_voicemail",
        None,
        f"{alias}: may be in crisis ({request.crisis}), voicemail {request.reference}",
        alias=alias,
    )


def transcription(
    line: Line,
    call_id: int,
    call_sid: str,
    *,
    recording_sid: str | None,
    text: str | None,
    status: str,
    now: datetime | None = None,
) -> bool:
    """Keep a voicemail's transcription, check it for crisis words and tell supporters.

    Supporters get a short summary by reference, never the recording; a transcription that
    holds crisis words marks the voicemail and alerts the on-call coordinators. Once per
    voicemail: Twilio may send the callback again.
    """
    now = now or utcnow()
    with _step(line, now) as rt:
        call = _call_for(rt.session, call_id, call_sid)
        request = call.callback_request
        if request is None:
            return False
        request = _lock(rt.session, CallbackRequest, request.id)
        if recording_sid and request.recording_sid not in (None, recording_sid):
            raise UnknownCall(f"RecordingSid {recording_sid} is not voicemail {request.reference}")
        if request.transcribed_at is not None or status != "completed" or not text:
            return False
        request.transcribed_at = now
        request.transcript_enc = line.vault.encrypt(text)
        detection = line.crisis.detect(text)
        newly_crisis = detection.matched and request.crisis is None
        if newly_crisis:
            request.crisis = (detection.category or "crisis")[:16]
            rt.session.add(SafetyEvent(source="detector", category="voicemail", created_at=rt.now))
            _crisis_voicemail_alert(rt, request)
        if request.status == REQUEST_DONE:
            return True
        texts = prompts(line)
        summary = texts.text(
            "en",
            "sms_voicemail_summary_crisis" if request.crisis else "sms_voicemail_summary",
            reference=request.reference,
            alias=request.contact.alias,
            words="",
        )
        notice = summary.replace('""', f'"{_summary(text, summary)}"')
        for supporter in _recipients(line, rt):
            rt.to_supporter(supporter, "voicemail_summary", text=notice)
    return True


def _summary(text: str, frame: str) -> str:
    """Return the start of a transcript, cut on a word to fit two SMS segments in `frame`."""
    from peerline.service.segments import count

    words = text.split()
    for n in range(len(words), 0, -1):
        quote = " ".join(words[:n]) + ("" if n == len(words) else "...")
        if count(frame.replace('""', f'"{quote}"')) <= 2:
            return quote
    return ""


def recording_url_for_coordinator(
    line: Line, session: Session, request_id: int, actor: str
) -> str | None:
    """Return a voicemail's recording URL for a coordinator, and audit the look."""
    request = session.get(CallbackRequest, request_id)
    if request is None or request.recording_url_enc is None:
        return None
    session.add(
        AuditEvent(
            actor=actor,
            action="voicemail.listen",
            subject=f"callback_request:{request.id}",
            detail=request.reference,
        )
    )
    return line.vault.decrypt(request.recording_url_enc)


# -- masked call-backs (#call) ------------------------------------------------------------

REFERENCE = re.compile(r"(?i)^\s*(?:vm)?[\s-]*(\d{4,6})\s*$")


def call_command(
    runtime: Context, supporter: Supporter, chat: Conversation | None, argument: str
) -> Call | None:
    """Carry out a supporter's #call: a voicemail's reference if given, else their chat."""
    if argument.strip():
        return call_back_voicemail(runtime, supporter, argument)
    if chat is None:
        _tell(runtime, supporter, "sms_call_how")
        return None
    return request_callback(runtime, chat, supporter)


def _tell(
    runtime: Context,
    supporter: Supporter,
    key: str,
    conversation: Conversation | None = None,
    **params: Any,
) -> None:
    """Text a supporter one of the voice line's notices, in the thread of their chat."""
    runtime.to_supporter(
        supporter,
        key.removeprefix("sms_"),
        conversation.id if conversation else None,
        text=prompts(runtime.line).text("en", key, **params),
        via=conversation.relay_number if conversation else runtime.reply_via,
    )


def _may_place(runtime: Context, supporter: Supporter, chat: Conversation | None) -> bool:
    """Check the line can place calls and the supporter is free; tell them if not."""
    if not telephony_available(runtime.line.settings):
        _tell(runtime, supporter, "sms_call_unavailable", chat)
        return False
    if supporter.id in supporters_on_calls(runtime.session, runtime.now):
        _tell(runtime, supporter, "sms_call_busy", chat)
        return False
    return True


def request_callback(
    runtime: Context, conversation: Conversation, supporter: Supporter
) -> Call | None:
    """Call the supporter, then bridge them to the texter of their chat, numbers masked."""
    if conversation.state != ACTIVE or conversation.supporter_id != supporter.id:
        _tell(runtime, supporter, "sms_call_how")
        return None
    contact = conversation.contact
    if not _may_place(runtime, supporter, conversation):
        return None
    session = runtime.session
    calling = session.scalar(
        select(Call.id).where(
            Call.conversation_id == conversation.id,
            Call.direction == CALLBACK,
            Call.ended_at.is_(None),
            Call.state.not_in((FAILED, ENDED)),
        )
    )
    if calling is not None:
        _tell(
            runtime,
            supporter,
            "sms_call_in_progress",
            conversation,
            reference=contact.alias,
            name=supporter.name,
        )
        return None
    call = Call(
        direction=CALLBACK,
        contact_id=contact.id,
        conversation_id=conversation.id,
        supporter_id=supporter.id,
        language=conversation.language,
        state=PLACING,
        created_at=runtime.now,
    )
    session.add(call)
    session.flush()
    place_after_commit(runtime.line, session, call.id)
    _tell(runtime, supporter, "sms_call_starting", conversation, alias=contact.alias)
    if not contact.opted_out:
        runtime.send(
            to_phone=runtime.line.vault.decrypt(contact.phone_enc),
            recipient_kind="texter",
            purpose="call_notice",
            text=prompts(runtime.line).text(
                conversation.language, "sms_call_notice", name=supporter.name
            ),
            conversation_id=conversation.id,
        )
    return call


def call_back_voicemail(runtime: Context, supporter: Supporter, reference: str) -> Call | None:
    """Call the supporter, then bridge them to whoever left a voicemail, numbers masked."""
    match = REFERENCE.match(reference)
    wanted = f"VM-{match.group(1)}" if match else reference.strip().upper()[:16]
    session = runtime.session
    found = session.scalar(select(CallbackRequest).where(CallbackRequest.reference == wanted))
    if found is None:
        _tell(runtime, supporter, "sms_call_unknown", reference=wanted)
        return None
    if found.contact.opted_out or not found.contact.phone_enc:
        # Issue 16: someone who texted STOP (or erased their data) is never called.
        _tell(runtime, supporter, "sms_call_no_number", reference=wanted)
        return None
    request = _lock(session, CallbackRequest, found.id)
    if request.status == REQUEST_DONE and request.supporter_id != supporter.id:
        # Someone already reached this caller: a second call would surprise them.
        other = request.supporter.name if request.supporter else "another peer"
        _tell(runtime, supporter, "sms_call_done", reference=wanted, name=other)
        return None
    live = session.scalar(
        select(Call.id).where(
            Call.callback_request_id == request.id,
            Call.ended_at.is_(None),
            Call.state.not_in((FAILED, ENDED)),
            Call.created_at >= runtime.now - STALE_AFTER,
        )
    )
    # "calling" with no live call left means a call-back whose end we never heard: go ahead.
    if request.status == REQUEST_CALLING and live is not None:
        other = request.supporter.name if request.supporter else "another peer"
        _tell(runtime, supporter, "sms_call_in_progress", reference=wanted, name=other)
        return None
    if not _may_place(runtime, supporter, None):
        return None
    request.status, request.supporter_id = REQUEST_CALLING, supporter.id
    request.attempts += 1
    call = Call(
        direction=CALLBACK,
        contact_id=request.contact_id,
        conversation_id=request.conversation_id,
        supporter_id=supporter.id,
        callback_request_id=request.id,
        language=request.language,
        state=PLACING,
        created_at=runtime.now,
    )
    session.add(call)
    session.flush()
    place_after_commit(runtime.line, session, call.id)
    _tell(runtime, supporter, "sms_call_starting", alias=request.contact.alias)
    return call


_PENDING_KEY = "peerline.calls_to_place"


def place_after_commit(line: Line, session: Session, call_id: int) -> None:
    """Enqueue the placing of a call once this session commits (never if it rolls back)."""
    pending: list[int] | None = session.info.get(_PENDING_KEY)
    if pending is None:
        pending = session.info[_PENDING_KEY] = []

        def committed(done: Session) -> None:
            for queued in done.info.pop(_PENDING_KEY, []):
                enqueue_placement(line, queued)

        def rolled_back(done: Session, _transaction: Any) -> None:
            # An outer rollback loses the call rows too; nothing is left to place.
            if _transaction.parent is None:
                done.info.pop(_PENDING_KEY, None)

        event.listen(session, "after_commit", committed, once=True)
        event.listen(session, "after_transaction_end", rolled_back)
    pending.append(call_id)


def enqueue_placement(line: Line, call_id: int) -> bool:
    """Enqueue the job that places an outbound call; the sweep retries if Redis is away."""
    try:
        line.tasks.queue.enqueue(
            "peerline.service.calls.place_call_job",
            call_id,
            job_id=f"place-call-{call_id}",
            result_ttl=0,
        )
    except RedisError as exc:
        log.warning("could not enqueue call %s (%s): the sweep will retry", call_id, exc)
        return False
    return True


def place_call_job(call_id: int) -> None:
    """Place one outbound call-back (an RQ job: the call's id only)."""
    from peerline.workers.context import get_line

    place_call(get_line(), call_id)


@lru_cache(maxsize=4)
def _client(account_sid: str, auth_token: str, base_url: str | None) -> Client:
    """Return a Twilio REST client, built once per process and credentials."""
    from peerline.service.twilio_http import make_client

    return make_client(account_sid, auth_token, base_url)


def url(line: Line, path: str) -> str:
    """Return the absolute public URL of a voice webhook, as Twilio must call (and sign) it."""
    return f"{line.settings.public_base_url}{PREFIX}{path}"


def place_call(line: Line, call_id: int, now: datetime | None = None) -> str | None:
    """Ring the supporter's phone for a call-back; return the call's SID once Twilio has it."""
    from twilio.base.exceptions import TwilioException, TwilioRestException

    with line.db.session() as session:
        call = _lock(session, Call, call_id)
        if call is None or call.state != PLACING or call.supporter is None:
            return None
        # Issue 16: an opt-out (or an erasure) after the #call still stops the call.
        contact = call.contact
        stopped = contact is not None and (contact.opted_out or not contact.phone_enc)
        # Committed before the request: a second run of this job finds DIALING and stops,
        # so a supporter is never rung twice for one #call.
        call.state = DIALING
        supporter_phone = line.vault.decrypt(call.supporter.phone_enc)
    settings = line.settings
    if stopped or not telephony_available(settings):
        _placement_failed(line, call_id, None, now)
        return None
    client = _client(
        settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_base_url
    )
    try:
        created = client.calls.create(
            to=supporter_phone,
            from_=settings.twilio_phone_number,
            url=url(line, f"/callback/{call_id}/answer"),
            method="POST",
            status_callback=url(line, f"/callback/{call_id}/status"),
            status_callback_method="POST",
            status_callback_event=["initiated", "ringing", "answered", "completed"],
            timeout=voice_settings(line).ring_seconds + 10,
        )
    except TwilioRestException as exc:
        log.warning("Twilio refused call-back %s: %s", call_id, exc.code)
        _placement_failed(line, call_id, exc.code, now)
        return None
    except (TwilioException, OSError) as exc:
        log.warning("call-back %s could not be placed: %s", call_id, exc)
        _placement_failed(line, call_id, getattr(exc, "code", None), now)
        return None
    sid = str(created.sid)
    with line.db.session() as session:
        call = _lock(session, Call, call_id)
        if call.call_sid is None:
            call.call_sid = sid
        if call.state == DIALING:
            call.state = CALLING_SUPPORTER
    return sid


def _placement_failed(
    line: Line, call_id: int, code: int | None, now: datetime | None = None
) -> None:
    """Mark a call-back that never left as failed and tell its supporter."""
    now = now or utcnow()
    with _step(line, now) as rt:
        session = rt.session
        call = _lock(session, Call, call_id)
        if call is None or call.ended_at is not None:
            return
        call.state, call.outcome, call.error_code = FAILED, "not_placed", code
        call.ended_at = now
        _reopen(call)
        if call.supporter is not None:
            alias = call.contact.alias if call.contact else "the caller"
            _tell(rt, call.supporter, "sms_call_failed", _chat(session, call), alias=alias)
        _tell_texter_missed(rt, call)


def _chat(session: Session, call: Call) -> Conversation | None:
    """Return the SMS chat a call-back was asked for from, if any."""
    return session.get(Conversation, call.conversation_id) if call.conversation_id else None


def _reopen(call: Call) -> None:
    """Put a voicemail's request back in the queue after a call-back that did not connect."""
    request = call.callback_request
    if request is not None and request.status == REQUEST_CALLING:
        request.status = REQUEST_OPEN


def _callback_call(session: Session, call_id: int, call_sid: str) -> Call:
    """Return an outbound call-back locked, recording its SID if Twilio's reply was slow."""
    call = _lock(session, Call, call_id)
    if call is None or call.direction != CALLBACK:
        raise UnknownCall(f"no call-back {call_id}")
    if call.call_sid is None:
        call.call_sid = call_sid
    elif call.call_sid != call_sid:
        raise UnknownCall(f"CallSid {call_sid} is not call-back {call_id}")
    return call


def callback_answered(
    line: Line, call_id: int, call_sid: str, now: datetime | None = None, status: str | None = None
) -> Answer:
    """Whisper to the supporter who answered our call: press 1 to ring the other person."""
    with _step(line, now or utcnow()) as rt:
        session = rt.session
        call = _callback_call(session, call_id, call_sid)
        if _hung_up(line, rt, call, status):
            return Goodbye("en", None)
        if call.state in (ENDED, FAILED) or call.contact is None:
            return Goodbye("en", "callback_cancelled")
        if call.state in (PLACING, DIALING):
            call.state = CALLING_SUPPORTER
        request = call.callback_request
        return CallbackWhisper(
            call.id,
            call.contact.alias,
            request.reference if request else None,
            voice_settings(line).whisper_seconds,
        )


def callback_connect(
    line: Line,
    call_id: int,
    call_sid: str,
    digits: str,
    now: datetime | None = None,
    status: str | None = None,
) -> Answer:
    """Ring the texter or caller from the line's number once the supporter pressed 1."""
    now = now or utcnow()
    with _step(line, now) as rt:
        session = rt.session
        call = _callback_call(session, call_id, call_sid)
        if _hung_up(line, rt, call, status):
            return Goodbye("en", None)
        if call.state in (ENDED, FAILED) or call.contact is None:
            return Goodbye("en", "callback_cancelled")
        if digits.strip() != "1":
            call.outcome = "supporter_declined"
            return Goodbye("en", "callback_cancelled")
        call.state = BRIDGING
        call.answered_by = None
        return CallbackDial(
            call.id,
            call.contact.alias,
            line.vault.decrypt(call.contact.phone_enc),
            voice_settings(line).ring_seconds + 10,
        )


def callback_screen(line: Line, call_id: int, parent_sid: str, answered_by: str | None) -> Answer:
    """Note who answered the person called back: a machine is hung up on, a person bridged."""
    with line.db.session() as session:
        call = _callback_call(session, call_id, parent_sid)
        call.answered_by = (answered_by or "unknown")[:24]
        if call.answered_by in MACHINE:
            # Their voicemail: nobody to talk to, so no message left on it in the line's name.
            return Goodbye("en", None)
        return Bridge()


def callback_done(
    line: Line,
    call_id: int,
    call_sid: str,
    dial_status: str,
    dial_seconds: int | None,
    now: datetime | None = None,
    status: str | None = None,
) -> Answer:
    """Record how the bridged call-back went and tell both sides if it did not connect.

    A call-back answered by the other person's voicemail (answering machine detection) is
    not a call-back done: the request stays open and the texter is told.
    """
    now = now or utcnow()
    with _step(line, now) as rt:
        session = rt.session
        call = _callback_call(session, call_id, call_sid)
        alias = call.contact.alias if call.contact else "the caller"
        if call.state != BRIDGING:
            _hung_up(line, rt, call, status)
            return Goodbye("en", "callback_ended")
        machine = call.answered_by in MACHINE
        if dial_status in ("completed", "answered") and not machine:
            call.state, call.outcome = CONNECTED, "connected"
            call.connected_at = call.connected_at or now
            call.talk_seconds = dial_seconds
            request = call.callback_request
            if request is not None:
                request.status, request.completed_at = REQUEST_DONE, now
                _resolve_alert(session, request, call, now)
            _hung_up(line, rt, call, status)
            return Goodbye("en", "callback_ended")
        call.state = ENDED
        if machine:
            call.outcome = "machine"
        else:
            unanswered = dial_status in UNANSWERED
            call.outcome = dial_status.replace("-", "_") if unanswered else "no_answer"
        _reopen(call)
        _tell_texter_missed(rt, call)
        _hung_up(line, rt, call, status)
        key = "callback_machine" if machine else "callback_no_answer"
        return Goodbye("en", key, {"alias": alias})


def _tell_texter_missed(rt: Context, call: Call) -> None:
    """Tell a texter who was told a supporter would call that the call did not happen."""
    if call.callback_request_id is not None or call.conversation_id is None:
        return  # a voicemail's caller was never promised this call
    chat = _chat(rt.session, call)
    if chat is None or call.contact is None or call.supporter is None:
        return
    rt.to_texter(call.contact, chat, "call_back_missed", name=call.supporter.name)


def _resolve_alert(session: Session, request: CallbackRequest, call: Call, now: datetime) -> None:
    """Resolve the coordinators' alert about a voicemail once someone has called back."""
    name = call.supporter.name if call.supporter else "a peer"
    for alert in session.scalars(
        select(Alert).where(
            Alert.kind == "voicemail",
            Alert.resolved_at.is_(None),
            Alert.detail.startswith(f"Voicemail {request.reference} "),
        )
    ):
        alert.resolved_at, alert.resolved_by = now, f"call-back by {name}"


def callback_status(
    line: Line,
    call_id: int,
    call_sid: str,
    status: str,
    seconds: int | None,
    now: datetime | None = None,
) -> None:
    """Apply an outbound call-back's status callback, once and never backwards."""
    now = now or utcnow()
    with _step(line, now) as rt:
        call = _callback_call(rt.session, call_id, call_sid)
        _apply_call_status(line, rt, call, status, seconds)


def _callback_ended(line: Line, rt: Context, call: Call, status: str) -> None:
    """Close a call-back; if the supporter's own phone never answered, tell them by text."""
    never_answered = call.state in (PLACING, DIALING, CALLING_SUPPORTER) and status in UNANSWERED
    if call.state in (CALLING_SUPPORTER, BRIDGING, DIALING, PLACING):
        call.outcome = call.outcome or (
            "supporter_" + status.replace("-", "_") if never_answered else "ended"
        )
    _reopen(call)
    if call.state in (CALLING_SUPPORTER, BRIDGING, DIALING, PLACING):
        _tell_texter_missed(rt, call)
    if call.state != FAILED:
        call.state = ENDED
    if never_answered and call.supporter is not None:
        alias = call.contact.alias if call.contact else "the caller"
        reference = f" {call.callback_request.reference}" if call.callback_request else ""
        _tell(
            rt,
            call.supporter,
            "sms_call_missed",
            _chat(rt.session, call),
            alias=alias,
            reference=reference,
        )


def catch_up(line: Line, now: datetime | None = None) -> int:
    """Re-enqueue call-backs whose job Redis lost, and fail ones a dead worker left; count."""
    now = now or utcnow()
    with line.db.session() as session:
        waiting = list(
            session.scalars(
                select(Call.id).where(
                    Call.state == PLACING, Call.created_at < now - timedelta(seconds=30)
                )
            )
        )
        stuck = list(
            session.scalars(
                select(Call.id).where(
                    Call.state == DIALING,
                    Call.call_sid.is_(None),
                    Call.created_at < now - timedelta(minutes=2),
                )
            )
        )
    for call_id in waiting:
        enqueue_placement(line, call_id)
    missed = _sweep_unfinished(line, now)
    for call_id in stuck:
        _placement_failed(line, call_id, None, now)
    return len(waiting) + len(stuck) + missed


def _sweep_unfinished(line: Line, now: datetime) -> int:
    """End inbound calls we never heard the end of, so a line without the optional status
    URL still frees its supporters and records who hung up before leaving a message."""
    # Long enough for any message to be recorded and its action to arrive.
    quiet_for = timedelta(seconds=voice_settings(line).voicemail_seconds) + timedelta(minutes=15)
    with _step(line, now) as rt:
        ids = list(
            rt.session.scalars(
                select(Call.id).where(
                    Call.direction == INBOUND,
                    Call.ended_at.is_(None),
                    or_(
                        (Call.state == VOICEMAIL)
                        & Call.callback_request_id.is_(None)
                        & (Call.created_at < now - quiet_for),
                        # A caller may sit in the menu or ringing rounds a while; hours, no.
                        Call.state.in_((MENU, RINGING)) & (Call.created_at < now - STALE_AFTER),
                    ),
                )
            )
        )
        for call_id in ids:
            _apply_call_status(line, rt, _lock(rt.session, Call, call_id), "completed", None)
    return len(ids)
