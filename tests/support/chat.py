"""Act on a test line and read what it did: run its jobs, take a chat, read the outbox."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rq import Queue
from sqlalchemy import select
from sqlalchemy.orm import Session

from peerline.service.job_queue import WORKER_QUEUES
from peerline.service.models import Conversation, OutboundMessage
from peerline.service.services import LineServices
from peerline.workers.line_worker import LineWorker
from tests.support.line import Webhooks


def run_jobs(line: LineServices) -> None:
    """Run every queued job with a real RQ worker in this process, until none is left."""
    queues = [Queue(name, connection=line.redis) for name in WORKER_QUEUES]
    LineWorker(queues, connection=line.redis).work(burst=True, logging_level="WARNING")


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


def queued(session: Session) -> list[Conversation]:
    """Return the waiting conversations in the order the queue serves them: crisis first."""
    return list(
        session.scalars(
            select(Conversation)
            .where(Conversation.state == "queued")
            .order_by(Conversation.priority.desc(), Conversation.queued_at)
        )
    )


def take_chat(line: LineServices, hooks: Webhooks, texter: str, supporter: str) -> None:
    """Have a texter ask for a peer (YES) and a supporter take the offer (#take)."""
    hooks.sms(texter, "yes")
    run_jobs(line)
    hooks.sms(supporter, "#take")


def texts_sent_earlier(line: LineServices, seconds: float) -> None:
    """Move every text the line has sent back in time, as if `seconds` had passed since."""
    with line.db.session() as session:
        for message in session.scalars(select(OutboundMessage)):
            message.created_at = message.created_at - timedelta(seconds=seconds)
        session.commit()
