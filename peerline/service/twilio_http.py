"""Build Twilio REST clients, optionally pointed at a Twilio-compatible endpoint.

`TWILIO_API_BASE_URL` lets a deploy talk to a compatible provider, or tests talk to a local
fake, without touching the SDK's resource code: only the scheme and host of each request
change, the path (`/2010-04-01/Accounts/...`) stays what Twilio's own API expects.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twilio.rest import Client

# The SDK's own default is no timeout at all: a stalled connection would hold a worker forever.
DEFAULT_TIMEOUT_SECONDS = 30.0
# The SDK logs every request at INFO, a line per header: a dozen lines per text, which at a
# fan-out's hundreds of texts a second cost the workers CPU and fill their logs.
SDK_REQUEST_LOG = "twilio.http_client"


def make_client(
    account_sid: str,
    auth_token: str,
    api_base_url: str | None,
    *,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Client:
    """Build a Twilio client, sending API calls to api_base_url when one is given.

    The client keeps one `requests` session, so calls reuse their HTTP connection when the
    server keeps it open (Twilio does): build one client per process and keep it.
    """
    # Here, not at the top: a web process never sends, and the SDK's HTTP stack is ~5 MB.
    from peerline.service.twilio_base_url import sdk_client

    quiet_request_log()
    return sdk_client(account_sid, auth_token, api_base_url, timeout)


def quiet_request_log() -> None:
    """Log the SDK's requests only at WARNING and above, unless a level was set for them."""
    sdk_log = logging.getLogger(SDK_REQUEST_LOG)
    if sdk_log.level == logging.NOTSET:
        sdk_log.setLevel(logging.WARNING)
