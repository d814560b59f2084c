"""The voice line's settings as the line was started with, and whether it can place calls."""

from __future__ import annotations

from peerline.service.services import LineServices
from peerline.service.settings import Settings, VoiceSettings


def voice_settings(line: LineServices) -> VoiceSettings:
    """Return the line's voice settings, parsed once from its Settings."""
    return line.settings.voice


def telephony_available(settings: Settings) -> bool:
    """Say whether the line can place calls: not in embedded mode without a Twilio endpoint."""
    return not settings.embedded or bool(settings.twilio_api_base_url)
