"""Erasing a person everywhere: calls, call-backs and their recordings, alerts, texts kept aside.

`runtime.safety.erase` deletes the messages and clears the contact; this module erases the rest that
can lead back to the person, keeping only counts. Recordings are deleted at the provider
through its API before the erasure commits: if the provider cannot be reached, the erasure
fails whole (the text is kept aside and can be put back) rather than leave a voice behind.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from peerline.service.calls import _client, telephony_available
from peerline.service.inbound import FAILED_KEY
from peerline.service.models import (
    Alert,
    Contact,
    ContactRecord,
    GroupSubscription,
    OutboundMessage,
)
from peerline.service.privacy import BadPhoneNumber, normalise_phone
from peerline.service.services import LineServices
from peerline.service.spool import SPOOL_KEY
from peerline.service.voice.models import Call, CallbackRequest

log = logging.getLogger(__name__)

ERASED_DETAIL = "(erased at the person's request)"


class ErasureFailed(RuntimeError):
    """A recording could not be deleted at the provider: the erasure must not commit."""


def erase_elsewhere(
    line: LineServices,
    session: Session,
    contact: Contact,
    phone: str,
    hashes: Sequence[str],
    conversation_ids: Sequence[int],
    now: datetime,
) -> None:
    """Erase the person's calls, call-backs, recordings, alerts, subscription and kept texts."""
    mine = or_(Call.contact_id == contact.id, Call.from_hash.in_(list(hashes)))
    # A supporter's few words about their calls go as a chat's would (issue 21: voice).
    session.execute(
        update(ContactRecord)
        .where(ContactRecord.call_id.in_(select(Call.id).where(mine)))
        .values(note_enc=None)
    )
    # Calls stay for the counts; the number (hashed and encrypted) goes.
    session.execute(update(Call).where(mine).values(from_hash=None, from_enc=None))
    requests = session.scalars(
        select(CallbackRequest).where(CallbackRequest.contact_id == contact.id)
    ).all()
    delete_recordings(line, [r.recording_sid for r in requests if r.recording_sid])
    request_ids = [r.id for r in requests]
    if request_ids:
        forget_notices(line, session, requests)
        for reference in [r.reference for r in requests]:
            # The voicemail's alert names its reference, which leads to the recording.
            session.execute(
                delete(Alert).where(
                    Alert.kind == "voicemail", Alert.detail.contains(reference, autoescape=True)
                )
            )
        session.execute(
            update(Call)
            .where(Call.callback_request_id.in_(request_ids))
            .values(callback_request_id=None)
        )
        session.execute(delete(CallbackRequest).where(CallbackRequest.id.in_(request_ids)))
    if conversation_ids:
        session.execute(
            update(Alert)
            .where(Alert.conversation_id.in_(list(conversation_ids)))
            .values(
                detail=ERASED_DETAIL,
                outcome_enc=None,
                resolved_at=func.coalesce(Alert.resolved_at, now),
                resolved_by=func.coalesce(Alert.resolved_by, "erasure"),
            )
        )
    session.execute(delete(GroupSubscription).where(GroupSubscription.contact_id == contact.id))
    forget_kept_aside(line, phone)


def forget_notices(
    line: LineServices, session: Session, requests: Sequence[CallbackRequest]
) -> None:
    """Delete the supporters' texts that told of these voicemails (they name the reference)."""
    references = {r.reference for r in requests}
    since = min(r.created_at for r in requests)
    notices = session.execute(
        select(OutboundMessage.id, OutboundMessage.body_enc).where(
            OutboundMessage.purpose == "voicemail", OutboundMessage.created_at >= since
        )
    ).all()
    gone = [
        notice.id
        for notice in notices
        if any(reference in line.vault.decrypt(notice.body_enc) for reference in references)
    ]
    if gone:
        session.execute(delete(OutboundMessage).where(OutboundMessage.id.in_(gone)))


def delete_recordings(line: LineServices, sids: Sequence[str]) -> None:
    """Delete voice recordings at the provider; one already gone counts as deleted."""
    from twilio.base.exceptions import TwilioException, TwilioRestException

    settings = line.settings
    if not sids or not telephony_available(settings):
        return
    client = _client(
        settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_api_base_url
    )
    for sid in sids:
        try:
            client.recordings(sid).delete()
        except TwilioRestException as exc:
            if exc.status == 404:
                continue
            raise ErasureFailed(f"recording could not be deleted: error {exc.code}") from exc
        except (TwilioException, OSError) as exc:
            raise ErasureFailed(f"recording could not be deleted: {type(exc).__name__}") from exc


def forget_kept_aside(line: LineServices, phone: str) -> int:
    """Remove the person's texts kept aside, and webhooks spooled, in Redis; return how many."""
    removed = 0
    for key, sender in ((FAILED_KEY, _text_sender), (SPOOL_KEY, _spooled_sender)):
        try:
            entries = line.redis.lrange(key, 0, -1)
        except RedisError as exc:
            log.warning("could not read %s (%s): erase it with `peerline purge`", key, exc)
            continue
        for raw in entries:
            try:
                fields = json.loads(line.vault.unseal(raw))
            except (ValueError, TypeError):
                continue  # unreadable under every key: it leads to nobody
            if sender(fields, line.settings.default_region) == phone:
                removed += int(line.redis.lrem(key, 0, raw))  # type: ignore[arg-type]
    return removed


def _text_sender(fields: Any, _region: str) -> str | None:
    return fields.get("from_number") if isinstance(fields, dict) else None


def _spooled_sender(entry: Any, region: str) -> str | None:
    # A spooled webhook keeps Twilio's form as it came: the number as Twilio wrote it.
    if not isinstance(entry, dict):
        return None
    raw = dict(entry.get("form") or []).get("From")
    try:
        return normalise_phone(str(raw), region) if raw else None
    except BadPhoneNumber:
        return None
