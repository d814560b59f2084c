"""Ended chats with their contact records and debrief requests (issue 21), for console tests."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import select

from peerline.service.models import ContactRecord, Conversation, DebriefRequest, Supporter
from peerline.service.services import LineServices
from tests.support.seed import ConversationSpec, add_conversation


def chat_with_record(
    line: LineServices,
    ended: datetime,
    supporter: str = "Sam",
    *,
    topics: str = "",
    score: int | None = None,
    words: str = "",
    debrief: bool = False,
    done: bool = False,
    referred: bool = False,
) -> int:
    """Make an ended chat with its record (and a debrief request); return the conversation."""
    start = ended - timedelta(minutes=20)
    conversation_id = add_conversation(
        line, ConversationSpec(created_at=start, wait=60, length=1110, supporter=supporter)
    )
    with line.db.session() as session:
        sid = session.scalars(select(Supporter.id).where(Supporter.name == supporter)).one()
        session.add(
            ContactRecord(
                conversation_id=conversation_id,
                supporter_id=sid,
                channel="sms",
                language="en",
                topics=topics,
                supporter_score=score,
                referred=referred,
                returning_texter=False,
                note_enc=line.vault.encrypt(words) if words else None,
                ended_at=ended,
                noted_at=ended if score or topics or words else None,
            )
        )
        if debrief:
            session.add(
                DebriefRequest(
                    supporter_id=sid,
                    conversation_id=conversation_id,
                    created_at=ended + timedelta(minutes=2),
                    done_at=ended + timedelta(hours=1) if done else None,
                    done_by="earlier@example.org" if done else None,
                )
            )
    return conversation_id


def seed_records(line: LineServices, seed: int = 11) -> int:
    """Give seeded history's ended chats believable records (topics, scores, debriefs)."""
    rng = random.Random(seed)
    topics = line.settings.note_topics
    made = 0
    with line.db.session() as session:
        chats = session.scalars(
            select(Conversation).where(
                Conversation.matched_at.is_not(None), Conversation.closed_at.is_not(None)
            )
        ).all()
        for chat in chats:
            noted = rng.random() < 0.7
            session.add(
                ContactRecord(
                    conversation_id=chat.id,
                    supporter_id=chat.supporter_id,
                    channel="sms",
                    language=chat.language,
                    topics=",".join(rng.sample(topics, rng.randint(1, 2))) if noted else "",
                    supporter_score=rng.choice([2, 3, 4, 4, 5]) if noted else None,
                    referred=rng.random() < 0.1,
                    returning_texter=rng.random() < 0.3,
                    ended_at=chat.closed_at,
                )
            )
            if chat.supporter_id is not None and rng.random() < 0.06:
                session.add(
                    DebriefRequest(
                        supporter_id=chat.supporter_id,
                        conversation_id=chat.id,
                        created_at=chat.closed_at,
                        done_at=chat.closed_at,
                        done_by="coordinator@example.org",
                    )
                )
            made += 1
    return made
