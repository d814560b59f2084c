"""Rotate the keys that protect personal data: re-encrypt and re-hash under the newest key."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from peerline.service.models import (
    Block,
    Contact,
    ContactRecord,
    InboundMessage,
    OutboundMessage,
    Supporter,
)
from peerline.service.privacy import Vault


@dataclass
class RotationReport:
    """How many values were re-encrypted and re-hashed."""

    encrypted: int = 0
    rehashed: int = 0


def rotate(session: Session, vault: Vault, batch: int = 1000) -> RotationReport:
    """Rewrite every ciphertext and lookup hash with the vault's newest key."""
    report = RotationReport()
    # Old hash -> new hash, learnt from the rows that hold the number itself.
    rehash: dict[str, str] = {}
    people: list[Contact | Supporter] = [
        *session.scalars(select(Contact)),
        *session.scalars(select(Supporter)),
    ]
    for row in people:
        if not row.phone_enc:
            continue  # an erased contact
        phone = vault.decrypt(row.phone_enc)
        new_hash = vault.lookup_hash(phone)
        for old_hash in vault.lookup_hashes(phone):
            rehash[old_hash] = new_hash
        if row.phone_hash != new_hash:
            row.phone_hash = new_hash
            report.rehashed += 1
        row.phone_enc = vault.rotate(row.phone_enc)
        report.encrypted += 1
    for old, new in rehash.items():
        if old == new:
            continue
        for column in (InboundMessage.from_hash, OutboundMessage.to_hash, Block.phone_hash):
            result = session.execute(
                update(column.class_).where(column == old).values({column.key: new})
            )
            report.rehashed += int(result.rowcount or 0)  # type: ignore[attr-defined]
    for inbound in session.scalars(select(InboundMessage)).yield_per(batch):
        inbound.body_enc = vault.rotate(inbound.body_enc)
        report.encrypted += 1
    for outbound in session.scalars(select(OutboundMessage)).yield_per(batch):
        outbound.body_enc = vault.rotate(outbound.body_enc)
        outbound.to_enc = vault.rotate(outbound.to_enc)
        report.encrypted += 2
    # A supporter's few words after a chat (issue 21), kept like a transcript.
    noted = select(ContactRecord).where(ContactRecord.note_enc.is_not(None))
    for record in session.scalars(noted).yield_per(batch):
        record.note_enc = vault.rotate(record.note_enc or "")
        report.encrypted += 1
    return report
