"""Reminders and timers that must go out at a time: planned from the database, run once.

The database says what is due (groups and subscriptions, the rota, conversations); `plan`
turns the next stretch of it into RQ jobs at exact times with ids made from what they are
about, so planning twice, or again after Redis lost everything, never makes a second job.
Each job writes a `ReminderLog` row under the same key before it sends: a job that does
run twice sends once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from rq.job import Job
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from peerline.service import job_paths, rota
from peerline.service.availability import load_line_rotas
from peerline.service.groups import meetings
from peerline.service.services import LineServices
from peerline.service.models import (
    Contact,
    Conversation,
    Group,
    GroupSubscription,
    InboundMessage,
    ReminderLog,
    utcnow,
)

log = logging.getLogger(__name__)

HORIZON = timedelta(hours=3)
# A reminder whose moment passed while nothing ran is still worth sending a little late.
GRACE = timedelta(minutes=30)


@dataclass(frozen=True)
class Due:
    """One job that should exist: what it runs, with which ids, and when."""

    job_id: str
    at: datetime
    func: str
    args: tuple[int, ...]


def in_quiet_hours(moment: datetime, tz: ZoneInfo, quiet: tuple[int, int]) -> bool:
    """Say whether a moment falls in the line's quiet hours (local time)."""
    local = moment.astimezone(tz)
    minute = local.hour * 60 + local.minute
    start, end = quiet
    if start <= end:
        return start <= minute < end
    return minute >= start or minute < end  # overnight, the usual case


def out_of_quiet_hours(
    moment: datetime, tz: ZoneInfo, quiet: tuple[int, int], before: datetime | None = None
) -> datetime:
    """Move a moment out of quiet hours: to their end, or to their start if `before` is sooner."""
    if not in_quiet_hours(moment, tz, quiet):
        return moment
    local = moment.astimezone(tz)
    end_hour, end_minute = divmod(quiet[1], 60)
    end = datetime.combine(local.date(), time(end_hour, end_minute), tzinfo=tz)
    if end <= local:
        end += timedelta(days=1)
    if before is None or end < before:
        return end
    # Too late by then (a morning meeting): send the evening before, as quiet begins.
    start_hour, start_minute = divmod(quiet[0], 60)
    start = datetime.combine(local.date(), time(start_hour, start_minute), tzinfo=tz)
    if start > local:
        start -= timedelta(days=1)
    return start - timedelta(minutes=1)


def _group_dues(session: Session, line: LineServices, tz: ZoneInfo, now: datetime) -> list[Due]:
    subscribers = session.scalar(
        select(func.count()).select_from(GroupSubscription).where(GroupSubscription.active)
    )
    if not subscribers:
        return []
    lead = timedelta(minutes=line.settings.group_reminder_minutes)
    dues = []
    for group in session.scalars(select(Group)):
        for meeting in meetings(group, tz, now, 3):
            at = out_of_quiet_hours(
                meeting.starts - lead, tz, line.settings.quiet_hours, before=meeting.starts
            )
            if now - GRACE <= at <= now + HORIZON and at < meeting.starts:
                stamp = int(meeting.starts.timestamp())
                dues.append(
                    Due(
                        f"group-reminder-{group.id}-{stamp}",
                        at,
                        "group_reminder",
                        (group.id, stamp),
                    )
                )
    return dues


def _shift_dues(session: Session, line: LineServices, tz: ZoneInfo, now: datetime) -> list[Due]:
    lead = timedelta(minutes=line.settings.shift_reminder_minutes)
    rotas = load_line_rotas(session, line.settings.line_timezone)
    dues = []
    for supporter_id, supporter_rota in rotas.by_supporter.items():
        # Look back a day: a stretch already under way comes back clipped to the window's
        # start, which is no shift start at all.
        since = now - timedelta(days=1)
        spans = rota.intervals(supporter_rota, tz, since, now + HORIZON + lead, rotas.closures)
        for start, end in spans:
            if start == since:
                continue
            at = start - lead
            if now - GRACE <= at <= now + HORIZON and start > now:
                stamp = int(start.timestamp())
                dues.append(
                    Due(
                        f"shift-reminder-{supporter_id}-{stamp}",
                        at,
                        "shift_reminder",
                        (supporter_id, stamp, int(end.timestamp())),
                    )
                )
    return dues


def _checkin_dues(session: Session, now: datetime) -> list[Due]:
    rows = session.execute(
        select(Conversation.id, Conversation.checkin_due_at).where(
            Conversation.checkin_due_at.is_not(None),
            Conversation.checkin_sent_at.is_(None),
            Conversation.checkin_due_at <= now + HORIZON,
        )
    ).all()
    return [Due(f"checkin-{cid}", at, "checkin", (cid,)) for cid, at in rows if at is not None]


def plan(line: LineServices, now: datetime | None = None) -> list[Due]:
    """Return every reminder job that should exist over the next few hours."""
    now = now or utcnow()
    with line.db.session() as session:
        tz = line.timezone(session)
        return [
            *_group_dues(session, line, tz, now),
            *_shift_dues(session, line, tz, now),
            *_checkin_dues(session, now),
        ]


def ensure_scheduled(line: LineServices, dues: list[Due]) -> int:
    """Create the jobs that do not exist yet (Redis may have lost them); return how many."""
    created = 0
    for due in dues:
        if Job.exists(due.job_id, connection=line.redis):
            continue
        func = job_paths.job(due.func)
        if due.at <= utcnow():
            line.job_queue.queue.enqueue(func, *due.args, job_id=due.job_id, result_ttl=86400)
        else:
            line.job_queue.queue.enqueue_at(
                due.at, func, *due.args, job_id=due.job_id, result_ttl=86400
            )
        created += 1
    return created


def claim(session: Session, key: str, now: datetime) -> ReminderLog | None:
    """Write the reminder's log row; None when it was already sent."""
    entry = ReminderLog(key=key, sent_at=now)
    try:
        with session.begin_nested():
            session.add(entry)
    except IntegrityError:
        return None
    return entry


def subscribers(session: Session) -> list[tuple[str, str]]:
    """Return the encrypted phone and the language of each texter who asked for group
    reminders and can still be texted (plain rows: a fan-out reads thousands)."""
    rows = session.execute(
        select(Contact.phone_enc, Contact.language)
        .join(GroupSubscription, GroupSubscription.contact_id == Contact.id)
        .where(GroupSubscription.active.is_(True), Contact.opted_out.is_(False))
        .order_by(Contact.id)
    )
    return [(phone_enc, language) for phone_enc, language in rows]


def last_words(session: Session, conversation_id: int) -> tuple[InboundMessage | None, datetime]:
    """Return the texter's last message in a chat, and when anyone last wrote in it."""
    rows = session.execute(
        select(
            InboundMessage.sender_kind,
            func.max(InboundMessage.id),
            func.max(InboundMessage.received_at),
        )
        .where(InboundMessage.conversation_id == conversation_id)
        .group_by(InboundMessage.sender_kind)
    ).all()
    by_kind = {kind: (last_id, at) for kind, last_id, at in rows}
    texter = by_kind.get("texter")
    latest = max((at for _, at in by_kind.values() if at is not None), default=None)
    conversation = session.get(Conversation, conversation_id)
    started = conversation.matched_at if conversation and conversation.matched_at else utcnow()
    last_message = session.get(InboundMessage, texter[0]) if texter else None
    return last_message, max(latest or started, started)

