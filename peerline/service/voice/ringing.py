"""Ringing supporters: who is free to ring, each round of rings, and what a call hears now."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from peerline.flows.texter import ATTEMPT
from peerline.service.availability import (
    MONTHS_ES,
    SPOKEN_DAYS_ES,
    Rotas,
    english_clock,
    format_opening,
)
from peerline.service.call_states import STALE_AFTER, TERMINAL, UNANSWERED
from peerline.service.context import transaction
from peerline.service.grouped import grouped
from peerline.service.models import ACTIVE, PENDING, Conversation, Offer, Supporter, utcnow
from peerline.service.services import LineServices
from peerline.service.voice.answers import (
    Answer,
    CallEvent,
    CrisisOffer,
    DialEnd,
    Goodbye,
    LeaveMessage,
    Menu,
    Ring,
    RingLeg,
    Transfer,
)
from peerline.service.voice.models import (
    CALLBACK,
    CONNECTED,
    ENDED,
    FAILED,
    MENU,
    OFFERED,
    RINGING,
    SOMEONE_ELSE,
    TRANSFERRED,
    VOICEMAIL,
    Call,
    CallLeg,
)
from peerline.service.voice.settings import voice_settings
from peerline.service.voice.shared import locked_call, tell_supporter
from peerline.service.voice.status import hung_up

if TYPE_CHECKING:
    from peerline.service.context import Context


# Twilio dials at most ten <Number>s at once in one <Dial>.
MAX_SIMULTANEOUS = 10


# Why a caller is asked to leave a message (each a prompt saying so).
LEAVE_REASONS = frozenset({"closed", "closed_no_shifts", "busy", "no_answer"})


# How far ahead, in days, an opening is named by its weekday alone; further, by its date.
WEEKDAY_HORIZON = 6


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
    line: LineServices, session: Session, rotas: Rotas, supporter_ids: Sequence[int], now: datetime
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
    line: LineServices,
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
    if not crisis:
        # Resting after a crisis chat (issue 21): no call either, but a crisis call rings them.
        found = [s for s in found if s.paused_until is None or s.paused_until <= now]
    if not settings.calls_during_chat and not crisis:
        busy = _busy_by_sms(session, [s.id for s in found])
        found = [s for s in found if s.id not in busy]
    if rotas is not None and not crisis:
        capped = _at_shift_cap(line, session, rotas, [s.id for s in found], now)
        found = [s for s in found if s.id not in capped]
    if caller_hash is not None:
        # A supporter testing the line from their own phone must not ring themselves.
        found = [s for s in found if s.phone_hash != caller_hash]
    last_rung = grouped(
        session,
        CallLeg.supporter_id,
        func.max(CallLeg.created_at),
        CallLeg.supporter_id.in_([s.id for s in found]),
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


def _next_round(
    line: LineServices, session: Session, rotas: Rotas, call: Call, now: datetime
) -> tuple[list[Supporter], Conversation | None, str | None]:
    """Return whom a round started now would ring, and the SMS chat of a supporter rung
    alone because they are texting with this caller; or, when there is nobody, why not (a
    LEAVE_REASONS reason). Nothing is changed."""
    on_shift = rotas.on_shift(now)
    if not on_shift:
        return [], None, "closed" if rotas.next_opening(now) else "closed_no_shifts"
    settings = voice_settings(line)
    if call.round >= settings.max_rounds:
        return [], None, "no_answer"
    if call.round == 0 and call.crisis is None:
        # The supporter already texting with this caller is rung first, alone.
        texting = _texting_supporter(session, call, on_shift, now)
        if texting is not None:
            supporter, chat = texting
            return [supporter], chat, None
    # Tried: answered and did not accept, or rang out. A leg cut short because someone
    # else's phone answered first may be rung again.
    tried = {leg.supporter_id for leg in call.legs if leg.outcome not in (None, "canceled")}
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
        # Only those who speak the caller's language while any is free; the others (their
        # whisper says so) when none is.
        candidates = speakers
    if not candidates:
        return [], None, "busy" if call.round == 0 else "no_answer"
    return candidates[:size], None, None


def nobody_to_ring(
    line: LineServices, session: Session, rotas: Rotas, call: Call, now: datetime
) -> str | None:
    """Return why nobody could answer if this call rang now (closed, busy, no answer: a
    LEAVE_REASONS reason), or None when someone would be rung."""
    return _next_round(line, session, rotas, call, now)[2]


def start_round(
    line: LineServices, rt: Context, call: Call, now: datetime, notice: str | None
) -> Answer:
    """Ring the next supporters for a call, or offer a voicemail when there are none."""
    session = rt.session
    rotas = rt.rotas()
    chosen, chat, nobody = _next_round(line, session, rotas, call, now)
    if nobody is not None and _to_crisis_line(call):
        # A crisis caller who cannot leave a message for a call back, and whom nobody can
        # answer, is put through to the crisis line (told so first), never hung up on.
        return to_crisis_line(line, call, nobody=True)
    if nobody is not None:
        call.state, call.outcome = VOICEMAIL, nobody
        return leave_message(line, rt, call, nobody, now, rotas=rotas)
    if chat is not None:
        # The supporter texting with this caller is told why their phone rings.
        tell_supporter(rt, chosen[0], "sms_chat_caller_calling", chat, alias=chat.contact.alias)
    call.round += 1
    call.state = RINGING
    legs = [
        CallLeg(call_id=call.id, supporter_id=s.id, round=call.round, created_at=now)
        for s in chosen
    ]
    session.add_all(legs)
    session.flush()
    return _ring_answer(line, call, legs, notice)


def silent_crisis_caller(line: LineServices, call: Call) -> Transfer | None:
    """Return the transfer to the crisis line for a crisis caller who left no message at the
    tone (nobody could answer them), once a call; None for anyone else."""
    if (
        call.crisis is None
        or call.state != VOICEMAIL
        or call.callback_request_id is not None
        or call.crisis_transfers
    ):
        return None
    return to_crisis_line(line, call, nobody=True)


def to_crisis_line(line: LineServices, call: Call, *, nobody: bool = False) -> Transfer:
    """Put a call through to the crisis line, counting the transfer; `nobody`: it is told
    first that nobody here can answer."""
    call.menu_choice, call.state, call.outcome = "crisis", TRANSFERRED, "crisis_transfer"
    call.crisis_transfers += 1
    number = voice_settings(line).crisis_number
    return Transfer(call.id, call.language, number, call.crisis_transfers, nobody=nobody)


def _to_crisis_line(call: Call) -> bool:
    """Say whether a call nobody can answer goes to the crisis line: a crisis caller with a
    hidden number (no message, no call back), not yet put through to it."""
    return call.crisis is not None and call.from_enc is None and call.crisis_transfers == 0


def _ring_answer(
    line: LineServices, call: Call, legs: Sequence[CallLeg], notice: str | None
) -> Ring:
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
        day = f"el {SPOKEN_DAYS_ES[local.weekday()]} {local.day} de {MONTHS_ES[local.month - 1]}"
        return f"{day} a las {local.strftime('%H:%M')} ({local.tzname()})"
    if (local.hour, local.minute) == (0, 0):
        # As `format_opening` says it: the night that midnight ends.
        eve = local - timedelta(days=1)
        night = f"{eve.strftime('%A')}, {eve.strftime('%B')} {eve.day}"
        return f"on the night of {night}, at midnight ({local.tzname()})"
    date = f"{local.strftime('%A')}, {local.strftime('%B')} {local.day}"
    return f"on {date}, at {english_clock(local)} ({local.tzname()})"


def crisis_offer(
    line: LineServices,
    rt: Context,
    call: Call,
    now: datetime,
    *,
    failed: bool = False,
    ended: bool = False,
    worried: bool = False,
) -> CrisisOffer:
    """Return the crisis offer (see CrisisOffer) in the call's language, saying truthfully
    what staying on leads to: a peer rung when someone could answer, else why not."""
    # The offer after a transfer that ended at once says goodbye when nobody can answer.
    nobody = nobody_to_ring(line, rt.session, rt.rotas(), call, now)
    return CrisisOffer(
        call.id,
        call.language,
        failed=failed,
        ended=ended,
        worried=worried,
        nobody=nobody,
        can_record=call.from_enc is not None,
        to_crisis_line=nobody is not None and _to_crisis_line(call),
        attempt=call.crisis == ATTEMPT and not worried,
    )


def leave_message(
    line: LineServices,
    rt: Context,
    call: Call,
    reason: str,
    now: datetime,
    *,
    quiet: bool = False,
    rotas: Rotas | None = None,
) -> LeaveMessage:
    """Return the answer that says why nobody can answer and records a message; `rotas` are
    the context's, when the caller has them already."""
    opening = None
    if reason == "closed":
        rotas = rotas or rt.rotas()
        tz = rotas.tz
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
        transfers=call.crisis_transfers,
        quiet=quiet,
        crisis=call.crisis is not None,
    )


def dial_ended(line: LineServices, event: CallEvent, round_number: int, dial: DialEnd) -> Answer:
    """Act on the end of a ringing round: after a talk say goodbye, else ring on or record.

    The caller's own CallStatus comes with it: a caller who hung up while the phones rang is
    ended here, legs and all, with or without a status callback to follow.
    """
    now = event.at
    with transaction(line, now) as rt:
        session = rt.session
        call = locked_call(session, event.call_id, event.call_sid)
        if call.round == round_number and call.state == CONNECTED and dial.seconds is not None:
            call.talk_seconds = call.talk_seconds or dial.seconds
        if hung_up(line, rt, call, event.status):
            return Goodbye(call.language, None)  # legs ended, supporters free for texts
        if call.round != round_number or call.state not in (RINGING, CONNECTED):
            return current_answer(line, rt, call, now)
        if call.state == CONNECTED:
            # The supporter hung up first and the caller is still on the line.
            rt.after_commit.match = True
            if call.crisis is not None:
                # Not a bare goodbye to a caller in crisis (a tester's call dropped after 15
                # s): where to turn, and 3 for the crisis line, at the offer's own step.
                call.state = OFFERED
                return CrisisOffer(call.id, call.language, ended=True, after_peer=True)
            call.state = ENDED
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
                    leg.outcome = dial.status if dial.status in UNANSWERED else "no-answer"
            leg.ended_at = leg.ended_at or now
        rt.after_commit.match = True
        if call.status in TERMINAL:
            return Goodbye(call.language, None)  # the caller hung up while it rang
        return start_round(line, rt, call, now, "still_trying")


def current_answer(
    line: LineServices, rt: Context, call: Call, now: datetime, *, quiet: bool = False
) -> Answer:
    """Return what a call should hear now, for a webhook Twilio sent again.

    `quiet` is for a key pressed during a notice: the same step without the words.
    """
    if call.state == MENU:
        greeting = call.menu_attempts == 0 and not quiet
        return Menu(call.id, call.language, call.menu_attempts, greeting=greeting)
    if call.state == OFFERED:
        return crisis_offer(
            line,
            rt,
            call,
            now,
            failed=call.outcome == "crisis_transfer_failed",
            ended=call.outcome == "crisis_transfer_short",
            worried=call.menu_choice == SOMEONE_ELSE,
        )
    if call.state == RINGING:
        legs = [leg for leg in call.legs if leg.round == call.round]
        notice = None if quiet or call.round <= 1 else "still_trying"
        return _ring_answer(line, call, legs, notice)
    if call.state == VOICEMAIL:
        if call.outcome == "voicemail":
            return Goodbye(call.language, "voicemail_saved")
        reason = call.outcome if call.outcome in LEAVE_REASONS else "no_answer"
        return leave_message(line, rt, call, reason, now, quiet=quiet)
    if call.state == TRANSFERRED:
        number = voice_settings(line).crisis_number
        return Transfer(call.id, call.language, number, call.crisis_transfers, quiet=quiet)
    if call.outcome == "blocked":
        return Goodbye(call.language, "blocked")
    return Goodbye(call.language, "goodbye")
