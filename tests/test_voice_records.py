"""Answered calls leave a contact record and bring their supporter the debrief text (issue 21),
on PostgreSQL and Redis, driven by signed Twilio voice webhooks as Twilio sends them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from peerline.console import record_stats
from peerline.service.models import ContactRecord, DebriefRequest, Supporter, utcnow
from peerline.service.retention import purge
from peerline.service.voice.models import Call
from tests.support import lines
from tests.support.chat import outbox, run_jobs
from tests.support.servers import PostgresServer, RedisServer
from tests.support.voice import Caller, Phone, Twiml, phone_on_servers

pytestmark = pytest.mark.servers

CRISIS_WORDS = "I have no one to talk to and I want to end my life"


@pytest.fixture
def phone(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> Iterator[Phone]:
    """Return a line where Sam (English) and Ria (Spanish first, on call) are always on."""
    database = postgres_server.create_database()
    with phone_on_servers(tmp_path, database, redis_server.url, lines.ON_CALL) as made:
        yield made


def answered_by(caller: Caller, ring: Twiml, number: str) -> None:
    """Have the supporter at `number` take the call and the other phone stop ringing."""
    for leg in caller.legs(ring):
        if leg.to == number:
            leg.press(leg.answer(), "1")
        else:
            leg.status("canceled")


def answered_call(phone: Phone, number: str = lines.SAM) -> tuple[Caller, Twiml]:
    """Have the texter call, press 1 and the supporter at `number` take it."""
    caller = phone.call(lines.TEXTER)
    ring = caller.press(caller.dial_in(), "1")
    answered_by(caller, ring, number)
    return caller, ring


def records(phone: Phone) -> list[ContactRecord]:
    """Return every contact record, oldest first."""
    with phone.line.db.session() as session:
        found = list(session.scalars(select(ContactRecord).order_by(ContactRecord.id)))
        session.expunge_all()
        return found


def texts(phone: Phone, number: str, purpose: str) -> list[str]:
    """Return the texts of one purpose written to a number."""
    return [m["body"] for m in outbox(phone.line, number) if m["purpose"] == purpose]


def test_an_answered_call_is_recorded_once_however_often_its_end_is_reported(
    phone: Phone,
) -> None:
    caller, ring = answered_call(phone)
    # The caller hangs up after talking: the <Dial> action, then the status callback, twice.
    caller.dial_ends(ring, "completed", 300, CallStatus="completed")
    assert caller.status("completed", 320).status_code == 204
    assert caller.status("completed", 320).status_code == 204
    run_jobs(phone.line)
    [record] = records(phone)
    with phone.line.db.session() as session:
        call = session.scalars(select(Call).where(Call.call_sid == caller.sid)).one()
        sam = session.scalars(select(Supporter).where(Supporter.name == "Sam")).one()
        assert (record.call_id, record.conversation_id) == (call.id, None)
        assert record.supporter_id == sam.id
    assert (record.channel, record.language) == ("voice", "en")
    assert record.duration_seconds == 300  # the talk, not the menu
    assert record.waited_seconds is not None and 0 <= record.waited_seconds < 60
    assert record.crisis_category is None and record.returning_texter is False
    assert record.ended_at is not None
    # Sam gets the same invite as after a chat, once; Ria, who did not take it, none.
    [invite] = texts(phone, lines.SAM, "debrief_invite")
    assert "#note 1-5" in invite and "#debrief" in invite
    assert texts(phone, lines.RIA, "debrief_invite") == []


def test_a_call_the_supporter_ended_is_recorded_at_the_call_end_and_a_caller_returns(
    phone: Phone,
) -> None:
    caller, ring = answered_call(phone)
    caller.dial_ends(ring, "completed", 120)  # Sam hung up first; the caller hears goodbye
    assert records(phone) == []  # the call has not ended yet
    caller.status("completed", 130)
    again, ring = answered_call(phone)
    again.dial_ends(ring, "completed", 60, CallStatus="completed")
    first, second = records(phone)
    assert first.duration_seconds == 120 and first.returning_texter is False
    assert second.duration_seconds == 60 and second.returning_texter is True
    assert len(texts(phone, lines.SAM, "debrief_invite")) == 2


def test_a_spanish_caller_is_recorded_in_spanish_and_its_supporter_invited_in_spanish(
    phone: Phone,
) -> None:
    caller = phone.call(lines.TEXTER)
    ring = caller.press(caller.press(caller.dial_in(), "8"), "1")
    answered_by(caller, ring, lines.RIA)
    caller.dial_ends(ring, "completed", 90, CallStatus="completed")
    [record] = records(phone)
    assert record.language == "es"
    [invite] = texts(phone, lines.RIA, "debrief_invite")
    assert "#note" in invite and "Temas" in invite


def test_after_a_crisis_call_the_pause_applies_and_note_referred_debrief_reach_its_record(
    phone: Phone,
) -> None:
    line = phone.line
    caller = phone.call(lines.TEXTER)
    ring = caller.stay_silent(caller.speak(caller.dial_in(), CRISIS_WORDS))
    answered_by(caller, ring, lines.SAM)
    caller.dial_ends(ring, "completed", 200, CallStatus="completed")
    [record] = records(phone)
    assert record.crisis_category is not None
    [invite] = texts(phone, lines.SAM, "debrief_invite_paused")
    assert "5 min" in invite and "#ready" in invite
    with line.db.session() as session:
        sam = session.scalars(select(Supporter).where(Supporter.name == "Sam")).one()
        assert sam.paused_until is not None and sam.paused_until > utcnow()
    # A texter who asks now is not offered to Sam while he rests.
    phone.hooks.sms(lines.TEXTER_2, "yes")
    run_jobs(line)
    assert not any(m["purpose"].startswith("offer") for m in outbox(line, lines.SAM))
    # Sam's note, referral and debrief request are about the call.
    for command in ("#note 4 lonely, felt heavy", "#referred", "#debrief"):
        phone.hooks.sms(lines.SAM, command)
        run_jobs(line)
    [record] = records(phone)
    assert record.supporter_score == 4 and record.topics == "lonely"
    assert record.note_enc is not None and "heavy" not in record.note_enc
    assert "felt heavy" in line.vault.decrypt(record.note_enc)
    assert record.referred is True
    with line.db.session() as session:
        [request] = session.scalars(select(DebriefRequest)).all()
        assert request.call_id == record.call_id and request.conversation_id is None
    assert texts(phone, lines.SAM, "note_ok") and texts(phone, lines.SAM, "debrief_ok")
    assert texts(phone, lines.RIA, "debrief_alert")


def test_a_note_on_a_call_is_erased_with_the_caller_and_purged_at_retention(
    phone: Phone,
) -> None:
    line = phone.line
    for caller_number in (lines.TEXTER, lines.TEXTER_2):
        caller = phone.call(caller_number)
        ring = caller.press(caller.dial_in(), "1")
        answered_by(caller, ring, lines.SAM)
        caller.dial_ends(ring, "completed", 60, CallStatus="completed")
        phone.hooks.sms(lines.SAM, "#note 3 grief they talked about their dad")
        run_jobs(line)
    first, second = records(phone)
    assert first.note_enc is not None and second.note_enc is not None
    # The second caller asks the line to erase them: their call's note goes, the counts stay.
    for _ in range(2):
        phone.hooks.sms(lines.TEXTER_2, "DELETE")
        run_jobs(line)
    first, second = records(phone)
    assert first.note_enc is not None
    assert second.note_enc is None and (second.supporter_score, second.topics) == (3, "grief")
    # Past the retention period the first call's words go too.
    with line.db.session() as session:
        purge(session, utcnow() + timedelta(days=line.settings.retention_days + 1), 30)
    first, _ = records(phone)
    assert first.note_enc is None and first.supporter_score == 3


def test_a_record_is_about_a_chat_or_a_call_never_both_nor_neither(phone: Phone) -> None:
    with phone.line.db.session() as session:
        session.add(ContactRecord(channel="voice", language="en", topics=""))
        with pytest.raises(IntegrityError, match="ck_contact_records_one_conversation_or_call"):
            session.flush()
        session.rollback()


def test_reports_count_voice_contacts_by_channel() -> None:
    day = date(2026, 12, 1)
    at = utcnow().replace(year=2026, month=12, day=1, hour=15)
    facts = [
        record_stats.RecordFacts(at, "Sam", "", False, False, None, "sms"),
        record_stats.RecordFacts(at, "Sam", "lonely", True, False, 4, "voice"),
        record_stats.RecordFacts(at, "Ria", "", False, False, None, "voice"),
    ]
    figures = record_stats.build_record_figures(facts, ZoneInfo("America/Toronto"), day, day)
    assert figures.chats == [3] and figures.voice == [2]
    header, rows = record_stats.record_columns(figures)
    assert rows[0][header.index("voice_contacts")] == "2"
    assert rows[0][header.index("chats_ended")] == "3"
