"""Put texters and conversations into a line's database without going through webhooks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta

from peerline.service.services import LineServices
from peerline.service.models import ACTIVE, QUEUED, Contact, Conversation, utcnow


def phone_numbers(first: int, count: int, area: str = "647") -> list[str]:
    """Return distinct possible North American numbers, texters' stand-ins."""
    return [f"+1{area}{200 + n // 10000:03d}{n % 10000:04d}" for n in range(first, first + count)]


class Numbers:
    """Hand out fresh numbers, never the same twice in a run."""

    def __init__(self, area: str = "647") -> None:
        self.area = area
        self.next = 0

    def take(self, count: int) -> list[str]:
        numbers = phone_numbers(self.next, count, self.area)
        self.next += count
        return numbers

    def __iter__(self) -> Iterator[str]:
        while True:
            yield self.take(1)[0]


def texters(
    line: LineServices,
    phones: Sequence[str],
    state: str,
    supporter_ids: Sequence[int] = (),
    alias_prefix: str = "B",
) -> list[int]:
    """Create a contact and an open conversation in `state` per number; return conversation ids.

    Queued conversations wait from a few minutes ago, oldest first; active ones are matched
    with the given supporters in turn.
    """
    vault, now = line.vault, utcnow()
    ids: list[int] = []
    with line.db.session() as session:
        for n, phone in enumerate(phones):
            contact = Contact(
                phone_hash=vault.lookup_hash(phone),
                phone_enc=vault.encrypt(phone),
                alias=f"{alias_prefix}{state[0].upper()}{n}",
                created_at=now,
            )
            session.add(contact)
            session.flush()
            conversation = Conversation(
                contact_id=contact.id, state=state, language="en", created_at=now
            )
            if state == QUEUED:
                conversation.queued_at = now - timedelta(minutes=5) + timedelta(seconds=n / 100)
            if state == ACTIVE:
                conversation.supporter_id = supporter_ids[n % len(supporter_ids)]
                conversation.matched_at = now
            session.add(conversation)
            session.flush()
            ids.append(conversation.id)
    return ids
