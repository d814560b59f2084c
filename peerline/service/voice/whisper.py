"""The whisper on a supporter's phone: only pressing 1 connects them to the caller."""

from __future__ import annotations

from datetime import datetime

from peerline.service.call_states import TERMINAL
from peerline.service.services import LineServices
from peerline.service.models import utcnow
from peerline.service.voice.answers import Answer, Bridge, Goodbye, Whisper
from peerline.service.voice.models import CONNECTED, RINGING
from peerline.service.voice.settings import voice_settings
from peerline.service.voice.shared import locked_leg


def whisper(
    line: LineServices, leg_id: int, leg_sid: str, parent_sid: str | None, now: datetime | None = None
) -> Answer:
    """Screen a supporter who answered: only pressing 1 connects them."""
    now = now or utcnow()
    with line.db.session() as session:
        leg, call = locked_leg(session, leg_id, parent_sid)
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
    line: LineServices,
    leg_id: int,
    leg_sid: str,
    digits: str,
    parent_sid: str | None,
    now: datetime | None = None,
) -> Answer:
    """Connect the supporter who pressed 1, unless someone else was first."""
    now = now or utcnow()
    with line.db.session() as session:
        leg, call = locked_leg(session, leg_id, parent_sid)
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
