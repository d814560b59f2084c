"""The old home of the voice line's tables, now `peerline.service.voice.models`."""

from __future__ import annotations

from peerline.service.voice.models import (
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

__all__ = [
    "BRIDGING",
    "CALLBACK",
    "CALLING_SUPPORTER",
    "CONNECTED",
    "DIALING",
    "ENDED",
    "FAILED",
    "INBOUND",
    "MENU",
    "PLACING",
    "REQUEST_CALLING",
    "REQUEST_DONE",
    "REQUEST_OPEN",
    "RINGING",
    "TRANSFERRED",
    "VOICEMAIL",
    "Call",
    "CallbackRequest",
    "CallLeg",
]
