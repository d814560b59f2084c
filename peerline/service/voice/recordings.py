"""Fetch a voicemail recording from the provider, for the console to stream to a coordinator.

Only URLs on Twilio's API host are fetched (the stored URL came from Twilio, but a fetch with
the account's credentials must never go anywhere else), with the account's Basic auth; the
provider's URL and credentials never reach the browser.
"""

from __future__ import annotations

import base64
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.client import HTTPResponse

from peerline.service.settings import Settings

API_ORIGIN = re.compile(r"^https://api(?:\.[A-Za-z0-9-]+)*\.twilio\.com(?=/)")
RECORDING_PATH = re.compile(
    r"^/2010-04-01/Accounts/AC[0-9a-fA-F]{32}/Recordings/RE[0-9a-fA-F]{32}$"
)
CHUNK = 64 * 1024
TIMEOUT_SECONDS = 20.0
# A voicemail is minutes of MP3 at most; a seek (a byte range) reads it whole, up to this.
MAX_BYTES = 32 * 1024 * 1024


class RecordingUnavailable(Exception):
    """The provider did not hand the recording over (gone, refused, unreachable)."""


def media_url(stored: str, api_base_url: str | None) -> str:
    """Return the MP3 address of a stored recording URL, pointed at the configured API base."""
    origin = API_ORIGIN.match(stored)
    path = stored[origin.end() :] if origin else ""
    if origin is None or not RECORDING_PATH.match(path.removesuffix(".json")):
        raise RecordingUnavailable("not a Twilio recording address")
    base = (api_base_url or origin.group(0)).rstrip("/")
    return f"{base}{path.removesuffix('.json')}.mp3"


def open_recording(settings: Settings, stored: str) -> HTTPResponse:
    """Open the recording at the provider with the account's credentials."""
    url = media_url(stored, settings.twilio_api_base_url)
    token = f"{settings.twilio_account_sid}:{settings.twilio_auth_token}".encode()
    request = urllib.request.Request(
        url, headers={"Authorization": "Basic " + base64.b64encode(token).decode()}
    )
    try:
        response: HTTPResponse = urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise RecordingUnavailable(type(exc).__name__) from exc
    return response


def chunks(response: HTTPResponse) -> Iterator[bytes]:
    """Yield the recording's bytes as they come, closing the connection at the end."""
    try:
        while block := response.read(CHUNK):
            yield block
    finally:
        response.close()


def whole(response: HTTPResponse) -> bytes:
    """Return the recording's bytes, read whole (for a byte range), closing the connection."""
    try:
        data = response.read(MAX_BYTES + 1)
    except OSError as exc:
        raise RecordingUnavailable(type(exc).__name__) from exc
    finally:
        response.close()
    if len(data) > MAX_BYTES:
        raise RecordingUnavailable("recording larger than a voicemail can be")
    return data
