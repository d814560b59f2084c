"""Groups and reminders: on time, exactly once, never after STOP, quiet at night; chat timers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import event, select, update

from peerline.service import outbox as outbox_module
from peerline.service import reminders
from peerline.service.job_queue import SENDS_PER_JOB
from peerline.service.models import (
    Alert,
    Contact,
    Conversation,
    Group,
    GroupSubscription,
    OutboundMessage,
    Supporter,
    utcnow,
)
from peerline.service.runtime import Runtime
from peerline.service.services import LineServices
from peerline.workers import jobs
from tests.support import lines
from tests.support.chat import outbox, run_jobs, take_chat, texts_to
from tests.support.line import LineBuilder, Webhooks, line_builder

TORONTO = ZoneInfo("America/Toronto")
GROUPS = lines.ALWAYS_OPEN.replace(
    "    skip_holidays: CA-ON\n", '    skip_holidays: CA-ON\n    cancelled: ["2026-03-13"]\n'
)


@pytest.fixture
def build(tmp_path: Path, app_for: Callable[[LineServices], Flask]) -> LineBuilder:
    """Return a builder of a line from a line file and settings."""
    return line_builder(tmp_path, app_for, GROUPS)


def local(*args: int) -> datetime:
    """Return a Toronto wall-clock time as an aware datetime."""
    return datetime(*args, tzinfo=TORONTO)


def group_dues(line: LineServices, now: datetime) -> list[reminders.Due]:
    """Return the group reminder jobs planned at a moment."""
    return [d for d in reminders.plan(line, now) if d.func == "group_reminder"]


def test_reminders_keep_local_time_across_dst_and_skip_holidays(build: LineBuilder) -> None:
    line, hooks = build()
    hooks.sms(lines.TEXTER, "REMIND")
    # Monday 9 March 2026, the day after the clocks went forward: 13:00 EDT, reminder at 11:00.
    dues = group_dues(line, local(2026, 3, 9, 10, 0))
    assert [d.at.astimezone(TORONTO) for d in dues] == [local(2026, 3, 9, 11, 0)]
    assert dues[0].at.astimezone(UTC).hour == 15  # it was 16 UTC the week before
    # Friday 13 March is cancelled, Good Friday 3 April is a holiday: no reminders then.
    assert group_dues(line, local(2026, 3, 13, 10, 0)) == []
    assert group_dues(line, local(2026, 4, 3, 10, 0)) == []
    assert len(group_dues(line, local(2026, 4, 6, 10, 0))) == 1  # Easter Monday is no holiday in ON


def test_quiet_hours_move_reminders_out_of_the_night() -> None:
    quiet = (21 * 60, 8 * 60)
    # 06:00 before an 08:00 meeting: 08:00 would be too late, so the evening before.
    moved = reminders.out_of_quiet_hours(
        local(2026, 5, 4, 6, 0), TORONTO, quiet, before=local(2026, 5, 4, 8, 0)
    )
    assert moved == local(2026, 5, 3, 20, 59)
    # 07:00 before a 09:00 meeting: at 08:00, still in time.
    assert reminders.out_of_quiet_hours(
        local(2026, 5, 4, 7, 0), TORONTO, quiet, before=local(2026, 5, 4, 9, 0)
    ) == local(2026, 5, 4, 8, 0)
    # 01:00 before a 13:00 meeting: at 08:00.
    assert reminders.out_of_quiet_hours(
        local(2026, 5, 4, 1, 0), TORONTO, quiet, before=local(2026, 5, 4, 13, 0)
    ) == local(2026, 5, 4, 8, 0)
    assert reminders.out_of_quiet_hours(local(2026, 5, 4, 12, 0), TORONTO, quiet) == local(
        2026, 5, 4, 12, 0
    )


def send_reminder(line: LineServices, starts: datetime) -> int:
    """Run the group reminder for a meeting two hours ahead."""
    with line.db.session() as session:
        group_id = session.scalars(select(Group.id)).one()
        return Runtime(line, session, starts - timedelta(hours=2)).group_reminder(group_id, starts)


def test_remind_remind_off_and_stop(build: LineBuilder) -> None:
    line, hooks = build()
    hooks.sms(lines.TEXTER, "hi")
    hooks.sms(lines.TEXTER, "remind")
    assert "before each group meeting" in texts_to(line, lines.TEXTER)[-1]
    assert send_reminder(line, local(2027, 1, 4, 13, 0)) == 1
    assert texts_to(line, lines.TEXTER)[-1].startswith("Reminder: Online peer support group")
    assert send_reminder(line, local(2027, 1, 4, 13, 0)) == 0  # the same meeting: once only
    hooks.sms(lines.TEXTER, "REMIND OFF")
    assert send_reminder(line, local(2027, 1, 8, 13, 0)) == 0
    with line.db.session() as session:
        assert session.scalars(select(Conversation.state)).all() == ["welcomed"]  # not a STOP
    hooks.sms(lines.TEXTER, "remind")
    assert send_reminder(line, local(2027, 1, 11, 13, 0)) == 1
    hooks.sms(lines.TEXTER, "STOP")
    assert send_reminder(line, local(2027, 1, 15, 13, 0)) == 0
    hooks.sms(lines.TEXTER, "START")  # back on the line, but reminders need asking again
    assert send_reminder(line, local(2027, 1, 18, 13, 0)) == 0
    with line.db.session() as session:
        assert not session.scalars(select(GroupSubscription.active)).one()


def test_remind_inside_a_chat_is_just_words(build: LineBuilder) -> None:
    line, hooks = build()
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, "remind")
    assert texts_to(line, lines.SAM)[-1].endswith(": remind")


def test_sweep_rebuilds_lost_jobs_exactly_once(build: LineBuilder) -> None:
    line, hooks = build()
    for n in range(3):
        hooks.sms(f"+1416555017{n}", "remind")
    now = local(2027, 1, 4, 10, 30)  # meeting at 13:00, reminder due at 11:00
    due = reminders.plan(line, now)
    assert [d.job_id.rsplit("-", 1)[0] for d in due if d.func == "group_reminder"] == [
        "group-reminder-1"
    ]
    assert reminders.ensure_scheduled(line, due) == len(due)
    registry = line.job_queue.queue.scheduled_job_registry
    scheduled = set(registry.get_job_ids())
    assert reminders.ensure_scheduled(line, reminders.plan(line, now)) == 0  # no duplicates
    line.redis.flushall()  # Redis loses everything
    assert registry.get_job_ids() == []
    assert reminders.ensure_scheduled(line, reminders.plan(line, now)) == len(due)
    assert set(registry.get_job_ids()) == scheduled
    assert reminders.ensure_scheduled(line, reminders.plan(line, now)) == 0


def test_sweep_leaves_a_queued_fan_out_alone_while_jobs_wait(build: LineBuilder) -> None:
    line, hooks = build()
    hooks.sms("+14165550170", "remind")  # its replies stay pending: no worker runs here
    pending = len([m for m in outbox(line) if m["status"] == "pending"])
    assert pending >= 1

    def age(seconds: int, purpose: str | None = None) -> None:
        values: dict[str, object] = {"created_at": utcnow() - timedelta(seconds=seconds)}
        if purpose is not None:
            values["purpose"] = purpose
        with line.db.session() as session:
            session.execute(update(OutboundMessage).values(**values))

    line.redis.flushall()
    line.job_queue.queue.enqueue("peerline.workers.jobs.match_queue")  # a backlog of other work
    age(120, "group_reminder")
    assert jobs.sweep()["resent"] == 0  # a fan-out's texts are most likely queued
    age(700)
    assert jobs.sweep()["resent"] == pending  # pending so long their jobs must have been lost
    age(120, "reply")
    assert jobs.sweep()["resent"] == pending  # any other text: after the usual 30 s
    line.redis.flushall()  # no backlog: the usual 30 s for a fan-out too
    age(120, "group_reminder")
    assert jobs.sweep()["resent"] == pending


def test_shift_reminder_and_away_frees_the_shift(build: LineBuilder) -> None:
    tomorrow = (datetime.now(TORONTO) + timedelta(days=1)).date()
    line, hooks = build(lines.sam_covers(tomorrow))
    start = datetime.combine(tomorrow, datetime.min.time(), TORONTO).replace(hour=10)
    planned = reminders.plan(line, start - timedelta(minutes=70))
    dues = [d for d in planned if d.func == "shift_reminder"]
    assert len(dues) == 1 and dues[0].at == start - timedelta(hours=1)
    with line.db.session() as session:
        sam = session.scalars(select(Supporter).where(Supporter.name == "Sam")).one()
        runtime = Runtime(line, session, start - timedelta(hours=1))
        assert runtime.shift_reminder(sam.id, start, start + timedelta(hours=4))
        assert not runtime.shift_reminder(sam.id, start, start + timedelta(hours=4))
    assert "Your Peerline shift starts today at 10:00 AM" in texts_to(line, lines.SAM)[-1]
    hooks.sms(lines.SAM, "#away")
    assert "shift is freed" in texts_to(line, lines.SAM)[-2]
    assert "Sam can't make their shift" in texts_to(line, lines.RIA)[-1]
    with line.db.session() as session:
        assert [a.kind for a in session.scalars(select(Alert))] == ["gap"]


def in_chat(line: LineServices, hooks: Webhooks) -> int:
    """Start a chat between the texter and Sam and return its id."""
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    with line.db.session() as session:
        return session.scalars(select(Conversation.id)).one()


def tick(line: LineServices, conversation_id: int, minutes: int) -> int | None:
    """Run a chat's timer as if some minutes had passed."""
    with line.db.session() as session:
        later = datetime.now(UTC) + timedelta(minutes=minutes)
        return Runtime(line, session, later).chat_tick(conversation_id)


def test_supporter_is_nudged_once_when_a_texter_waits(build: LineBuilder) -> None:
    line, hooks = build()
    chat = in_chat(line, hooks)
    hooks.sms(lines.TEXTER, "are you there?")
    tick(line, chat, 5)
    assert "waiting" not in texts_to(line, lines.SAM)[-1]
    tick(line, chat, 11)
    assert "has been waiting 11 min for your reply" in texts_to(line, lines.SAM)[-1]
    tick(line, chat, 12)
    assert sum("for your reply" in t for t in texts_to(line, lines.SAM)) == 1
    hooks.sms(lines.SAM, "sorry, here now")
    tick(line, chat, 20)
    assert sum("for your reply" in t for t in texts_to(line, lines.SAM)) == 1


def test_quiet_chat_closes_itself(build: LineBuilder) -> None:
    line, hooks = build()
    chat = in_chat(line, hooks)
    # A chat the supporter never wrote in is not "quiet" (issue 14): here Sam did write.
    hooks.sms(lines.SAM, "hi, I'm Sam")
    assert tick(line, chat, 30) is not None
    assert tick(line, chat, 61) is None
    assert "closed after a quiet while" in texts_to(line, lines.TEXTER)[-1]
    # The after-chat text (issue 21) follows what happened.
    assert "closed after a quiet while" in texts_to(line, lines.SAM)[-2]
    with line.db.session() as session:
        assert session.get(Conversation, chat).closed_by == "idle"  # type: ignore[union-attr]


def test_checkin_the_next_day(build: LineBuilder) -> None:
    line, hooks = build()
    chat = in_chat(line, hooks)
    hooks.sms(lines.TEXTER, "bye")
    hooks.sms(lines.TEXTER, "5")
    assert "Reply CHECKIN" in texts_to(line, lines.TEXTER)[-1]
    hooks.sms(lines.TEXTER, "checkin")
    assert "check in" in texts_to(line, lines.TEXTER)[-1]
    with line.db.session() as session:
        due = session.get(Conversation, chat).checkin_due_at  # type: ignore[union-attr]
    assert due is not None and timedelta(hours=20) < due - datetime.now(UTC) < timedelta(hours=36)
    assert not reminders.in_quiet_hours(due, TORONTO, line.settings.quiet_hours)
    assert [d.job_id for d in reminders.plan(line, due - timedelta(hours=1))] == [f"checkin-{chat}"]
    with line.db.session() as session:
        assert Runtime(line, session, due).checkin(chat)
        assert not Runtime(line, session, due).checkin(chat)
    assert texts_to(line, lines.TEXTER)[-1].startswith("Hi, it's Peerline checking in")


def test_a_fan_out_reaches_every_subscriber_once(build: LineBuilder) -> None:
    line, hooks = build()
    subscribers = [f"+1647555{5000 + n}" for n in range(40)]
    for number in subscribers:
        hooks.sms(number, "remind")
    line.redis.flushall()  # only the reminder's own sends are left to run
    starts = local(2027, 1, 4, 13, 0)
    with line.db.session() as session:
        group_id = session.scalars(select(Group.id)).one()
        runtime = Runtime(line, session, starts - timedelta(hours=2))
        assert runtime.group_reminder(group_id, starts) == 40
    runtime.after_commit.dispatch(line)
    # Enqueued through a pipeline, a few dozen texts to a job, on the sends queue.
    assert line.job_queue.sends_queue.count == -(-40 // SENDS_PER_JOB)
    assert {job.func_name for job in line.job_queue.sends_queue.get_jobs()} == {
        "peerline.workers.jobs.send_messages"
    }
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "outbound_messages" in statement:
            statements.append(statement.split()[0].upper())

    event.listen(line.db.engine, "before_cursor_execute", count)
    try:
        run_jobs(line)
    finally:
        event.remove(line.db.engine, "before_cursor_execute", count)
    # The job reads its messages' senders and lanes at once; each message sent (the reminder,
    # and before it whatever else that person was still owed) is found from the one its
    # sender's queue ranks first, taken locked with its checks, marked sending, then sent.
    sent = sum(m["status"] == "sent" for m in outbox(line))
    assert sent > 40
    # A text read while its person's earlier text is still with the provider is read again
    # once that call ends (the pump keeps each person's order with calls overlapping): at
    # most one more read per text, never another write.
    assert 1 + 2 * sent <= statements.count("SELECT") <= 1 + 3 * sent
    assert statements.count("UPDATE") == 2 * sent
    for number in subscribers:
        reminders_to = [t for t in texts_to(line, number) if t.startswith("Reminder:")]
        assert len(reminders_to) == 1
    assert {m["status"] for m in outbox(line) if m["purpose"] == "group_reminder"} == {"sent"}


def test_a_fan_out_job_leaves_its_texts_to_the_pump_already_running(build: LineBuilder) -> None:
    line, hooks = build()
    subscribers = [f"+1647555{5100 + n}" for n in range(3)]
    for number in subscribers:
        hooks.sms(number, "remind")
    run_jobs(line)
    line.redis.flushall()
    starts = local(2027, 1, 4, 13, 0)
    with line.db.session() as session:
        group_id = session.scalars(select(Group.id)).one()
        runtime = Runtime(line, session, starts - timedelta(hours=2))
        runtime.group_reminder(group_id, starts)
    ids = runtime.after_commit.sends
    # Another worker is pumping the line's number: the job ranks the texts and returns.
    sender = line.settings.twilio_phone_number
    held = f"peerline:pump-lock:{sender}"
    line.redis.set(held, "another worker", ex=30)
    assert jobs.send_messages(ids) == 3
    assert {m["status"] for m in outbox(line) if m["purpose"] == "group_reminder"} == {"pending"}
    assert line.lanes.waiting(sender) == 3
    # That pump, once done with what it had, goes on to them: each is sent once.
    line.redis.delete(held)
    assert outbox_module.pump(line, sender) == 3
    status = {m["to"]: m["status"] for m in outbox(line) if m["purpose"] == "group_reminder"}
    assert status == dict.fromkeys(subscribers, "sent")


def test_a_fan_out_writes_in_bulk_the_rows_send_would_write(build: LineBuilder) -> None:
    line, hooks = build()
    subscribers = [f"+1647555{6000 + n}" for n in range(30)]
    for number in subscribers:
        hooks.sms(number, "remind")
    spanish = subscribers[7]
    with line.db.session() as session:
        session.execute(
            update(Contact)
            .where(Contact.phone_hash == line.vault.lookup_hash(spanish))
            .values(language="es")
        )
    starts = local(2027, 1, 4, 13, 0)
    now = starts - timedelta(hours=2)
    inserts: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO OUTBOUND_MESSAGES"):
            inserts.append(statement)

    event.listen(line.db.engine, "before_cursor_execute", count)
    try:
        with line.db.session() as session:
            group_id = session.scalars(select(Group.id)).one()
            runtime = Runtime(line, session, now)
            assert runtime.group_reminder(group_id, starts) == 30
    finally:
        event.remove(line.db.engine, "before_cursor_execute", count)
    assert len(inserts) == 1  # one multi-row statement, not a flush per subscriber
    with line.db.session() as session:
        rows = session.scalars(
            select(OutboundMessage)
            .where(OutboundMessage.purpose == "group_reminder")
            .order_by(OutboundMessage.id)
        ).all()
        assert runtime.after_commit.sends == [row.id for row in rows]
        english = next(row for row in rows if line.vault.decrypt(row.to_enc) == subscribers[0])
        # What Runtime.send writes for the same reminder, for comparison.
        single_id = Runtime(line, session, now).send(
            to_phone=subscribers[0],
            recipient_kind="texter",
            purpose="group_reminder",
            text=line.vault.decrypt(english.body_enc),
            conversation_id=None,
            valid_for=int((starts - now).total_seconds()),
        )
        single = session.get_one(OutboundMessage, single_id)
        columns = (
            "to_hash",
            "from_number",
            "recipient_kind",
            "purpose",
            "conversation_id",
            "status",
            "attempts",
            "created_at",
            "valid_until",
            "provider_sid",
            "sent_at",
            "updated_at",
            "error_code",
        )
        assert {c: getattr(english, c) for c in columns} == {c: getattr(single, c) for c in columns}
        assert english.valid_until == starts
        assert english.to_enc != single.to_enc  # each encrypted on its own
        bodies = {line.vault.decrypt(row.to_enc): line.vault.decrypt(row.body_enc) for row in rows}
        session.rollback()
    assert sorted(bodies) == sorted(subscribers)
    assert bodies[spanish].startswith("Recordatorio: Online peer support group se reune")
    assert all(
        body.startswith("Reminder: Online peer support group meets")
        for number, body in bodies.items()
        if number != spanish
    )
