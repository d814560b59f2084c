"""One of several processes racing to match, take and end chats on the same database."""

from __future__ import annotations

import random
import time
import uuid

from redis import Redis
from sqlalchemy import func, select

from peerline.service import runtime
from peerline.service.services import LineServices
from peerline.service.models import ACTIVE, PENDING, QUEUED, Conversation, Offer, Supporter
from peerline.service.routing import sms_capacity
from peerline.service.settings import from_env


def _sms(line: LineServices, sender: str, to: str, body: str) -> None:
    message = runtime.Inbound("SM" + uuid.uuid4().hex, sender, to, body)
    runtime.receive_sms(line, message)


def race(env: dict[str, str], seed: int, seconds: float, phones: dict[str, str]) -> list[str]:
    """Match, #take and BYE at random until the queue is empty; return invariant breaches."""
    settings = from_env(env)
    line = LineServices(settings, Redis.from_url(env["REDIS_URL"]))
    rng = random.Random(seed)
    breaches: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        runtime.run_matching(line)
        with line.db.session() as session:
            offers = session.execute(
                select(Offer.id, Offer.supporter_id, Offer.relay_number).where(
                    Offer.status == PENDING
                )
            ).all()
            chats = session.execute(
                select(Conversation.id, Conversation.contact_id).where(Conversation.state == ACTIVE)
            ).all()
            waiting = session.scalar(
                select(func.count()).select_from(Conversation).where(Conversation.state == QUEUED)
            )
        # Every process races for the same offers and chats: only one may win each.
        for _offer_id, supporter_id, relay in rng.sample(offers, min(len(offers), 12)):
            _sms(line, phones[f"s{supporter_id}"], relay or settings.twilio_phone_number, "#take")
        for _conversation_id, contact_id in rng.sample(chats, min(len(chats), 12)):
            _sms(line, phones[f"c{contact_id}"], settings.twilio_phone_number, "bye")
        with line.db.session() as session:
            for supporter in session.scalars(select(Supporter)):
                active = session.scalar(
                    select(func.count())
                    .select_from(Conversation)
                    .where(Conversation.supporter_id == supporter.id, Conversation.state == ACTIVE)
                )
                limit = sms_capacity(supporter, settings.twilio_relay_numbers)
                if (active or 0) > limit:
                    breaches.append(f"{supporter.name} held {active} chats, capacity {limit}")
        if not waiting and not offers and not chats:
            break
    line.db.engine.dispose()
    return breaches
