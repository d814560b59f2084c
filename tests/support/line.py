"""Build test lines, post signed webhooks, run queued jobs and read the outbox."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient
from redis import Redis
from rq import Queue, SimpleWorker
from sqlalchemy import select
from werkzeug.test import TestResponse

from peerline.service import linefile, linesync
from peerline.service.inbound import SHARDS
from peerline.service.services import LineServices
from peerline.service.migrate import upgrade
from peerline.service.models import OutboundMessage
from peerline.service.settings import Settings, from_env
from peerline.service.job_queue import WORKER_QUEUES
from peerline.service.transport import Transport
from peerline.workers import jobs
from peerline.workers.context import set_line
from tests.support.fake_twilio import sign

LINE_NUMBER = "+15550100000"
FAST_RATES = "long_code=1000,toll_free=1000,short_code=1000"


def make_settings(tmp_path: Path, **env: str) -> Settings:
    """Return settings for a test line, as the environment would give them."""
    base = {
        "PEERLINE_INSTANCE": str(tmp_path),
        "SECRET_KEY": "test-secret-key",
        # Pacing has tests of its own; here it would only make every journey slow.
        "PEERLINE_SEND_RATES": FAST_RATES,
    }
    base.update(env)
    return from_env(base).with_changes(testing=True)


def make_line(settings: Settings, redis: Redis, transport: Transport | None = None) -> LineServices:
    """Migrate the database and return a line that jobs in this process will use."""
    upgrade(settings.database_url)
    line = LineServices(settings, redis, transport=transport)
    set_line(line)
    return line


def load_line_file(line: LineServices, text: str = linefile.DEMO_LINE_FILE) -> None:
    """Import a line file into the line's database."""
    with line.db.session() as session:
        linesync.import_line(session, line.vault, linefile.parse(text))


def drain_inbound() -> int:
    """Step the texts the webhook took in, as the workers' drain jobs would; return how many."""
    return sum(jobs.drain_inbound(shard) for shard in range(SHARDS))


def run_jobs(line: LineServices) -> None:
    """Run every queued job with a real RQ worker in this process, until none is left."""
    queues = [Queue(name, connection=line.redis) for name in WORKER_QUEUES]
    SimpleWorker(queues, connection=line.redis).work(burst=True, logging_level="WARNING")


class Webhooks:
    """Post form-encoded webhooks signed exactly as Twilio signs them."""

    def __init__(self, client: FlaskClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings

    def post(
        self, path: str, params: dict[str, str], *, signed: bool = True, drain: bool = True
    ) -> TestResponse:
        """Post a webhook, signed unless told not to; step the texts it took in, unless told."""
        url = self.settings.public_base_url + path
        headers = {}
        if signed:
            headers["X-Twilio-Signature"] = sign(url, params, self.settings.twilio_auth_token)
        response = self.client.post(path, data=params, headers=headers)
        if drain and path.startswith("/webhooks/sms") and path != "/webhooks/sms/status":
            drain_inbound()
        return response

    def sms(
        self, sender: str, body: str, sid: str | None = None, *, drain: bool = True, **extra: str
    ) -> TestResponse:
        """Deliver one inbound SMS from a number to the line."""
        params = {
            "MessageSid": sid or "SM" + uuid.uuid4().hex,
            "AccountSid": self.settings.twilio_account_sid,
            "From": sender,
            "To": self.settings.twilio_phone_number,
            "Body": body,
            "NumMedia": "0",
            "ApiVersion": "2010-04-01",
        }
        params.update(extra)
        return self.post("/webhooks/sms", params, drain=drain)


def outbox(line: LineServices, to: str | None = None) -> list[dict[str, Any]]:
    """Return the outbox, decrypted, oldest first (optionally only to one number)."""
    with line.db.session() as session:
        query = select(OutboundMessage).order_by(OutboundMessage.id)
        if to is not None:
            query = query.where(OutboundMessage.to_hash == line.vault.lookup_hash(to))
        return [
            {
                "id": m.id,
                "to": line.vault.decrypt(m.to_enc),
                "from": m.from_number,
                "body": line.vault.decrypt(m.body_enc),
                "status": m.status,
                "purpose": m.purpose,
            }
            for m in session.scalars(query)
        ]


def texts_to(line: LineServices, number: str) -> list[str]:
    """Return the bodies queued for a number, oldest first."""
    return [m["body"] for m in outbox(line, number)]
