"""Several processes matching at once on PostgreSQL never double-assign or overfill."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from peerline.service.models import ACCEPTED, Conversation, Offer, Supporter, utcnow
from peerline.service.services import LineServices
from peerline.service.settings import from_env
from tests.support import lines
from tests.support.concurrency_worker import race
from tests.support.line import load_line_file, make_line, servers_env
from tests.support.seed import add_contact
from tests.support.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.servers
RELAYS = ["+15550100001", "+15550100002", "+15550100003"]
SUPPORTERS, TEXTERS, PROCESSES = 20, 200, 4
# A bound, not a pace: each process stops once every chat has ended (seconds on an idle
# machine), and a loaded one must still get there.
RACE_SECONDS = 240.0


def line_file() -> str:
    """Return a line file with 20 supporters of mixed capacity, all on shift all week."""
    return lines.always_on(SUPPORTERS, 1000, capacity=lambda n: 1 + n % 3)


def raced_by(session: Session, column: Any) -> dict[Any, int]:
    """Count the raced texters' conversations by one of their columns."""
    query = select(column, func.count()).where(Conversation.id <= TEXTERS).group_by(column)
    return dict(session.execute(query).all())


def test_processes_never_double_assign_or_exceed_capacity(
    tmp_path: Path,
    postgres_server: PostgresServer,
    redis_server: RedisServer,
    request: pytest.FixtureRequest,
) -> None:
    env = servers_env(
        tmp_path,
        postgres_server,
        redis_server,
        "concurrency-secret",
        TWILIO_RELAY_NUMBERS=",".join(RELAYS),
        # The per-shift cap (tested elsewhere) would rightly leave texters waiting here.
        PEERLINE_SHIFT_CHAT_CAP="1000",
    )
    line: LineServices = make_line(from_env(env), Redis.from_url(redis_server.url))
    # Closed even when an assertion fails: a pool left open is reported by a later test.
    request.addfinalizer(line.db.engine.dispose)
    load_line_file(line, line_file())
    phones: dict[str, str] = {}
    start = utcnow() - timedelta(hours=1)
    with line.db.session() as session:
        for supporter in session.scalars(select(Supporter)):
            phones[f"s{supporter.id}"] = line.vault.decrypt(supporter.phone_enc)
        for n in range(TEXTERS):
            phone = f"+1647555{2000 + n}"
            contact = add_contact(session, line.vault, phone, f"T{n}")
            phones[f"c{contact.id}"] = phone
            session.add(
                Conversation(
                    contact_id=contact.id,
                    state="queued",
                    queued_at=start + timedelta(seconds=n),
                    language="en",
                )
            )

    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(PROCESSES) as pool:
        jobs = [(env, seed, RACE_SECONDS, phones) for seed in range(PROCESSES)]
        results = pool.starmap(race, jobs)
    assert [b for breaches in results for b in breaches] == []

    with line.db.session() as session:
        states = raced_by(session, Conversation.state)
        # Every texter was matched and had their chat ended: nobody was left behind. (A chat
        # two processes ended at once is closed by the second goodbye; a goodbye that arrives
        # after that opens a new conversation, which is not one of the 200.)
        assert set(states) <= {"rating", "closed"}
        assert sum(states.values()) == TEXTERS
        accepted = session.execute(
            select(Offer.conversation_id, func.count())
            .where(Offer.status == ACCEPTED)
            .group_by(Offer.conversation_id)
        ).all()
        assert len(accepted) == TEXTERS
        assert {count for _, count in accepted} == {1}  # never assigned twice
        # The accepted offer's supporter is the one recorded on the conversation.
        mismatched = session.scalar(
            select(func.count())
            .select_from(Offer)
            .join(Conversation, Conversation.id == Offer.conversation_id)
            .where(Offer.status == ACCEPTED, Offer.supporter_id != Conversation.supporter_id)
        )
        assert mismatched == 0
        assert (
            session.scalar(select(func.count()).select_from(Offer).where(Offer.status == "pending"))
            == 0
        )
        # Work was shared out: every supporter took chats.
        per_supporter = raced_by(session, Conversation.supporter_id)
        assert len(per_supporter) == SUPPORTERS
