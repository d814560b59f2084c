"""The old home of the voice line, now `peerline.service.voice`: names kept where still named.

RQ jobs already queued name `peerline.service.calls.place_call_job`, so that path must keep
resolving; the other names are those tests and not yet moved callers (routing, erasure, the
runtime's #call, the worker's sweep) import from here.
"""

from __future__ import annotations

from peerline.flows.menu import parse_choice
from peerline.service.call_states import STALE_AFTER, TERMINAL
from peerline.service.settings import VoiceSettings
from peerline.service.voice.callbacks import call_command
from peerline.service.voice.placement import (
    catch_up,
    place_call,
    place_call_job,
)
from peerline.service.voice.placement import twilio_client as _client
from peerline.service.voice.prompts import Prompts
from peerline.service.voice.ringing import supporters_on_calls
from peerline.service.voice.settings import telephony_available, voice_settings
from peerline.service.voice.voicemail import recording_url_for_coordinator

__all__ = [
    "STALE_AFTER",
    "TERMINAL",
    "Prompts",
    "VoiceSettings",
    "call_command",
    "catch_up",
    "parse_choice",
    "place_call",
    "place_call_job",
    "recording_url_for_coordinator",
    "supporters_on_calls",
    "telephony_available",
    "voice_settings",
    "_client",
]
