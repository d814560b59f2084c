"""The line's parts put together once per process: settings, database, keys, queue, texts."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from redis import Redis
from sqlalchemy.orm import Session

from peerline.flows.catalogue import Catalogue
from peerline.service import redis_connect
from peerline.service.crisis_line import LineDetector
from peerline.service.database import Database
from peerline.service.inbound import InboundQueue
from peerline.service.job_queue import JobQueue
from peerline.service.lanes import SenderQueues
from peerline.service.models import LineSetting
from peerline.service.privacy import Vault
from peerline.service.ratelimit import FENCE_SEGMENTS, SERVICE, SendRateLimiter
from peerline.service.settings import Settings
from peerline.service.spool import Spool
from peerline.service.transport import Transport, make_transport

EMBEDDED_RATES = {"long_code": 50.0, "toll_free": 50.0, "short_code": 100.0}


class LineServices:
    """Everything a request or a job needs, built from settings at the edge."""

    def __init__(
        self,
        settings: Settings,
        redis: Redis,
        *,
        transport: Transport | None = None,
        database: Database | None = None,
        crisis: LineDetector | None = None,
    ) -> None:
        self.settings = settings
        self.db = database or Database(settings.database_url)
        self.redis = redis
        self.job_queue = JobQueue(redis, settings.send_retry_seconds)
        self.vault = Vault(list(settings.encryption_keys) or [settings.secret_key])
        self.catalogue = Catalogue.load(settings.messages_file)
        # Loading the phrases takes about a second; a caller that loaded them may share them.
        self.crisis = crisis if crisis is not None else LineDetector(settings.crisis_file)
        self.transport = transport or make_transport(settings)
        self.spool = Spool(redis, settings.instance_path, self.vault, settings.redis_wait_ms)
        self.inbound = InboundQueue(
            redis,
            self.vault,
            self.job_queue,
            settings.redis_wait_ms,
            redis_connect.FAILOVER_SECONDS if settings.redis_sentinels else 0.0,
        )
        # The simulator is one desk, not a carrier: pace it only when asked to.
        rates = dict(settings.send_rates) or (EMBEDDED_RATES if settings.embedded else {})
        service = settings.twilio_messaging_service_sid
        if settings.service_rate is not None:
            rates[SERVICE] = settings.service_rate
        self.limiter = SendRateLimiter(
            redis,
            rates,
            sender_types={service: SERVICE} if service else None,
            # A promoted replica may lack the slots its master granted last: fence them.
            fence_segments=FENCE_SEGMENTS if settings.redis_sentinels else 0,
        )
        # Each sender's texts waiting for its budget, by lane.
        self.lanes = SenderQueues(redis)

    def timezone(self, session: Session) -> ZoneInfo:
        """Return the rota's time zone: the imported line file's, else LINE_TIMEZONE."""
        stored = session.get(LineSetting, "timezone")
        return ZoneInfo(stored.value if stored else self.settings.line_timezone)

    def holidays_spec(self, session: Session) -> str | None:
        """Return the line-wide holiday calendar, if the line file names one."""
        stored = session.get(LineSetting, "holidays")
        return stored.value if stored and stored.value else None

    def status_callback_url(self) -> str:
        """Return the public URL Twilio posts message statuses to."""
        return f"{self.settings.public_base_url}/webhooks/sms/status"
