"""Deciding a `#block` review: upheld (the number stays unanswered) or lifted, with a reason.

Both the blocklist and the dashboard's `block_review` alert decide through here, so resolving
the alert never leaves the block waiting for review (issue 21).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from peerline.console.common import actor, audit, line, now
from peerline.service.models import Alert, Block, Contact, Conversation

ACTIVE = "active"


def resolve_reviews(session: Session, contact: Contact | None, outcome: str) -> None:
    """Resolve the open #block review alerts on the texter's chats with the decision."""
    if contact is None:
        return
    ids = select(Conversation.id).where(Conversation.contact_id == contact.id)
    for alert in session.scalars(
        select(Alert).where(
            Alert.kind == "block_review",
            Alert.resolved_at.is_(None),
            Alert.conversation_id.in_(ids),
        )
    ):
        alert.resolved_at, alert.resolved_by = now(), actor()
        alert.outcome_enc = line().vault.encrypt(outcome)


def decide(session: Session, block: Block, lifted: bool, reason: str) -> None:
    """Uphold or lift a block: audited with the reason, its review alerts resolved with it."""
    contact = session.scalar(select(Contact).where(Contact.phone_hash == block.phone_hash))
    subject = f"block {block.id}" + (f" ({contact.alias})" if contact is not None else "")
    if lifted:
        audit(session, "block.lifted", subject, f"{block.reason}; lifted: {reason}")
        session.delete(block)
    else:
        block.status = ACTIVE
        audit(session, "block.upheld", subject, reason)
    resolve_reviews(session, contact, f"Block {'lifted' if lifted else 'upheld'}: {reason}")


def block_of_alert(session: Session, alert: Alert) -> Block | None:
    """Return the block a `block_review` alert is about, if it is still there."""
    conversation = session.get(Conversation, alert.conversation_id or 0)
    if conversation is None:
        return None
    return session.scalar(
        select(Block).where(Block.phone_hash == conversation.contact.phone_hash)
    )
