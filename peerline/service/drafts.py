"""Outbox rows: draft a message's columns and write them, before any worker sends them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from peerline.service import lanes, segments
from peerline.service.models import OutboundMessage
from peerline.service.services import LineServices


def draft(
    line: LineServices,
    *,
    to_phone: str,
    recipient_kind: str,
    purpose: str,
    text: str,
    conversation_id: int | None,
    now: datetime,
    from_number: str | None = None,
    valid_for: int | None = None,
) -> dict[str, Any]:
    """Return a message's columns for the outbox: recipient and text encrypted, sent from the
    line's number unless another is given, dropped if not sent within `valid_for` seconds."""
    vault = line.vault
    return {
        "to_hash": vault.lookup_hash(to_phone),
        "to_enc": vault.encrypt(to_phone),
        "from_number": from_number or line.settings.twilio_phone_number,
        "body_enc": vault.encrypt(text),
        "recipient_kind": recipient_kind,
        "purpose": purpose,
        "lane": lanes.lane_of(purpose),
        "segments": segments.count(text),
        "conversation_id": conversation_id,
        "created_at": now,
        "valid_until": now + timedelta(seconds=valid_for) if valid_for else None,
    }


_OUTBOX = cast(Table, OutboundMessage.__table__)
_WRITE_ONE = insert(_OUTBOX).returning(_OUTBOX.c.id)


def write(session: Session, message: dict[str, Any]) -> int:
    """Write one drafted message and return its id."""
    # One INSERT ... RETURNING through the connection, no ORM object: an offer's text is on
    # matching's hot path. What the message refers to is flushed first.
    session.flush()
    message_id: int = session.connection().scalar(_WRITE_ONE, message)
    return message_id


def write_many(session: Session, drafts: list[dict[str, Any]]) -> list[int]:
    """Write many drafted messages at once and return their ids, ascending.

    A fan-out's thousands of rows go in multi-row `INSERT ... RETURNING id` statements (up
    to a thousand rows each), not one flush per message; no ORM objects are made for them. The ids
    are not matched back to the drafts (asking SQLAlchemy to keep their order would make
    SQLite insert one row at a time): each becomes one send job.
    """
    if not drafts:
        return []
    return sorted(session.scalars(insert(OutboundMessage).returning(OutboundMessage.id), drafts))
