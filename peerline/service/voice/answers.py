"""Answers: plain data saying what the person on the line hears next, and what the webhook
that asks told us (the call or leg it is about, a <Dial>'s end, a recording, a status).

Every webhook step takes these and returns an answer; the voice blueprint renders it as TwiML.
Nothing here knows about XML or Flask.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from peerline.service.models import utcnow


@dataclass(frozen=True)
class Menu:
    """The greeting (on the first time) and the menu, after an optional notice.

    `switched` is the menu right after the caller chose its language: they heard the line's
    name already, so it starts with the emergency notice and the one key. `attempt` is how
    many menus the caller let pass without a choice before this one, named in its <Gather>
    action, so a miss Twilio sends again is known as counted.
    """

    call_id: int
    language: str
    attempt: int
    greeting: bool = False
    notice: str | None = None
    switched: bool = False


@dataclass(frozen=True)
class CrisisOffer:
    """Crisis words heard: say where to turn, offer the crisis line (3), else go on.

    `failed` is the offer made again after a transfer to the crisis line did not connect;
    `ended` the one after a transfer that ended at once (where to turn, 3, then goodbye);
    `worried` the offer to a caller whose words told of someone else at risk and of no crisis
    of their own (911 if that person is in danger now, 988 helps friends and family too).
    `nobody` is why nobody could answer a caller who stays on (a LeaveMessage reason), None
    when someone could: the offer then promises no peer but says what staying leads to, a
    message and a call back, or (`can_record` false: a hidden number) no call back.
    """

    call_id: int
    language: str
    failed: bool = False
    ended: bool = False
    worried: bool = False
    nobody: str | None = None
    can_record: bool = True
    # A crisis caller with a hidden number whom nobody can answer: staying on puts them
    # through to the crisis line.
    to_crisis_line: bool = False
    # The caller's words tell of an attempt under way: 911 now and Poison Control first.
    attempt: bool = False
    # Said to a crisis caller still on the line when the peer's call ended: where to turn, 3,
    # then goodbye.
    after_peer: bool = False


@dataclass(frozen=True)
class GroupTimes:
    """The next group meetings read out, then the menu again (its `attempt`, as a Menu's)."""

    call_id: int
    language: str
    attempt: int
    groups: str | None
    can_text: bool


@dataclass(frozen=True)
class Transfer:
    """A hand-over to the crisis line: the call's `attempt`-th, named in its <Dial> action."""

    call_id: int
    language: str
    number: str
    attempt: int
    quiet: bool = False  # a key press skipped the notice
    # Nobody could answer a crisis caller with a hidden number: the notice says so.
    nobody: bool = False


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
    # The call's crisis transfers before this prompt, named in its skip step: a 3 there (a
    # crisis call's way to the crisis line) sent again is known by the transfer it made.
    transfers: int
    quiet: bool = False  # a key press skipped the prompt: straight to the beep
    # The call is flagged crisis: the prompt says where to turn and offers the crisis line (3).
    crisis: bool = False
    # Said first, as a Ring's notice is: the 911 line to a caller whose call just changed
    # language (the greeting they heard said it in the other).
    notice: str | None = None
    # The crisis offer just told the caller why nobody can answer, 911 and 3, and what staying
    # on leads to: the prompt says only what is new (when the line opens, the tone), or goodbye.
    told: bool = False


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
    # The crisis told is someone else's (a worried caller): said so, not "they may be in crisis".
    worried: bool = False
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


@dataclass(frozen=True)
class InboundCall:
    """One incoming call webhook, parsed; `from_number` is None when the caller hid it."""

    call_sid: str
    from_number: str | None
    to_number: str


@dataclass(frozen=True)
class CallEvent:
    """A request about one of the line's calls: the id in its URL, the CallSid it names, and
    the caller's CallStatus when it carries one (a <Dial> action's `completed` means they
    hung up)."""

    call_id: int
    call_sid: str
    status: str | None = None
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class LegEvent:
    """A request about a supporter's leg: its id and CallSid, and the caller's CallSid when
    the request names it."""

    leg_id: int
    leg_sid: str
    parent_sid: str | None = None
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class DialEnd:
    """How a <Dial> ended: Twilio's DialCallStatus, and the seconds talked when it says."""

    status: str
    seconds: int | None = None


@dataclass(frozen=True)
class StatusCallback:
    """A status callback: the CallSid it is about, its CallStatus and, at the end, how long."""

    call_sid: str
    status: str
    seconds: int | None = None
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class Recording:
    """What a request says of a voicemail's recording: its RecordingSid, URL and seconds, and
    its status (a <Record> action's recording is complete)."""

    sid: str | None
    url: str | None
    seconds: int | None
    status: str = "completed"
