"""The one door out: every SMS the line sends leaves through a transport."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from peerline.service.settings import Settings
from peerline.service.twilio_http import make_client

if TYPE_CHECKING:
    from twilio.rest import Client

log = logging.getLogger(__name__)

# Twilio error codes that no retry can fix: the number is opted out, invalid, unreachable
# or not a mobile, or the carrier refused the content.
PERMANENT_ERRORS = frozenset(
    {21211, 21408, 21610, 21612, 21614, 21606, 21659, 30003, 30004, 30005, 30006, 30007}
)
OPTED_OUT = 21610


def is_service(sender: str) -> bool:
    """Say whether a sender is a Twilio Messaging Service (its SID) rather than a number."""
    return sender.startswith("MG")


def _sender_field(sender: str) -> str:
    return "messaging_service_sid" if is_service(sender) else "from_"


class TransportError(Exception):
    """A send that did not go out; `permanent` says whether retrying is pointless."""

    def __init__(self, message: str, *, code: int | None, status: int | None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status

    @property
    def permanent(self) -> bool:
        """Say whether the failure will repeat whatever we do."""
        if self.code in PERMANENT_ERRORS:
            return True
        # 4xx other than throttling and time-outs are our request's fault: do not hammer.
        return (
            self.status is not None
            and 400 <= self.status < 500
            and self.status
            not in (
                408,
                429,
            )
        )


class Transport(Protocol):
    """Send an SMS and return the provider's id for it."""

    def send_sms(self, *, to: str, from_: str, body: str, status_callback: str | None) -> str:
        """Send one message."""
        ...

    def find_sent(self, *, to: str, from_: str, body: str, since: datetime) -> str | None:
        """Return the id of this message if the provider already accepted it, else None."""
        ...


class TwilioTransport:
    """Send through Twilio's REST API with the official SDK (or a compatible endpoint)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._built: Client | None = None

    @property
    def _client(self) -> Client:
        # Built at the first send: web processes hold a transport but do not send, and the
        # SDK's HTTP stack would cost each of them ~5 MB.
        if self._built is None:
            settings = self._settings
            self._built = make_client(
                settings.twilio_account_sid,
                settings.twilio_auth_token,
                settings.twilio_api_base_url,
            )
        return self._built

    def send_sms(self, *, to: str, from_: str, body: str, status_callback: str | None) -> str:
        """Send one message through the Messages API."""
        from twilio.base.exceptions import TwilioException, TwilioRestException

        # A Messaging Service SID as the sender: Twilio picks the number from the service's
        # pool, keeping each recipient on the same one (sticky sender).
        kwargs = {"to": to, _sender_field(from_): from_, "body": body}
        if status_callback:
            kwargs["status_callback"] = status_callback
        try:
            message = self._client.messages.create(**kwargs)
        except TwilioRestException as exc:
            raise TransportError(
                f"Twilio refused the message: {exc.code}", code=exc.code, status=exc.status
            ) from exc
        except TwilioException as exc:
            # TwilioServiceException (RFC 9457 bodies) is not a TwilioRestException.
            raise TransportError(
                f"Twilio refused the message: {exc}",
                code=getattr(exc, "code", None),
                status=getattr(exc, "status", None),
            ) from exc
        except OSError as exc:
            # requests' time-outs and connection errors are OSErrors, not Twilio's.
            raise TransportError(
                f"Twilio could not be reached: {exc}", code=None, status=None
            ) from exc
        return str(message.sid)

    def find_sent(self, *, to: str, from_: str, body: str, since: datetime) -> str | None:
        """Look for this message among the provider's recent messages to the same person."""
        from twilio.base.exceptions import TwilioException

        try:
            # Through a service the number is Twilio's pick: look at everything sent to them.
            sender = {} if is_service(from_) else {"from_": from_}
            recent = self._client.messages.list(
                to=to, date_sent_after=since - timedelta(days=1), limit=50, **sender
            )
        except (TwilioException, OSError) as exc:
            # Unsure whether it went: saying "not found" would risk a double, so wait.
            raise TransportError(
                f"could not check for a sent message: {exc}", code=None, status=None
            ) from exc
        for message in recent:
            created = message.date_created
            if message.body == body and (
                created is None or created >= since - timedelta(minutes=5)
            ):
                return str(message.sid)
        return None


class SimulatorTransport:
    """Deliver to the local phone simulator, which reads the outbox itself."""

    def send_sms(self, *, to: str, from_: str, body: str, status_callback: str | None) -> str:
        """Accept the message at once, as a phone on the same desk would."""
        return "SM" + uuid.uuid4().hex

    def find_sent(self, *, to: str, from_: str, body: str, since: datetime) -> str | None:
        """Say the simulator never half-sends: a message is either delivered or not sent."""
        return None


def make_transport(settings: Settings) -> Transport:
    """Return the transport the settings call for."""
    if settings.embedded and not settings.twilio_api_base_url:
        return SimulatorTransport()
    return TwilioTransport(settings)
