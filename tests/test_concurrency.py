"""Several processes matching at once on PostgreSQL never double-assign or overfill."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta
from pathlib import Path

import pytest
from redis import Redis
from sqlalchemy import func, select

from peerline.service.services import LineServices
from peerline.service.models import (
    ACCEPTED,
    Contact,
    Conversation,
    Offer,
    Supporter,
    utcnow,
)
from peerline.service.settings import from_env
from tests.support.concurrency_worker import race
from tests.support.line import load_line_file, make_line
from tests.support.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.servers
RELAYS = ["+15550100001", "+15550100002", "+15550100003"]
SUPPORTERS, TEXTERS, PROCESSES = 20, 200, 4


def line_file() -> str:
    """Return a line file with 20 supporters of mixed capacity, all on shift all week."""
    rows = ["timezone: America/Toronto", "supporters:"]
    for n in range(SUPPORTERS):
        rows += [
            f"  - name: Peer{n:02d}",
            f'    phone: "+1416555{1000 + n}"',
            f"    capacity: {1 + n % 3}",
            "    shifts:",
            '      - {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "24:00"}',
        ]
    return "\n".join(rows) + "\n"


def test_processes_never_double_assign_or_exceed_capacity(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    Redis.from_url(redis_server.url).flushall()
    env = {
        "DATABASE_URL": postgres_server.create_database(),
        "REDIS_URL": redis_server.url,
        "SECRET_KEY": "concurrency-secret",
        "TWILIO_RELAY_NUMBERS": ",".join(RELAYS),
        "PEERLINE_INSTANCE": str(tmp_path),
        "PEERLINE_SEND_RATES": "long_code=1000",
        # The per-shift cap (tested elsewhere) would rightly leave texters waiting here.
        "PEERLINE_SHIFT_CHAT_CAP": "1000",
    }
    line: LineServices = make_line(from_env(env), Redis.from_url(redis_server.url))
    load_line_file(line, line_file())
    phones: dict[str, str] = {}
    start = utcnow() - timedelta(hours=1)
    with line.db.session() as session:
        for supporter in session.scalars(select(Supporter)):
            phones[f"s{supporter.id}"] = line.vault.decrypt(supporter.phone_enc)
        for n in range(TEXTERS):
            phone = f"+1647555{2000 + n}"
            contact = Contact(
                phone_hash=line.vault.lookup_hash(phone),
                phone_enc=line.vault.encrypt(phone),
                alias=f"T{n}",
            )
            session.add(contact)
            session.flush()
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
        results = pool.starmap(race, [(env, seed, 60.0, phones) for seed in range(PROCESSES)])
    assert [b for breaches in results for b in breaches] == []

    with line.db.session() as session:
        states = dict(
            session.execute(
                select(Conversation.state, func.count())
                .where(Conversation.id <= TEXTERS)
                .group_by(Conversation.state)
            ).all()
        )
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
        per_supporter = dict(
            session.execute(
                select(Conversation.supporter_id, func.count())
                .where(Conversation.id <= TEXTERS)
                .group_by(Conversation.supporter_id)
            ).all()
        )
        assert len(per_supporter) == SUPPORTERS
    line.db.engine.dispose()
