"""The voice menu: a call comes in, is greeted, and the caller's choice is acted on."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from peerline.flows.catalogue import Phrase
from peerline.flows.language import guess
from peerline.flows.menu import (
    ABOUT,
    CRISIS,
    EMERGENCY,
    GROUPS,
    LANGUAGES,
    PEER,
    REPEAT,
    SWITCH,
    TEXT_GROUPS,
    WORRIED,
    distress,
    names,
    parse_choice,
    read_answer,
)
from peerline.service.context import transaction
from peerline.service.crisis_detection import Detection
from peerline.service.groups import upcoming_text
from peerline.service.models import Block, Contact, SafetyEvent, utcnow
from peerline.service.services import LineServices
from peerline.service.voice.answers import (
    Answer,
    CallEvent,
    DialEnd,
    Goodbye,
    GroupTimes,
    InboundCall,
    LeaveMessage,
    Menu,
    Ring,
)
from peerline.service.voice.models import (
    ENDED,
    INBOUND,
    MENU,
    OFFERED,
    SOMEONE_ELSE,
    TRANSFERRED,
    VOICEMAIL,
    Call,
)
from peerline.service.voice.prompts import prompts
from peerline.service.voice.ringing import (
    crisis_offer,
    current_answer,
    silent_crisis_caller,
    start_round,
    to_crisis_line,
)
from peerline.service.voice.shared import caller_contact, locked_call
from peerline.service.voice.spoken import asks_repeat, heard, says_again
from peerline.service.voice.status import hung_up

if TYPE_CHECKING:
    from peerline.service.context import Context

log = logging.getLogger(__name__)


# Menus without a choice (silence or a wrong key) before we connect the caller anyway:
# someone who cannot press keys or speak clearly still reaches a person, and nobody loops.
MENUS_BEFORE_PEER = 2
# A crisis transfer that connected and ended sooner than this (seconds), the caller still on,
# most likely never reached a counsellor: the caller hears where to turn and 3 again.
SHORT_CRISIS_SECONDS = 20
# The menu's key for the crisis line.
CRISIS_KEY = "3"

# Words that name suicide, which the detector may pass over when said alone ("suicide", as a
# menu answer), and the language each is. A negation before one is read as the menu reads
# one before "crisis" ("I'm not suicidal, I just want to talk").
SUICIDE_WORDS = {
    "suicide": "en",
    "suicidal": "en",
    "suicidio": "es",
    "suicida": "es",
    "suicidas": "es",
}
_SUICIDE = re.compile(
    r"\b(" + "|".join(sorted(SUICIDE_WORDS, key=len, reverse=True)) + r")\b", re.IGNORECASE
)


def receive_call(line: LineServices, inbound: InboundCall, now: datetime | None = None) -> Answer:
    """Record a new call and greet it; a retried webhook gets what the call hears now."""
    now = now or utcnow()
    with transaction(line, now) as rt:
        session = rt.session
        existing = session.scalar(select(Call).where(Call.call_sid == inbound.call_sid))
        if existing is not None:
            return current_answer(line, rt, existing, now)
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
            return current_answer(line, rt, existing, now)
        if blocked:
            return Goodbye(call.language, "blocked")
        return Menu(call.id, call.language, 0, greeting=True)


def choose(
    line: LineServices,
    event: CallEvent,
    digits: str,
    speech: str,
    menu_language: str | None,
    attempt: int | None = None,
) -> Answer:
    """Act on a menu choice (keys or speech); two menus without one connect to a peer.

    `menu_language` is the language of the menu the caller answered, so that key 8 means
    the same thing when Twilio sends the request again. Crisis words are looked for in what
    was said before any menu word: they get the crisis line offered at once, and the call
    waits at that offer, so the same request sent again is told the offer again.

    `attempt` is the menu's own count of menus passed without a choice (None from a URL
    given before menus named it): a miss (wrong key, silence, words that are no choice)
    at a menu whose miss was counted already is that miss sent again, answered as it was
    the first time and not counted twice.
    """

    # A number said alone is the key it names ("three", "tres", "3").
    digits, speech = heard(digits, speech)

    def act(rt: Context, call: Call, now: datetime) -> Answer:
        heard_in = menu_language or call.language
        if (
            attempt is not None
            and attempt < call.menu_attempts
            and _a_miss(line, digits, speech, heard_in)
        ):
            return _miss_again(line, rt, call, attempt, _miss_notice(digits, speech), now)
        if call.state != MENU:
            return _said_in(current_answer(line, rt, call, now), call, heard_in)
        return _said_in(_act_on(line, rt, call, digits, speech, heard_in), call, heard_in)

    return _unless_gone(line, event, act)


def _said_in(answer: Answer, call: Call, heard_in: str) -> Answer:
    """Return the answer to words said at a menu or offer in `heard_in`: when the call is now
    in the other language (a choice said in it, "quiero hablar con alguien"), the ringing or
    the message prompt says the 911 line in it first, since the greeting or the offer the
    caller heard said it only in `heard_in`. The same for a request Twilio sends again."""
    if call.language == heard_in:
        return answer
    if isinstance(answer, Ring) and answer.notice is None:
        return replace(answer, notice="emergency")
    if isinstance(answer, LeaveMessage) and not (answer.crisis or answer.quiet or answer.notice):
        return replace(answer, notice="emergency")
    return answer


def _a_miss(line: LineServices, digits: str, speech: str, heard_in: str) -> bool:
    """Say whether an answer at the menu is one it counts as a miss: no key or word of the
    menu, no words in the other language, and no crisis words."""
    if read_answer(digits, speech, heard_in)[0] is not None or asks_repeat(speech, heard_in):
        return False
    if not digits and distress(speech):
        return False
    found, worried, named = _crisis_in(line, speech, heard_in)
    return found is None and not worried and not named


def _crisis_in(
    line: LineServices, speech: str, heard_in: str
) -> tuple[Detection | None, bool, str | None]:
    """Return what words said tell, as texts are read: the crisis found (None if none),
    whether they tell of someone else at risk and of no crisis of the caller's own (a worried
    caller), and, for a caller not worried, the language of a word that named suicide."""
    if not speech:
        return None, False, None
    detection, worried = line.crisis.answer(speech, line.crisis.detect(speech))
    found = detection if detection.matched else None
    return found, worried, None if worried else _suicide_named(speech, heard_in)


def _miss_notice(digits: str, speech: str) -> str:
    """Return what a menu says first after a miss: a wrong key or words, or silence."""
    return "not_an_option" if digits or speech else "no_input"


def _miss_again(
    line: LineServices, rt: Context, call: Call, attempt: int, notice: str, now: datetime
) -> Answer:
    """Answer a miss counted already (Twilio sent it again) as it was answered the first time:
    the menu with its notice, or where the call went since; the miss that connected the
    caller said so before the phones rang."""
    if call.state == MENU:
        return Menu(call.id, call.language, call.menu_attempts, notice=notice)
    answer = current_answer(line, rt, call, now)
    if attempt + 1 == MENUS_BEFORE_PEER and isinstance(answer, Ring) and answer.round == 1:
        return replace(answer, notice="connecting")
    return answer


def answer_offer(
    line: LineServices, event: CallEvent, digits: str, speech: str, offer_language: str
) -> Answer:
    """Act on the answer to the crisis offer: 3 the crisis line, the menu's keys as at the
    menu, anything else a person (no more menus); a language asked for (8, its name) hears
    the same offer in it.

    A number said alone is its key. Key 9 or words asking to hear it again ("repeat",
    "again", "repetir") say the same offer again. The offer made again after a transfer (it
    says "to try the crisis line again, press 3") takes "again", "try again", "otra vez" as
    that 3 instead.
    """
    keys, words = heard(digits, speech)

    def answered(rt: Context, call: Call, now: datetime) -> Answer:
        if call.state != OFFERED:
            return _said_in(current_answer(line, rt, call, now), call, offer_language)
        call.state = MENU
        pressed = keys
        if not pressed and call.crisis_transfers > 0 and says_again(words):
            pressed = CRISIS_KEY
        answer = _act_on(line, rt, call, pressed, words, offer_language, at_offer=True)
        return _said_in(answer, call, offer_language)

    return _unless_gone(line, event, answered)


def _act_on(
    line: LineServices,
    rt: Context,
    call: Call,
    digits: str,
    speech: str,
    heard_in: str,
    *,
    at_offer: bool = False,
) -> Answer:
    """Act on what a caller at the menu, or at the crisis offer (`at_offer`), pressed or said.

    At the crisis offer, a language asked for (key 8, its name) is told the same offer in it,
    and asking to hear it again (key 9, "repeat", "otra vez"), what the line is ("is this
    the helpline?") or for 911 (the offer says it first) is told the same offer: never the
    menu.
    """
    # Words that tell of someone else at risk are read apart from the rest, as texts are: the
    # rest may be the caller's own crisis ("my friend wants to kill herself and I want to die").
    found, worried, named = _crisis_in(line, speech, heard_in)
    if (found is not None or named or worried) and call.crisis is None:
        # Answered in the words' language: the detector's, else as the texting flow
        # guesses it, else the language of the word that named suicide.
        said_in = (found.language if found else None, guess(speech), named)
        call.language = next((str(x) for x in said_in if x in LANGUAGES), call.language)
        if worried:
            # Someone else at risk, and no crisis of the caller's: what to do for them (911
            # if in danger now, 988 helps friends and family too: 3), or a peer; recorded as
            # a safety event. Only an alarm the words raise all the same flags the call.
            _note_worry(rt, call)
        if found is not None or named:
            category = (found.category if found else None) or "crisis"
            _raise_crisis(line, rt, call, category, "voice_menu", other=worried)
        call.state = OFFERED
        return crisis_offer(line, rt, call, rt.now, worried=worried)
    # A language asked for (key 8, its name) is SWITCH; a choice said in the other language
    # ("quiero hablar con alguien" at the English menu) switches and is acted on.
    choice, language = read_answer(digits, speech, heard_in)
    if not digits and asks_repeat(speech, heard_in):
        # "Sorry, what?", "¿qué dijo?": the menu, or the offer, said again; no miss.
        choice, language = REPEAT, heard_in
    elif not digits and choice in (None, SWITCH) and (felt := distress(speech)):
        # Distress naming no choice ("I'm so lonely", "tengo miedo") is a person, in the
        # words' language; worry for someone named ("I'm worried about my son") the worried
        # caller's offer.
        choice = felt
    if choice == SWITCH or language != heard_in:
        call.language = language
    if choice == WORRIED and call.crisis is None:
        # Words of someone else's crisis the detector passed over ("my friend is in crisis,
        # what do I do"): the worried caller's offer, as the detector's worry gets.
        _note_worry(rt, call)
        call.state = OFFERED
        return crisis_offer(line, rt, call, rt.now, worried=True)
    if choice == WORRIED:
        choice = PEER
    if at_offer and choice in (SWITCH, REPEAT, ABOUT, EMERGENCY):
        call.state = OFFERED
        return current_answer(line, rt, call, rt.now)
    if choice is None and (call.crisis is not None or call.menu_choice == SOMEONE_ELSE):
        # After the crisis offer (the worried caller's too), anything but the crisis line
        # means a person: no menus.
        choice = PEER
    if choice is None:
        call.menu_attempts += 1
        if call.menu_attempts < MENUS_BEFORE_PEER:
            notice = _miss_notice(digits, speech)
            return Menu(call.id, call.language, call.menu_attempts, notice=notice)
        return _choose_peer(line, rt, call, "connecting")
    return MENU_ACTIONS[choice](line, rt, call, None)


def _note_worry(rt: Context, call: Call) -> None:
    """Mark a call as a worried caller's, recording a safety event (no alert) once a call."""
    if call.menu_choice != SOMEONE_ELSE:
        worry = SafetyEvent(source="detector", category="voice_someone_else")
        rt.session.add(worry)
        worry.created_at = rt.now
    call.menu_choice = SOMEONE_ELSE


def _unless_gone(
    line: LineServices, event: CallEvent, then: Callable[[Context, Call, datetime], Answer]
) -> Answer:
    """Lock the call and answer with `then`, unless its status says the caller hung up."""
    with transaction(line, event.at) as rt:
        call = locked_call(rt.session, event.call_id, event.call_sid)
        if hung_up(line, rt, call, event.status):
            return Goodbye(call.language, None)
        return then(rt, call, event.at)


def connect(line: LineServices, event: CallEvent, told: bool = False) -> Answer:
    """Ring supporters for a caller who stayed on after the crisis offer.

    `told` is an offer that said nobody could answer (its 911, 3 and what staying on leads
    to): the message prompt that follows it, when nobody can answer still, says only what is
    new. A request Twilio sends again is told the same.
    """

    def ring(rt: Context, call: Call, now: datetime) -> Answer:
        # At the menu too: an offer said before offers had a state of their own.
        if call.state in (OFFERED, MENU):
            answer = _choose_peer(line, rt, call, None)
        else:
            answer = current_answer(line, rt, call, now)
        if told and isinstance(answer, LeaveMessage):
            return replace(answer, told=True)
        return answer

    return _unless_gone(line, event, ring)


def answer_now(
    line: LineServices, event: CallEvent, digits: str = "", transfers: int | None = None
) -> Answer:
    """Return where the call is, without the notice a key press just skipped.

    3 at the message prompt is put through to the crisis line as the menu's 3 does, for a
    crisis call told to press 3 and for any caller the menu told 3 is the crisis line; any
    other key goes on quietly (to the beep). The message prompt
    names the call's crisis `transfers` before it (None from a prompt given before it did,
    or from another notice): its 3 sent again, once that 3 put the call through, gets the
    same transfer, said as the first time, and nothing is done twice.
    """

    def skipped(rt: Context, call: Call, now: datetime) -> Answer:
        if parse_choice(digits, "") == CRISIS:
            if call.state == VOICEMAIL and call.callback_request_id is None:
                return _choose_crisis(line, rt, call, None)
            if (
                transfers is not None
                and call.state == TRANSFERRED
                and call.crisis_transfers == transfers + 1
            ):
                return current_answer(line, rt, call, now)
        return current_answer(line, rt, call, now, quiet=True)

    return _unless_gone(line, event, skipped)


def silent_at_tone(line: LineServices, event: CallEvent) -> Answer:
    """Put a crisis caller who said nothing at the message tone through to the crisis line
    (told so first), once a call, and the same transfer to the request sent again; after a
    transfer already made and ended, or with a message kept, goodbye as to anyone silent."""

    def silent(rt: Context, call: Call, now: datetime) -> Answer:
        if call.state == TRANSFERRED and call.crisis is not None:
            return current_answer(line, rt, call, now)  # the request sent again: the same
        return silent_crisis_caller(line, call) or Goodbye(call.language, "voicemail_none")

    return _unless_gone(line, event, silent)


def _suicide_named(speech: str, menu_language: str) -> str | None:
    """Return the language of a word naming suicide said as a menu answer (three words at
    most: "suicide", "suicidal thoughts"), unless negated; in longer words the detector reads
    it ("my brother died by suicide last year, can I talk to someone" is no crisis call)."""
    if len(speech.split()) > 3:
        return None
    found = _SUICIDE.search(speech)
    if found is None or not names(_SUICIDE.sub("crisis", speech), "crisis"):
        return None
    return SUICIDE_WORDS[found.group(1).lower()]


def _raise_crisis(
    line: LineServices, rt: Context, call: Call, category: str, source: str, *, other: bool = False
) -> None:
    """Mark a call as a crisis, record the event and alert the on-call coordinators, once.

    The caller is named by their alias, a first-time caller's new one too (as their missed
    call or voicemail names them); only a hidden number is "a caller". Words of someone else's
    danger (`other`: "my daughter took pills") are alerted as that, not as the caller's own.
    """
    if call.crisis is not None:
        return
    call.crisis = category[:16]
    rt.session.add(SafetyEvent(source="detector", category=source, created_at=rt.now))
    contact = caller_contact(rt, call)
    alias = contact.alias if contact else Phrase("a_caller")
    what = "alert_what_call_someone_else" if other else "alert_what_call"
    crisis = Phrase(what, {"kind": rt.crisis_kind(category)})
    rt.safety_alert("crisis", None, alias, crisis, call=True)


def _choose_peer(line: LineServices, rt: Context, call: Call, notice: str | None) -> Answer:
    """Ring supporters (menu 1)."""
    if call.menu_choice != SOMEONE_ELSE:
        # A worried caller who asks for a peer stays one: the supporter hears whose danger.
        call.menu_choice = PEER
    return start_round(line, rt, call, rt.now, notice)


def _choose_groups(line: LineServices, rt: Context, call: Call, notice: str | None) -> Answer:
    """Read out the next group meetings (menu 2)."""
    call.menu_choice, call.outcome = GROUPS, call.outcome or "groups"
    spoken = _groups_text(line, rt.session, call.language, rt.now)
    can_text = bool(spoken) and _can_text(rt, call)
    return GroupTimes(call.id, call.language, call.menu_attempts, spoken, can_text)


def _choose_crisis(line: LineServices, rt: Context, call: Call, notice: str | None) -> Answer:
    """Transfer to the crisis line (menu 3)."""
    return to_crisis_line(line, call)


def _choose_text_groups(line: LineServices, rt: Context, call: Call, notice: str | None) -> Answer:
    """Text the group times and links, once, to a caller we may text (4)."""
    tz = line.timezone(rt.session)
    groups = upcoming_text(rt.session, tz, rt.now, call.language)
    if not groups or not _can_text(rt, call):
        return Menu(call.id, call.language, call.menu_attempts, notice="not_an_option")
    if call.groups_texted_at is not None:
        return Menu(call.id, call.language, call.menu_attempts, notice="groups_texted")
    assert call.from_enc is not None
    call.groups_texted_at = rt.now
    rt.send(
        to_phone=line.vault.decrypt(call.from_enc),
        recipient_kind="texter",
        purpose="voice_groups",
        text=prompts(line).text(call.language, "sms_groups", groups=groups),
        conversation_id=None,
    )
    return Menu(call.id, call.language, call.menu_attempts, notice="groups_texted")


def _choose_repeat(line: LineServices, rt: Context, call: Call, notice: str | None) -> Answer:
    """Say the menu again (menu 9)."""
    return Menu(call.id, call.language, call.menu_attempts)


def _choose_about(line: LineServices, rt: Context, call: Call, notice: str | None) -> Answer:
    """Answer a question about the line ("is this the helpline?") with the greeting: the
    line's name, 911, the keys and what the line is and is not; no miss is counted."""
    return Menu(call.id, call.language, call.menu_attempts, greeting=True)


def _choose_emergency(
    line: LineServices, rt: Context, call: Call, notice: str | None
) -> Answer:
    """Answer help asked of 911 ("call 911", "I need an ambulance"), which we cannot dial:
    hang up and call 9 1 1 now, said at once, then the menu; no miss is counted."""
    return Menu(call.id, call.language, call.menu_attempts, notice="danger_911")


def _choose_language(line: LineServices, rt: Context, call: Call, notice: str | None) -> Answer:
    """Greet the caller in the language just chosen (menu 8, or its name), with its notice."""
    # choose() set the language.
    return Menu(call.id, call.language, call.menu_attempts, greeting=True, switched=True)


MENU_ACTIONS: dict[str, Callable[[LineServices, Context, Call, str | None], Answer]] = {
    PEER: _choose_peer,
    GROUPS: _choose_groups,
    CRISIS: _choose_crisis,
    TEXT_GROUPS: _choose_text_groups,
    REPEAT: _choose_repeat,
    SWITCH: _choose_language,
    ABOUT: _choose_about,
    EMERGENCY: _choose_emergency,
}


def _can_text(rt: Context, call: Call) -> bool:
    """Say whether we may text this caller: a known number that has not opted out."""
    if call.from_enc is None:
        return False
    contact = rt.session.get(Contact, call.contact_id) if call.contact_id else None
    return contact is None or not contact.opted_out


def _groups_text(line: LineServices, session: Session, language: str, now: datetime) -> str | None:
    """Return the next group meetings as words to speak: links are for texts, not ears."""
    text = upcoming_text(session, line.timezone(session), now, language, spoken=True)
    if not text:
        return None
    return " ".join(re.sub(r"https?://\S+", "", text).split())


def crisis_done(
    line: LineServices, event: CallEvent, dial: DialEnd, attempt: int | None = None
) -> Answer:
    """Finish a crisis transfer; one that never connected offers the crisis line again.

    The caller who asked for the crisis line and could not reach it is flagged a crisis, so
    a coordinator hears of it and staying on rings everyone free. Twilio may send the same
    dial's end again: only a call still being transferred acts on it, and a call waiting at
    the offer is told it again. The end of an earlier transfer than the call's last (its
    `attempt`, from the <Dial> action; None from a URL without one) changes nothing: it is
    answered with where the call is now, without its notice. A transfer that connected and
    ended within SHORT_CRISIS_SECONDS, the caller still on, most likely reached nobody: the
    on-call coordinators are alerted (once a call, as for a failed transfer) and the caller is
    told where to turn with 3 to try again, then staying on rings a peer when one can answer,
    else goodbye: never a bare hang-up.
    """
    dial_status = dial.status
    with transaction(line, event.at) as rt:
        call = locked_call(rt.session, event.call_id, event.call_sid)
        if attempt is not None and attempt != call.crisis_transfers:
            # A late or repeated end of an earlier transfer: the caller has moved on since.
            last = call.crisis_transfers
            log.info(
                "call %s: stale end of crisis transfer %s ignored (last %s)", call.id, attempt, last
            )
            if hung_up(line, rt, call, event.status):
                return Goodbye(call.language, None)
            return current_answer(line, rt, call, rt.now, quiet=True)
        if dial_status in ("completed", "answered"):
            if hung_up(line, rt, call, event.status):
                return Goodbye(call.language, None)
            short = dial.seconds is not None and dial.seconds < SHORT_CRISIS_SECONDS
            if short and call.state in (TRANSFERRED, OFFERED):
                # Said again to a retried end; a caller who moved on since is not brought back.
                if call.state == TRANSFERRED:
                    call.state, call.outcome = OFFERED, "crisis_transfer_short"
                    # Most likely no counsellor was reached: the on-call hear of it, once.
                    _raise_crisis(line, rt, call, "crisis", "voice_transfer_short")
                if call.outcome == "crisis_transfer_short":
                    return crisis_offer(line, rt, call, rt.now, ended=True)
            return Goodbye(call.language, None)
        if call.state != TRANSFERRED:
            if hung_up(line, rt, call, event.status):
                return Goodbye(call.language, None)
            return current_answer(line, rt, call, rt.now)
        call.outcome = "crisis_transfer_failed"
        if hung_up(line, rt, call, event.status):
            return Goodbye(call.language, None)
        call.state = OFFERED
        _raise_crisis(line, rt, call, "crisis", "voice_transfer_failed")
        return crisis_offer(line, rt, call, rt.now, failed=True)
