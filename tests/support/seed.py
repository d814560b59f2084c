"""Make console test data: coordinators, conversations with messages, weeks of history."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from sqlalchemy import select

from peerline.service.services import LineServices
from peerline.service.models import (
    ACTIVE,
    CLOSED,
    QUEUED,
    Alert,
    Contact,
    Conversation,
    Coordinator,
    InboundMessage,
    OutboundMessage,
    Supporter,
)

EMAIL = "coordinator@example.org"
PASSWORD = "a long coordinator password"
# Cheap argon2 settings keep tests fast; signing in rehashes to the defaults, as in real life.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def add_coordinator(
    line: LineServices,
    email: str = EMAIL,
    password: str = PASSWORD,
    active: bool = True,
    role: str = "admin",
    transcripts: bool = True,
) -> int:
    """Create a coordinator account (by default an admin who may open transcripts)."""
    with line.db.session() as session:
        row = Coordinator(
            email=email.lower(),
            password_hash=FAST_HASHER.hash(password),
            active=active,
            role=role,
            transcripts=transcripts,
        )
        session.add(row)
        session.flush()
        return row.id


@dataclass
class Said:
    """A message to put in a conversation: who, what, and seconds after it started."""

    kind: str  # texter, supporter, line
    text: str
    after: float = 0.0


@dataclass
class ConversationSpec:
    """A conversation to create, with its times relative to `created_at`."""

    created_at: datetime
    wait: float | None = None  # seconds from queueing to matching; None: never matched
    queued: bool = True
    length: float = 900.0
    state: str = CLOSED
    rating: int | None = None
    priority: int = 0
    supporter: str | None = None
    closed_by: str | None = "texter"
    messages: list[Said] = field(default_factory=list)


_counter = iter(range(1, 10**9))


def add_conversation(line: LineServices, spec: ConversationSpec) -> int:
    """Create a contact and one conversation, with its messages, and return the id."""
    vault = line.vault
    number = next(_counter)
    phone = f"+1555019{number:04d}"
    with line.db.session() as session:
        contact = Contact(
            phone_hash=vault.lookup_hash(phone),
            phone_enc=vault.encrypt(phone),
            alias=f"T{number}",
            language="en",
            opted_out=False,
            created_at=spec.created_at,
        )
        session.add(contact)
        session.flush()
        supporter = (
            session.scalar(select(Supporter).where(Supporter.name == spec.supporter))
            if spec.supporter
            else None
        )
        queued_at = spec.created_at + timedelta(seconds=30) if spec.queued else None
        matched_at = (
            queued_at + timedelta(seconds=spec.wait)
            if queued_at is not None and spec.wait is not None
            else None
        )
        closed_at = None
        if spec.state == CLOSED:
            closed_at = (matched_at or queued_at or spec.created_at) + timedelta(
                seconds=spec.length if matched_at else 300
            )
        conversation = Conversation(
            contact_id=contact.id,
            supporter_id=supporter.id if supporter and matched_at else None,
            state=spec.state,
            language="en",
            priority=spec.priority,
            created_at=spec.created_at,
            queued_at=queued_at,
            matched_at=matched_at,
            closed_at=closed_at,
            closed_by=spec.closed_by if matched_at and closed_at else None,
            rating=spec.rating,
        )
        session.add(conversation)
        session.flush()
        for index, said in enumerate(spec.messages):
            at = spec.created_at + timedelta(seconds=said.after)
            if said.kind == "line":
                session.add(
                    OutboundMessage(
                        to_hash=contact.phone_hash,
                        to_enc=contact.phone_enc,
                        from_number=line.settings.twilio_phone_number,
                        body_enc=vault.encrypt(said.text),
                        recipient_kind="texter",
                        purpose="welcome",
                        conversation_id=conversation.id,
                        status="delivered",
                        created_at=at,
                    )
                )
                continue
            session.add(
                InboundMessage(
                    message_sid=f"SMseed{conversation.id}x{index}",
                    from_hash=contact.phone_hash if said.kind == "texter" else "supporter",
                    to_number=line.settings.twilio_phone_number,
                    body_enc=vault.encrypt(said.text),
                    sender_kind=said.kind,
                    conversation_id=conversation.id,
                    received_at=at,
                )
            )
        return conversation.id


def add_alert(line: LineServices, kind: str, detail: str, conversation_id: int | None = None) -> int:
    """Raise an open alert and return its id."""
    with line.db.session() as session:
        alert = Alert(kind=kind, detail=detail, conversation_id=conversation_id)
        session.add(alert)
        session.flush()
        return alert.id


# Relative demand by local hour: quiet mornings, busy evenings, a late-night tail.
HOURLY_DEMAND = [
    0.6, 0.5, 0.4, 0.3, 0.2, 0.2, 0.2, 0.3, 0.4, 0.5, 0.6, 0.6,
    0.7, 0.7, 0.7, 0.8, 0.9, 1.0, 1.2, 1.4, 1.5, 1.4, 1.1, 0.8,
]  # fmt: skip


def seed_history(line: LineServices, now: datetime, weeks: int = 4, seed: int = 7) -> None:
    """Fill the last weeks with believable conversations, and a few live ones now."""
    rng = random.Random(seed)
    with line.db.session() as session:
        names = [s.name for s in session.scalars(select(Supporter).order_by(Supporter.id))]
    start = now - timedelta(weeks=weeks)
    moment = start
    while moment < now - timedelta(hours=1):
        local_hour = moment.astimezone(line.settings.tz).hour
        if rng.random() < HOURLY_DEMAND[local_hour] * 0.55:
            asked = rng.random() < 0.8
            matched = asked and rng.random() < 0.88
            add_conversation(
                line,
                ConversationSpec(
                    created_at=moment + timedelta(minutes=rng.randint(0, 59)),
                    queued=asked,
                    wait=rng.lognormvariate(4.6, 0.9) if matched else None,
                    length=rng.uniform(600, 2400),
                    rating=rng.choices([None, 3, 4, 5, 2, 1], [5, 2, 4, 5, 1, 0.5])[0],
                    priority=1 if rng.random() < 0.04 else 0,
                    supporter=rng.choice(names) if names else None,
                    closed_by=rng.choice(["texter", "supporter"]),
                ),
            )
        moment += timedelta(hours=1)
    for minutes in (7, 3):
        add_conversation(
            line,
            ConversationSpec(
                created_at=now - timedelta(minutes=minutes),
                state=QUEUED,
                priority=int(minutes == 7),
            ),
        )
    if names:
        add_conversation(
            line,
            ConversationSpec(
                created_at=now - timedelta(minutes=25),
                wait=95,
                state=ACTIVE,
                supporter=names[0],
            ),
        )
