"""The whisper on a supporter's phone: only pressing 1 connects them to the caller."""

from __future__ import annotations

from peerline.service.call_states import TERMINAL
from peerline.service.services import LineServices
from peerline.service.voice.answers import Answer, Bridge, Goodbye, LegEvent, Whisper
from peerline.service.voice.models import CONNECTED, RINGING, SOMEONE_ELSE
from peerline.service.voice.settings import voice_settings
from peerline.service.voice.shared import answered_leg


def whisper(line: LineServices, event: LegEvent) -> Answer:
    """Screen a supporter who answered: only pressing 1 connects them."""
    with line.db.session() as session:
        leg, call = answered_leg(session, event.leg_id, event.leg_sid, event.parent_sid)
        leg.answered_at = leg.answered_at or event.at
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
            worried=call.menu_choice == SOMEONE_ELSE,
            other_language=not speaks,
        )


def accept(line: LineServices, event: LegEvent, digits: str) -> Answer:
    """Connect the supporter who pressed 1, unless someone else was first."""
    now = event.at
    with line.db.session() as session:
        leg, call = answered_leg(session, event.leg_id, event.leg_sid, event.parent_sid)
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
