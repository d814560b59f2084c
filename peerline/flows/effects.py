"""What a flow asks the runtime to do: plain data, carried out in one place."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from peerline.flows.notes import Note


@dataclass(frozen=True)
class Reply:
    """Send a catalogue text back to whoever wrote."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)
    # This reply only, in another language than the texter's (PARAR from an English texter is
    # answered in Spanish without writing to them in Spanish from then on).
    language: str | None = None
    # The catalogue key of its words when they are not the key's own: the crisis resources
    # for an attempt under way ("call 911 now") keep the crisis text's purpose, its lane and
    # its window.
    wording: str | None = None


@dataclass(frozen=True)
class Notify:
    """Send a catalogue text to the other side of the chat."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Relay:
    """Pass the sender's words to the other side of the chat (`picture`: one came with them)."""

    text: str
    picture: bool = False


@dataclass(frozen=True)
class AfterChat:
    """Pass words written just after a chat ended to the supporter who had it, marked so."""

    text: str


@dataclass(frozen=True)
class JoinQueue:
    """Put the conversation in the queue and look for a supporter."""


@dataclass(frozen=True)
class LeaveQueue:
    """Take the conversation out of the queue, withdrawing any offer."""


@dataclass(frozen=True)
class EndChat:
    """End the chat; `by` is who ended it; the texter is asked to rate it unless they left
    (`opted_out`: by a carrier's opt-out word, after which they cannot be texted)."""

    by: str
    ask_rating: bool = True
    opted_out: bool = False


@dataclass(frozen=True)
class Close:
    """Close the conversation without a rating."""


@dataclass(frozen=True)
class Rate:
    """Record the texter's 1-to-5 rating and close the conversation."""

    score: int


@dataclass(frozen=True)
class SetOptOut:
    """Record that the sender opted out (True) or back in (False)."""

    opted_out: bool


@dataclass(frozen=True)
class SetLanguage:
    """Record the language the texter chose."""

    language: str


@dataclass(frozen=True)
class AcceptOffer:
    """Accept the pending offer (the supporter's #take)."""

    offer_id: int


@dataclass(frozen=True)
class DeclineOffer:
    """Pass on the pending offer."""

    offer_id: int


@dataclass(frozen=True)
class PassChat:
    """Hand the current chat back to the queue (the supporter's #pass)."""


@dataclass(frozen=True)
class SetAway:
    """Set the supporter away (True) or back (False)."""

    away: bool


@dataclass(frozen=True)
class PreferPrevious:
    """Ask for the texter's last supporter first (the SAME keyword)."""


@dataclass(frozen=True)
class NotifyOnOpen:
    """Text the texter when the line next opens (the NOTIFY keyword)."""


@dataclass(frozen=True)
class RaiseSafety:
    """Raise a safety concern: priority up, supporter flagged, on-call alerted, event recorded."""

    source: str
    category: str


@dataclass(frozen=True)
class RaiseAlert:
    """A supporter's #alert: raise safety on their chat and tell them who was texted."""

    alias: str


@dataclass(frozen=True)
class RequestErase:
    """Remember that the texter asked to erase their data, pending confirmation."""


@dataclass(frozen=True)
class Erase:
    """Erase the texter's messages and number (confirmed DELETE)."""


@dataclass(frozen=True)
class BlockTexter:
    """Block the texter of the current chat until a coordinator reviews it (#block)."""


@dataclass(frozen=True)
class Subscribe:
    """Start (True) or stop (False) group meeting reminders."""

    on: bool


@dataclass(frozen=True)
class WantCheckin:
    """Schedule a check-in text for tomorrow after the chat that just ended."""


@dataclass(frozen=True)
class PlaceCall:
    """Call the texter of the chat, or a voicemail's caller, through the supporter (#call)."""

    argument: str


@dataclass(frozen=True)
class SaveNote:
    """Keep a supporter's note about their last chat, as the flow read it."""

    note: Note


@dataclass(frozen=True)
class AskDebrief:
    """Ask the on-call coordinator to reach out to the supporter (#debrief)."""


@dataclass(frozen=True)
class Ready:
    """End the supporter's pause after a crisis chat: offers may come again (#ready)."""


@dataclass(frozen=True)
class MarkReferred:
    """Record that the supporter's last chat gave a referral (#referred)."""


Effect = (
    Reply
    | Notify
    | Relay
    | AfterChat
    | JoinQueue
    | LeaveQueue
    | EndChat
    | Close
    | Rate
    | SetOptOut
    | SetLanguage
    | AcceptOffer
    | DeclineOffer
    | PassChat
    | SetAway
    | PreferPrevious
    | NotifyOnOpen
    | RaiseSafety
    | RaiseAlert
    | RequestErase
    | Erase
    | BlockTexter
    | Subscribe
    | WantCheckin
    | PlaceCall
    | SaveNote
    | AskDebrief
    | Ready
    | MarkReferred
)
