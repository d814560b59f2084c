"""Voicemail: a message kept as a call-back request, announced to supporters, transcribed."""

from __future__ import annotations

import logging
import re
import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from peerline.flows.catalogue import Phrase
from peerline.flows.menu import unaccented
from peerline.service.context import supporter_language, transaction
from peerline.service.models import Alert, AuditEvent, SafetyEvent, Supporter
from peerline.service.segments import count
from peerline.service.services import LineServices
from peerline.service.voice.answers import Answer, CallEvent, Goodbye, Recording, UnknownCall
from peerline.service.voice.models import REQUEST_DONE, Call, CallbackRequest
from peerline.service.voice.prompts import prompts
from peerline.service.voice.ringing import silent_crisis_caller
from peerline.service.voice.settings import telephony_available
from peerline.service.voice.shared import caller_contact, lock_row, locked_call
from peerline.service.voice.status import hung_up

if TYPE_CHECKING:
    from peerline.service.context import Context

log = logging.getLogger(__name__)

# A run of seven or more digits, spaces, dots, dashes or brackets between them allowed ("416
# 555 9005", "+1 (416) 555.9005"): maybe a phone number, never texted to staff from a
# transcript.
PHONE_DIGITS = re.compile(r"\+?\(?\d(?:[\s.()\-]*\d){6,}")
MASKED_NUMBER = "[number]"
# A number said as words is a phone number too ("four one six five five five nine oh oh
# five", "cuatro uno seis cinco...", "416 five five five 9005"): each word counts the digits
# it stands for. "oh" and "o" are zero only among other digits; "for"/"to" are what a
# transcriber may write for four and two.
_ONE_DIGIT = frozenset(
    "zero oh o one two three four five six seven eight nine for to too "
    "cero uno una dos tres cuatro cinco seis siete ocho nueve".split()
)
_TWO_DIGITS = frozenset(
    "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen "
    "twenty thirty forty fourty fifty sixty seventy eighty ninety "
    "diez once doce trece catorce quince dieciseis diecisiete dieciocho diecinueve "
    "veinte veintiuno veintiuna veintidos veintitres veinticuatro veinticinco veintiseis "
    "veintisiete veintiocho veintinueve treinta cuarenta cincuenta sesenta setenta ochenta "
    "noventa hundred".split()
)
# Tens that a unit completes as one two-digit number ("forty one", "cuarenta y uno").
_TENS = frozenset(
    "twenty thirty forty fourty fifty sixty seventy eighty ninety "
    "treinta cuarenta cincuenta sesenta setenta ochenta noventa".split()
)
_REPEAT = {"double": 2, "triple": 3, "doble": 2}
# What may stand between the digits of one number as said: punctuation and the "and"/"y"
# inside a two-digit number.
_BETWEEN = frozenset(",.-()/+")
_TOKENS = re.compile(r"[^\W_]+|\S")
_WEAK = frozenset({"o", "oh", "for", "to", "too"})


def _digits_of(word: str) -> int:
    """Return how many digits a word stands for in a number said aloud (0: none)."""
    if word.isdigit():
        return len(word)
    if word in _ONE_DIGIT:
        return 1
    return 2 if word in _TWO_DIGITS else 0


def _said_numbers(text: str) -> list[tuple[int, int]]:
    """Return the spans of numbers of seven or more digits said in words, digits or both."""
    words = [(m.start(), m.end(), unaccented(m.group())) for m in _TOKENS.finditer(text)]
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        said = words[i][2] in _REPEAT and i + 1 < len(words) and _digits_of(words[i + 1][2])
        if not (_digits_of(words[i][2]) or said):
            i += 1
            continue
        digits, last_digit, strong = 0, i, False
        previous, repeat = "", 1
        j = i
        while j < len(words):
            word = words[j][2]
            if n := _digits_of(word):
                # "forty one" and "cuarenta y uno" are two digits, not three.
                completes = previous in _TENS and n == 1 and word not in _WEAK
                digits += 0 if completes else n * repeat
                strong = strong or word not in _WEAK
                last_digit, previous, repeat = j, word, 1
            elif word in _REPEAT and j + 1 < len(words) and _digits_of(words[j + 1][2]):
                repeat = _REPEAT[word]
            elif not (word in _BETWEEN or (word in ("and", "y") and previous in _TENS)):
                break
            j += 1
        if digits >= 7 and strong:
            spans.append((words[i][0], words[last_digit][1]))
        i = j
    return spans


def mask_numbers(text: str) -> str:
    """Return transcript text with every run of digits that could be a phone number masked.

    Digits written as numerals, as words in English or Spanish, or mixed, all count.
    """
    text = PHONE_DIGITS.sub(MASKED_NUMBER, text)
    for start, end in reversed(_said_numbers(text)):
        text = text[:start] + MASKED_NUMBER + text[end:]
    return text


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


def voicemail(line: LineServices, event: CallEvent, recording: Recording) -> Answer:
    """Keep a voicemail as a call-back request and tell supporters, once per call.

    Both the <Record> action and the recording status callback land here, in either order.
    A crisis call's voicemail is marked as one, in the request, the notice and an alert.
    """
    with transaction(line, event.at) as rt:
        call = locked_call(rt.session, event.call_id, event.call_sid)
        answer = _keep_voicemail(line, rt, call, recording)
        if hung_up(line, rt, call, event.status):
            return Goodbye(call.language, None)
        return answer


def _keep_voicemail(line: LineServices, rt: Context, call: Call, recording: Recording) -> Answer:
    """Store a voicemail's request and announce it once; return what the caller hears."""
    session, now = rt.session, rt.now
    nothing = not recording.url or recording.status != "completed" or recording.seconds == 0
    if call.from_enc is None or (nothing and call.callback_request_id is None):
        # A crisis caller who said nothing is put through to the crisis line, not let go.
        return silent_crisis_caller(line, call) or Goodbye(call.language, "voicemail_none")
    request = call.callback_request
    if request is None:
        contact = caller_contact(rt, call)  # a new caller's contact speaks the call's language
        assert contact is not None
        request = _new_request(session, contact.id, call.language, now)
        call.callback_request_id = request.id
        call.callback_request = request
    if recording.sid and request.recording_sid is None:
        request.recording_sid = recording.sid
    if recording.url and request.recording_url_enc is None:
        request.recording_url_enc = line.vault.encrypt(recording.url)
    if recording.seconds:
        request.recording_seconds = recording.seconds
    request.crisis = request.crisis or call.crisis
    call.outcome = "voicemail"
    if request.notified_at is None:
        request.notified_at = now
        _announce_voicemail(line, rt, call, request)
    if not telephony_available(line.settings):
        # No call-back can be placed: no promise of one at the end (they are texted instead).
        return Goodbye(call.language, "goodbye")
    return Goodbye(call.language, "voicemail_saved")


def _announce_voicemail(
    line: LineServices, rt: Context, call: Call, request: CallbackRequest
) -> None:
    """Text supporters on shift (or on call) a reference, and offer the caller a text.

    On a line that cannot place calls (embedded mode without a Twilio endpoint) nobody is
    promised a call-back: the caller is texted to reply YES instead, and supporters hear so,
    not "#call".
    """
    session, texts = rt.session, prompts(line)
    contact = request.contact
    calls = telephony_available(line.settings)
    recipients = _recipients(line, rt)
    for supporter in recipients:
        # In the supporter's first language, the caller's language named in it (issue 21).
        speaks = supporter_language(supporter)
        facts: dict[str, Any] = {
            "reference": request.reference,
            "alias": contact.alias,
            "seconds": request.recording_seconds or 0,
        }
        spoken = rt.render(speaks, f"language_{call.language}")
        if calls:
            key = "sms_crisis_voicemail_notice" if request.crisis else "sms_voicemail_notice"
            notice = texts.text(speaks, key, language=spoken, **facts)
        else:
            key = "voicemail_notice_no_calls" + ("_crisis" if request.crisis else "")
            key += "_opted_out" if contact.opted_out else ""
            notice = rt.render(speaks, key, {**facts, "speaks": spoken})
        rt.to_supporter(supporter, "voicemail", text=notice)
    if not recipients:
        log.warning("nobody on shift or on call to hear of voicemail %s", request.reference)
    if request.crisis:
        _crisis_voicemail_alert(rt, request)
    waiting = "is waiting for a call-back"
    if not calls:
        instead = "they opted out of texts" if contact.opted_out else "texted to reply YES"
        waiting = f"cannot be called back: this line cannot place calls ({instead})"
    session.add(
        Alert(
            kind="voicemail",
            detail=(
                f"Voicemail {request.reference} from {contact.alias} "
                f"({request.recording_seconds or 0} s) {waiting}"
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
            text=(
                texts.text(call.language, "sms_voicemail_saved")
                if calls
                else rt.render(call.language, "voicemail_saved_no_calls")
            ),
            conversation_id=None,
        )


def _recipients(line: LineServices, rt: Context) -> list[Supporter]:
    """Return who hears of a voicemail: supporters on shift, else those on call."""
    session = rt.session
    rotas = rt.rotas()
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
    what = Phrase(
        "alert_what_voicemail",
        {"kind": rt.crisis_kind(request.crisis), "reference": request.reference},
    )
    rt.safety_alert("crisis_voicemail", None, request.contact.alias, what, call=True)


def transcription(
    line: LineServices, event: CallEvent, recording_sid: str | None, text: str | None, status: str
) -> bool:
    """Keep a voicemail's transcription, check it for crisis words and tell supporters.

    Supporters get a short summary by reference, never the recording; a transcription that
    holds crisis words marks the voicemail and alerts the on-call coordinators. Once per
    voicemail: Twilio may send the callback again.
    """
    now = event.at
    with transaction(line, now) as rt:
        call = locked_call(rt.session, event.call_id, event.call_sid)
        request = call.callback_request
        if request is None:
            return False
        request = lock_row(rt.session, CallbackRequest, request.id)
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
        calls = telephony_available(line.settings)
        for supporter in _recipients(line, rt):
            speaks = supporter_language(supporter)
            facts = {"reference": request.reference, "alias": request.contact.alias, "words": ""}
            if request.crisis and not calls:
                # No "call back soon" where no call can be placed.
                summary = rt.render(speaks, "voicemail_summary_crisis_no_calls", facts)
            else:
                key = "sms_voicemail_summary_crisis" if request.crisis else "sms_voicemail_summary"
                summary = texts.text(speaks, key, **facts)
            # Word for word but for phone numbers, the caller's or anyone's.
            quote = _summary(mask_numbers(text), summary)
            notice = summary.replace('""', f'"{quote}"')
            rt.to_supporter(supporter, "voicemail_summary", text=notice)
    return True


def _summary(text: str, frame: str) -> str:
    """Return the start of a transcript, cut on a word to fit two SMS segments in `frame`."""
    words = text.split()
    for n in range(len(words), 0, -1):
        quote = " ".join(words[:n]) + ("" if n == len(words) else "...")
        if count(frame.replace('""', f'"{quote}"')) <= 2:
            return quote
    return ""


def recording_url_for_coordinator(
    line: LineServices, session: Session, request_id: int, actor: str
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
