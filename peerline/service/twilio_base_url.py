"""The Twilio SDK's HTTP client, pointed at another base URL: loaded with the first send.

Web processes take texts in and never send, so they never load this module and the SDK's HTTP
stack (`requests`, `urllib3`: about 5 MB a process); `twilio_http.make_client` imports it.
"""

from __future__ import annotations

import re
from typing import Any

from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from peerline.service.ratelimit import granted_slot

# The SDK builds every core API URL on https://api.twilio.com, but TWILIO_EDGE/TWILIO_REGION
# (or edge=/region= on the Client) turn it into https://api.<edge>.<region>.twilio.com just
# before the request; a base-URL override must catch those forms too, or a stray environment
# variable would quietly send test traffic to the real Twilio.
_API_HOST = re.compile(r"^https://api(?:\.[A-Za-z0-9-]+)*\.twilio\.com(?=[/?#]|$)")

# A compatible endpoint is told each send's rate slot (microseconds of Redis time): no person's
# data, and what lets a test check the pace on slots rather than on arrival times.
SLOT_HEADER = "X-Peerline-Slot"


class BaseUrlHttpClient(TwilioHttpClient):
    """Send the SDK's api.twilio.com requests to another base URL instead."""

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        """Store the base URL and pass the remaining options to TwilioHttpClient."""
        super().__init__(**kwargs)
        # A trailing slash would double up with the SDK's absolute paths.
        self.base_url = base_url.rstrip("/")

    def rewrite(self, url: str) -> str:
        """Return url with a Twilio API origin replaced by the base URL."""
        return _API_HOST.sub(lambda _match: self.base_url, url, count=1)

    def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,
        allow_redirects: bool = False,
    ) -> Response:
        """Rewrite the URL to the base URL and make the request."""
        if method.upper() == "POST" and url.endswith("/Messages.json"):
            slot = granted_slot()
            if slot is not None:
                headers = {**(headers or {}), SLOT_HEADER: str(slot)}
        return super().request(
            method,
            self.rewrite(url),
            params=params,
            data=data,
            headers=headers,
            auth=auth,
            timeout=timeout,
            allow_redirects=allow_redirects,
        )


def sdk_client(
    account_sid: str, auth_token: str, api_base_url: str | None, timeout: float
) -> Client:
    """Build the SDK's client, on `api_base_url` when one is given."""
    http_client: TwilioHttpClient
    if api_base_url:
        http_client = BaseUrlHttpClient(api_base_url, timeout=timeout)
    else:
        http_client = TwilioHttpClient(timeout=timeout)
    return Client(account_sid, auth_token, http_client=http_client)
