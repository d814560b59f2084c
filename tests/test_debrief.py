"""After a chat (issue 21): the supporter's debrief text in their language, the pause after a
crisis chat and #ready, #note read forgivingly, #referred, #debrief, and the contact record
that real journeys leave behind."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fakeredis import FakeRedis
from rq import Queue
from sqlalchemy import select

from peerline.flows import effects as fx
from peerline.flows import supporter as supporter_flow
from peerline.flows.notes import Note, NoteProblem, parse_note
from peerline.service import keys, segments
from peerline.service.job_queue import QUEUE_NAME
from peerline.service.models import (
    Alert,
    ContactRecord,
    Conversation,
    DebriefRequest,
    Offer,
    Supporter,
    utcnow,
)
from peerline.service.retention import purge
from peerline.service.runtime import Inbound, Runtime, expire_offer, receive_sms, run_matching
from peerline.service.services import LineServices
from peerline.service.settings import DEFAULT_NOTE_TOPICS, SettingsError, from_env
from peerline.service.voice.ringing import ringable
from tests.support import lines
from tests.support.chat import outbox
from tests.support.line import load_line_file, make_line, make_settings

TOPICS = DEFAULT_NOTE_TOPICS
CRISIS = "i want to kill myself"
# Sam speaks English; Ria Spanish first, and is the on-call coordinator.
LINE_FILE = lines.TWO_ON.replace(
    f'phone: "{lines.RIA}"\n', f'phone: "{lines.RIA}"\n    on_call: true\n', 1
)


def build(tmp_path: Path, **env: str) -> LineServices:
    """Return a line on SQLite where Sam and Ria (on call) are always on shift."""
    line = make_line(make_settings(tmp_path, **env), FakeRedis())
    load_line_file(line, LINE_FILE)
    return line


@pytest.fixture
def line(tmp_path: Path) -> LineServices:
    """Return the line, Ria set away so that every chat goes to Sam."""
    made = build(tmp_path)
    sms(made, lines.RIA, "#away")
    return made


def sms(line: LineServices, phone: str, body: str, now: datetime | None = None) -> None:
    """Take in one text at `now` and run the matching round it may have asked for."""
    receive_sms(
        line,
        Inbound("SM" + uuid.uuid4().hex, phone, line.settings.twilio_phone_number, body),
        now=now,
    )
    run_matching(line, now=now)


def texts(line: LineServices, phone: str, purpose: str | None = None) -> list[str]:
    """Return the texts written to a number (of one purpose), oldest first."""
    return [m["body"] for m in outbox(line, phone) if purpose in (None, m["purpose"])]


def connect(line: LineServices, texter: str = lines.TEXTER, now: datetime | None = None) -> str:
    """Put a texter in a chat with Sam; return their alias."""
    sms(line, texter, "yes", now)
    offer = texts(line, lines.SAM)[-1]
    alias = re.match(r"(?:PRIORITY: )?([A-Z]\d+) is waiting", offer)
    assert alias is not None, offer
    sms(line, lines.SAM, "#take", now)
    return alias.group(1)


def record(line: LineServices, conversation_id: int | None = None) -> ContactRecord:
    """Return the newest contact record (or one conversation's)."""
    with line.db.session() as session:
        query = select(ContactRecord).order_by(ContactRecord.id.desc())
        if conversation_id is not None:
            query = query.where(ContactRecord.conversation_id == conversation_id)
        found = session.scalars(query.limit(1)).first()
        assert found is not None
        session.expunge(found)
        return found


def offers_to(line: LineServices, name: str) -> int:
    """Return how many offers a supporter has had."""
    with line.db.session() as session:
        sid = session.scalars(select(Supporter.id).where(Supporter.name == name)).one()
        return len(session.scalars(select(Offer.id).where(Offer.supporter_id == sid)).all())


# The debrief texts -----------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["#done", "bye", "#block", "idle", "erase"])
def test_every_way_a_chat_ends_brings_the_supporter_one_debrief_text(
    line: LineServices, ending: str
) -> None:
    connect(line)
    before = len(texts(line, lines.SAM))
    if ending == "#done":
        sms(line, lines.SAM, "#done")
    elif ending == "bye":
        sms(line, lines.TEXTER, "bye")
    elif ending == "#block":
        sms(line, lines.SAM, "#block")
    elif ending == "erase":
        sms(line, lines.TEXTER, "DELETE")
        sms(line, lines.TEXTER, "DELETE")
    else:
        sms(line, lines.SAM, "I'm here")  # a chat gone quiet after both wrote closes itself
        with line.db.session() as session:
            chat = session.scalars(select(Conversation.id)).one()
            Runtime(line, session, utcnow() + timedelta(minutes=61)).chat_tick(chat)
    invites = texts(line, lines.SAM, "debrief_invite")
    assert len(invites) == 1, texts(line, lines.SAM)[before:]
    invite = invites[0]
    assert "#note 1-5" in invite and "#debrief" in invite
    assert "Topics: lonely, family, partner" in invite
    assert segments.count(invite) <= 2
    # It comes after the news of the ending, never before it.
    assert texts(line, lines.SAM)[-1] == invite


def test_a_spanish_speaking_supporter_gets_the_debrief_texts_in_spanish(tmp_path: Path) -> None:
    line = build(tmp_path)
    sms(line, lines.SAM, "#away")
    sms(line, lines.TEXTER, "yes")
    sms(line, lines.RIA, "#take")
    sms(line, lines.RIA, "#done")
    invite = texts(line, lines.RIA, "debrief_invite")[-1]
    assert invite.startswith("Ya puedes tomar la siguiente. Como fue?")
    assert segments.count(invite) <= 2
    sms(line, lines.RIA, "#note")
    assert texts(line, lines.RIA)[-1].startswith("Para anotar tu ultima conversacion")
    sms(line, lines.RIA, "#note 4 lonely")
    assert texts(line, lines.RIA)[-1].startswith("Anotado sobre")


def test_a_topic_list_too_long_for_two_segments_is_refused_at_start_up(tmp_path: Path) -> None:
    env = {"PEERLINE_INSTANCE": str(tmp_path), "SECRET_KEY": "x"}
    custom = from_env(env | {"PEERLINE_NOTE_TOPICS": "Lonely, work , grief,work"})
    assert custom.note_topics == ("lonely", "work", "grief")
    with pytest.raises(SettingsError, match="PEERLINE_NOTE_TOPICS"):
        too_long = ",".join(f"topic{letter * 12}" for letter in "abcdefghi")
        from_env(env | {"PEERLINE_NOTE_TOPICS": too_long})
    with pytest.raises(SettingsError, match="PEERLINE_NOTE_TOPICS"):
        from_env(env | {"PEERLINE_NOTE_TOPICS": "lonely, <b>"})
    with pytest.raises(SettingsError, match="PEERLINE_CRISIS_PAUSE_MINUTES"):
        from_env(env | {"PEERLINE_CRISIS_PAUSE_MINUTES": "-1"})
    assert from_env(env | {"PEERLINE_CRISIS_PAUSE_MINUTES": "0"}).crisis_pause_minutes == 0


# The pause after a crisis chat -------------------------------------------------------------


def crisis_chat_ended(line: LineServices, start: datetime) -> None:
    """Sam has a chat in which the texter wrote crisis words, and ends it at `start`."""
    connect(line, now=start)
    sms(line, lines.TEXTER, CRISIS, start)
    sms(line, lines.SAM, "#done", start)


def test_after_a_crisis_chat_the_supporter_gets_no_offer_for_the_pause(line: LineServices) -> None:
    start = utcnow()
    crisis_chat_ended(line, start)
    invite = texts(line, lines.SAM, "debrief_invite_paused")[-1]
    assert "no new one for 5 min, or text #ready" in invite
    assert segments.count(invite) <= 2
    had = offers_to(line, "Sam")
    sms(line, lines.TEXTER_2, "yes", start + timedelta(seconds=5))
    run_matching(line, now=start + timedelta(minutes=4, seconds=59))
    assert offers_to(line, "Sam") == had, "offered a chat during the pause"
    # A matching round is scheduled for the moment the pause ends...
    scheduled = Queue(QUEUE_NAME, connection=line.redis).scheduled_job_registry.get_job_ids()
    assert any(job.startswith("match-at-") for job in scheduled), scheduled
    # ... and that round offers the waiting texter to Sam.
    run_matching(line, now=start + timedelta(minutes=5, seconds=1))
    assert offers_to(line, "Sam") == had + 1
    assert "#take" in texts(line, lines.SAM)[-1]


def test_ready_ends_the_pause_at_once(line: LineServices) -> None:
    start = utcnow()
    crisis_chat_ended(line, start)
    sms(line, lines.TEXTER_2, "yes", start + timedelta(seconds=5))
    had = offers_to(line, "Sam")
    assert had == 1
    sms(line, lines.SAM, "#ready", start + timedelta(seconds=30))
    assert offers_to(line, "Sam") == had + 1
    assert any("offers come again" in t for t in texts(line, lines.SAM, "ready_ok"))
    # Not paused any more: #ready says so, and how to stop offers instead.
    sms(line, lines.SAM, "#ready", start + timedelta(seconds=40))
    assert texts(line, lines.SAM)[-1].startswith("You're not paused")


def test_ready_while_away_says_back_is_needed_too(line: LineServices) -> None:
    start = utcnow()
    crisis_chat_ended(line, start)
    sms(line, lines.SAM, "#away", start)
    sms(line, lines.SAM, "#ready", start + timedelta(seconds=10))
    assert "text #back" in texts(line, lines.SAM)[-1]


def test_a_chat_without_crisis_brings_no_pause(line: LineServices) -> None:
    start = utcnow()
    connect(line, now=start)
    sms(line, lines.SAM, "#done", start)
    sms(line, lines.TEXTER_2, "yes", start + timedelta(seconds=3))
    assert offers_to(line, "Sam") == 2


def test_a_pause_of_zero_minutes_means_no_pause(tmp_path: Path) -> None:
    line = build(tmp_path, PEERLINE_CRISIS_PAUSE_MINUTES="0")
    sms(line, lines.RIA, "#away")
    start = utcnow()
    crisis_chat_ended(line, start)
    assert texts(line, lines.SAM, "debrief_invite_paused") == []
    sms(line, lines.TEXTER_2, "yes", start + timedelta(seconds=3))
    assert offers_to(line, "Sam") == 2


# #note, #referred, #debrief -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4 lonely, family felt heavy", Note(4, ("lonely", "family"), "lonely, family felt heavy")),
        ("lonley,famly 5", Note(5, ("lonely", "family"), "")),
        ("5. Lonely!", Note(5, ("lonely",), "")),
        ("4/5", Note(4, (), "")),
        ("8/10 money", Note(4, ("money",), "")),
        ("cuatro grief", Note(4, ("grief",), "")),
        ("lonely/family 3", Note(3, ("lonely", "family"), "")),
        ("talked 45 min about work", Note(None, ("work",), "talked 45 min about work")),
        ("#grief #anxiety 2", Note(2, ("grief", "anxiety"), "")),
        ("3 😢 hard one", Note(3, (), "😢 hard one")),
        ("2 wrk", Note(2, (), "wrk")),  # too short to guess: kept as words, not a topic
        ("", NoteProblem("empty")),
        ("   ", NoteProblem("empty")),
        ("0", NoteProblem("score")),
        ("7 lonely", NoteProblem("score")),
        ("lonely 12", NoteProblem("score")),
    ],
)
def test_note_is_read_forgivingly(text: str, expected: Note | NoteProblem) -> None:
    assert parse_note(text, TOPICS) == expected


def test_spanish_topic_words_map_to_the_same_topics() -> None:
    note = parse_note("4 soledad, Familia, ansiedd", TOPICS)
    assert isinstance(note, Note)
    assert note.topics == ("lonely", "family", "anxiety") and note.words == ""
    # A line whose list leaves a topic out does not take its Spanish word either.
    assert parse_note("3 duelo", ("lonely",)) == Note(3, (), "duelo")


def test_a_very_long_note_is_cut_to_a_few_words() -> None:
    read = parse_note("4 " + "word " * 200, TOPICS)
    assert isinstance(read, Note) and len(read.words) == 320


def test_note_by_sms_is_kept_encrypted_and_never_reaches_the_texter(line: LineServices) -> None:
    alias = connect(line)
    sms(line, lines.SAM, "#done")
    sms(line, lines.SAM, "#Note 4 lonely, family felt heavy")
    assert texts(line, lines.SAM)[-1].startswith(f"Noted about {alias}: 4/5, lonely, family.")
    kept = record(line)
    assert (kept.supporter_score, kept.topics) == (4, "lonely,family")
    assert kept.note_enc is not None and "heavy" not in kept.note_enc
    assert line.vault.decrypt(kept.note_enc) == "lonely, family felt heavy"
    assert not any("heavy" in t for t in texts(line, lines.TEXTER))
    # A second note replaces the score and topics; words not repeated stay.
    sms(line, lines.SAM, "#note: 3 lonley")
    assert (record(line).supporter_score, record(line).topics) == (3, "lonely")
    sms(line, lines.SAM, "#note4 grief")
    again = record(line)
    assert (again.supporter_score, again.topics) == (4, "grief")
    assert line.vault.decrypt(again.note_enc or "") == "lonely, family felt heavy"


@pytest.mark.parametrize(
    ("text", "reply"),
    [
        ("#note", "To note your last chat: #note, how it went 1-5"),
        ("#note 9 work", "How it went is a number from 1 (hard) to 5"),
        ("#notes 3 work", "Did you mean #note?"),
        # No 1-5 and no topic (session 26: it showed a bare "-"): both asked for.
        ("#note it was ok i think", "How did it go, 1 (hard) to 5 (went well), and what about?"),
    ],
)
def test_a_malformed_note_gets_a_helpful_answer(line: LineServices, text: str, reply: str) -> None:
    connect(line)
    sms(line, lines.SAM, "#done")
    sms(line, lines.SAM, text)
    assert reply in texts(line, lines.SAM)[-1]
    assert segments.count(texts(line, lines.SAM)[-1]) <= 2
    if "9" in text or "#notes" in text:
        assert record(line).supporter_score is None  # nothing was saved


def test_note_referred_and_debrief_before_any_chat(line: LineServices) -> None:
    sms(line, lines.SAM, "#note 4 lonely")
    assert texts(line, lines.SAM)[-1].startswith("There is no chat to note yet")
    sms(line, lines.SAM, "#referred")
    assert texts(line, lines.SAM)[-1].startswith("There is no chat to note yet")


def test_referred_during_the_chat_marks_its_record(line: LineServices) -> None:
    alias = connect(line)
    sms(line, lines.SAM, "#referred")
    assert texts(line, lines.SAM)[-1] == f"Noted that {alias} was given a referral. Thank you."
    assert not any("referral" in t for t in texts(line, lines.TEXTER))
    sms(line, lines.SAM, "#done")
    assert record(line).referred is True


def test_debrief_alerts_the_on_call_coordinator_once(tmp_path: Path) -> None:
    line = build(tmp_path)
    sms(line, lines.RIA, "#away")  # away from chats, still on call
    alias = connect(line)
    sms(line, lines.SAM, "#done")
    sms(line, lines.SAM, "#debrief")
    assert texts(line, lines.SAM)[-1].startswith("Thank you for asking. The on-call coordinator")
    alert = texts(line, lines.RIA, "debrief_alert")[-1]
    assert f"Sam pidio hablar tras una conversacion ({alias})" in alert  # Ria reads Spanish
    sms(line, lines.SAM, "#debrief")
    with line.db.session() as session:
        requests = session.scalars(select(DebriefRequest)).all()
        assert len(requests) == 1 and requests[0].done_at is None
        assert session.scalars(select(Alert.kind).where(Alert.kind == "debrief")).all()


def test_debrief_with_nobody_on_call_says_so(line: LineServices) -> None:
    with line.db.session() as session:
        for supporter in session.scalars(select(Supporter)):
            supporter.on_call = False
    connect(line)
    sms(line, lines.SAM, "#done")
    sms(line, lines.SAM, "#debrief")
    assert "no on-call coordinator could be texted" in texts(line, lines.SAM)[-1]


# The record of real journeys -------------------------------------------------------------


def test_records_hold_what_reports_count_after_real_journeys(line: LineServices) -> None:
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    sms(line, lines.SAM, "#take", start + timedelta(seconds=30))
    sms(line, lines.TEXTER, "it's been a long week", start + timedelta(minutes=1))
    sms(line, lines.SAM, "#referred", start + timedelta(minutes=9))
    sms(line, lines.TEXTER, "bye", start + timedelta(minutes=10, seconds=30))
    sms(line, lines.TEXTER, "4", start + timedelta(minutes=11))
    sms(line, lines.SAM, "#note 3 work", start + timedelta(minutes=12))
    first = record(line)
    assert first.channel == "sms" and first.language == "en"
    assert (first.waited_seconds, first.duration_seconds) == (30, 600)
    assert (first.supporter_score, first.texter_rating, first.topics) == (3, 4, "work")
    assert first.referred is True and first.returning_texter is False
    assert first.crisis_category is None and first.note_enc is None

    # The same texter again, this time in crisis, writing in Spanish.
    later = start + timedelta(hours=2)
    sms(line, lines.TEXTER, "hola, necesito hablar", later)
    sms(line, lines.TEXTER, "si", later)
    sms(line, lines.SAM, "#take", later)
    sms(line, lines.TEXTER, CRISIS, later + timedelta(minutes=1))
    sms(line, lines.SAM, "#done", later + timedelta(minutes=5))
    second = record(line)
    assert second.id != first.id
    assert second.returning_texter is True and second.language == "es"
    assert second.crisis_category == "active_thoughts"
    assert second.texter_rating is None and second.referred is False


def test_notes_are_purged_and_erased_with_the_transcript(line: LineServices) -> None:
    connect(line)
    sms(line, lines.SAM, "#done")
    sms(line, lines.SAM, "#note 2 grief it stayed with me")
    with line.db.session() as session:
        purge(session, utcnow() + timedelta(days=31), line.settings.retention_days)
    kept = record(line)
    assert kept.note_enc is None and (kept.supporter_score, kept.topics) == (2, "grief")
    # A note written after the purge keeps its counts, not its words.
    sms(line, lines.SAM, "#note 3 grief more words")
    assert record(line).note_enc is None and record(line).supporter_score == 3

    connect(line, lines.TEXTER_2)
    sms(line, lines.SAM, "#note 4 lonely the texter's story")
    assert record(line).note_enc is not None
    sms(line, lines.TEXTER_2, "DELETE")
    sms(line, lines.TEXTER_2, "DELETE")
    erased = record(line)
    assert erased.note_enc is None and erased.topics == "lonely"


TEXTER_3 = "+14165550197"


def pending_offer(line: LineServices, name: str) -> Offer | None:
    """Return a supporter's pending offer, if any."""
    with line.db.session() as session:
        sid = session.scalars(select(Supporter.id).where(Supporter.name == name)).one()
        found = session.scalars(
            select(Offer).where(Offer.supporter_id == sid, Offer.status == "pending")
        ).first()
        if found is not None:
            session.expunge(found)
        return found


def test_a_texter_in_crisis_is_offered_to_a_resting_supporter_when_nobody_else_is_free(
    line: LineServices,
) -> None:
    # Seen by hand (session 25): the only supporter on shift had just ended a hard chat, and a
    # texter whose first words were a plan waited out the whole 5-minute pause, offered to
    # nobody. A crisis call already rang a resting supporter; a crisis text now reaches them.
    start = utcnow()
    crisis_chat_ended(line, start)
    had = offers_to(line, "Sam")
    sms(line, TEXTER_3, "yes", start + timedelta(seconds=5))  # an ordinary texter waits
    sms(
        line, lines.TEXTER_2, "i have a plan to kill myself on friday", start + timedelta(seconds=6)
    )
    assert offers_to(line, "Sam") == had + 1, "the texter in crisis was offered to nobody"
    # The coordinator's alert counts them among those waiting, with the ordinary texter (it
    # said "0 waiting" when a first text in crisis was counted before it joined the queue).
    assert "Fila: 2 esperando" in texts(line, lines.RIA, "safety_alert")[-1]
    offer = texts(line, lines.SAM)[-1]
    assert offer.startswith("PRIORITY: ")
    # Session 28: "nobody else is free" was untrue when someone free did not speak their
    # language; the resting supporter is their best match either way.
    assert "You rest after a hard chat, but you're their best match." in offer
    assert segments.count(offer) <= 2
    # #pass is theirs to use: the texter stays waiting, and the ordinary texter is not offered
    # to the resting supporter in its place.
    sms(line, lines.SAM, "#pass", start + timedelta(seconds=20))
    # The on-call coordinator (Ria, who reads Spanish first) hears of it at once.
    assert "Sam dejo pasar la oferta" in texts(line, lines.RIA, "crisis_untaken_alert")[-1]
    # Not asked again while they rest...
    run_matching(line, now=start + timedelta(minutes=1))
    assert pending_offer(line, "Sam") is None
    # ... but as soon as the pause ends, as anyone free would be.
    run_matching(line, now=start + timedelta(minutes=5, seconds=1))
    assert pending_offer(line, "Sam") is not None
    again = texts(line, lines.SAM)[-1]
    assert again.startswith("PRIORITY: ") and "resting" not in again
    sms(line, lines.SAM, "#take", start + timedelta(minutes=5, seconds=10))
    assert any("You are now chatting with" in text for text in texts(line, lines.SAM)[-3:])
    with line.db.session() as session:
        waiting = session.scalars(select(Conversation).where(Conversation.state == "queued")).all()
        assert len(waiting) == 1 and waiting[0].priority == 0  # the ordinary texter still waits


def test_a_resting_supporter_is_not_asked_while_someone_else_is_free(line: LineServices) -> None:
    start = utcnow()
    crisis_chat_ended(line, start)
    sms(line, lines.RIA, "#back", start)
    had = offers_to(line, "Sam")
    sms(
        line, lines.TEXTER_2, "i have a plan to kill myself on friday", start + timedelta(seconds=6)
    )
    assert offers_to(line, "Sam") == had
    assert pending_offer(line, "Ria") is not None
    # An ordinary texter is never offered to them while they rest.
    sms(line, lines.RIA, "#take", start + timedelta(seconds=10))
    sms(line, TEXTER_3, "yes", start + timedelta(seconds=15))
    assert offers_to(line, "Sam") == had


def test_a_missed_offer_while_resting_is_no_sign_the_supporter_is_gone(tmp_path: Path) -> None:
    line = build(tmp_path, PEERLINE_AUTO_AWAY_AFTER="1")
    sms(line, lines.RIA, "#away")
    start = utcnow()
    crisis_chat_ended(line, start)
    sms(
        line, lines.TEXTER_2, "i have a plan to kill myself on friday", start + timedelta(seconds=6)
    )
    offer = pending_offer(line, "Sam")
    assert offer is not None
    expire_offer(line, offer.id, now=offer.expires_at + timedelta(seconds=1))
    with line.db.session() as session:
        sam = session.scalars(select(Supporter).where(Supporter.name == "Sam")).one()
        assert not sam.away and sam.expired_in_row == 0
    # The coordinator (in Spanish) hears that the offer went untaken, once for this texter.
    alerts = texts(line, lines.RIA, "crisis_untaken_alert")
    assert len(alerts) == 1, alerts
    assert "puede estar en crisis y sigue esperando" in alerts[0]
    assert "la oferta a Sam caduco" in alerts[0]
    assert pending_offer(line, "Sam") is None  # asked once while resting
    run_matching(line, now=start + timedelta(minutes=5, seconds=1))
    again = pending_offer(line, "Sam")
    assert again is not None and again.id != offer.id
    # Out of the pause a missed offer counts again (one is enough here), and the coordinator
    # is not told twice about the same texter.
    expire_offer(line, again.id, now=again.expires_at + timedelta(seconds=1))
    assert len(texts(line, lines.RIA, "crisis_untaken_alert")) == 1
    with line.db.session() as session:
        sam = session.scalars(select(Supporter).where(Supporter.name == "Sam")).one()
        assert sam.away and sam.expired_in_row == 1
        alert_kinds = session.scalars(select(Alert.kind)).all()
    assert alert_kinds.count("crisis_untaken") == 1


def test_going_away_with_a_crisis_offer_alerts_on_call(line: LineServices) -> None:
    # Found by a tester: #away while holding a crisis texter's offer gave it back silently.
    start = utcnow()
    sms(line, lines.TEXTER_2, "ya no quiero vivir, tengo las pastillas aqui", start)
    assert pending_offer(line, "Sam") is not None
    sms(line, lines.SAM, "#away", start + timedelta(seconds=10))
    assert pending_offer(line, "Sam") is None
    alerts = texts(line, lines.RIA, "crisis_untaken_alert")
    assert len(alerts) == 1 and "Sam se puso ausente con la oferta" in alerts[0], alerts


def test_crisis_words_from_a_texter_who_opted_out_reach_on_call(line: LineServices) -> None:
    # Found by a tester: "hi", "STOP", then "i took all my pills" reached nobody (no alert, no
    # record the console shows). The line may not text them; a coordinator must know.
    start = utcnow()
    sms(line, TEXTER_3, "hi", start)
    sms(line, TEXTER_3, "STOP", start + timedelta(seconds=2))
    had = len(outbox(line, TEXTER_3))
    sms(line, TEXTER_3, "i took all my pills", start + timedelta(seconds=4))
    assert len(outbox(line, TEXTER_3)) == had  # nothing goes to someone who opted out
    alert = texts(line, lines.RIA, "safety_alert")[-1]
    assert "puede estar en crisis" in alert and "se dio de baja (STOP)" in alert, alert
    with line.db.session() as session:
        kept = session.scalars(
            select(Conversation).where(Conversation.crisis_at.is_not(None))
        ).all()
        assert [c.state for c in kept] == ["closed"]  # the console opens it with its text
    # More words in the same crisis window add no second alert.
    sms(line, TEXTER_3, "i dont want to wake up", start + timedelta(seconds=30))
    assert len(texts(line, lines.RIA, "safety_alert")) == 1


def test_a_supporter_at_the_shift_cap_is_offered_a_texter_in_crisis(tmp_path: Path) -> None:
    # Found by a tester: after a supporter's eighth chat of the shift a texter in crisis waited
    # with them free and no offer made. The cap keeps ordinary chats away, not a crisis.
    line = build(tmp_path, PEERLINE_SHIFT_CHAT_CAP="1")
    sms(line, lines.RIA, "#away")
    start = utcnow()
    connect(line, now=start)
    sms(line, lines.SAM, "#done", start + timedelta(seconds=10))
    had = offers_to(line, "Sam")
    sms(line, TEXTER_3, "yes", start + timedelta(seconds=20))
    assert offers_to(line, "Sam") == had  # at the cap: no ordinary chat
    sms(line, lines.TEXTER_2, "i want to kill myself tonight", start + timedelta(seconds=30))
    assert offers_to(line, "Sam") == had + 1
    assert texts(line, lines.SAM)[-1].startswith("PRIORITY: ")


def test_an_ordinary_offer_that_times_out_alerts_nobody(line: LineServices) -> None:
    start = utcnow()
    sms(line, lines.TEXTER_2, "yes", start)
    offer = pending_offer(line, "Sam")
    assert offer is not None
    expire_offer(line, offer.id, now=offer.expires_at + timedelta(seconds=1))
    sms(line, lines.SAM, "#pass", start + timedelta(minutes=3))
    assert texts(line, lines.RIA, "crisis_untaken_alert") == []


def test_a_resting_supporter_is_not_rung_for_a_call_but_is_for_a_crisis_call(
    line: LineServices,
) -> None:
    start = utcnow()
    crisis_chat_ended(line, start)
    with line.db.session() as session:
        sam = session.scalars(select(Supporter).where(Supporter.name == "Sam")).one()
        during, after = start + timedelta(minutes=2), start + timedelta(minutes=6)

        def rung(now: datetime, crisis: bool = False) -> list[str]:
            found = ringable(line, session, [sam.id], language="en", now=now, crisis=crisis)
            return [s.name for s in found]

        assert rung(during) == []
        assert rung(during, crisis=True) == ["Sam"]
        assert rung(after) == ["Sam"]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("#note: 3 lonley", "note_ok"),
        ("#NOTE 5", "note_ok_no_topics"),
        ("#note4 grief", "note_ok"),
        # A tester (session 26): "Noted about F24: -." read like a glitch.
        ("#note great chat", "note_ok_no_score_topics"),
        ("#note lonely, felt heavy", "note_ok_no_score"),
        ("#note.", "note_help"),
        ("#note 6", "note_score"),
        ("#notes 3", "did_you_mean"),
        ("#nte 3", "did_you_mean"),
        ("#redy", "did_you_mean"),
        ("#debreif", "did_you_mean"),
    ],
)
def test_the_pure_flow_reads_note_commands_forgivingly(text: str, key: str) -> None:
    state = supporter_flow.SupporterState(last_alias="K7", topics=TOPICS)
    effects = supporter_flow.decide(state, text).effects
    replies = [e for e in effects if isinstance(e, fx.Reply)]
    assert [r.key for r in replies] == [key]
    saved = [e for e in effects if isinstance(e, fx.SaveNote)]
    assert bool(saved) == key.startswith("note_ok")


def test_ready_and_debrief_in_the_pure_flow() -> None:
    paused = supporter_flow.SupporterState(paused=True, away=True)
    assert supporter_flow.decide(paused, "#ready").effects == [
        fx.Ready(),
        fx.Reply("ready_ok_away"),
    ]
    assert supporter_flow.decide(supporter_flow.SupporterState(), "#debrief").effects == [
        fx.AskDebrief()
    ]
    # In a chat, a bare "ready" is the supporter's words to the texter, with a hint.
    chatting = supporter_flow.SupporterState(chat_alias="K7")
    assert supporter_flow.decide(chatting, "ready").effects[0] == fx.Relay("ready")


def test_notes_survive_a_key_rotation(tmp_path: Path) -> None:
    old, new = "old-key-" + "a" * 40, "new-key-" + "b" * 40
    line = build(tmp_path, PEERLINE_ENCRYPTION_KEYS=old)
    sms(line, lines.RIA, "#away")
    connect(line)
    sms(line, lines.SAM, "#done")
    sms(line, lines.SAM, "#note 4 lonely it went well")
    both = make_line(make_settings(tmp_path, PEERLINE_ENCRYPTION_KEYS=f"{new},{old}"), line.redis)
    with both.db.session() as session:
        assert keys.rotate(session, both.vault).encrypted > 0
    only_new = make_line(make_settings(tmp_path, PEERLINE_ENCRYPTION_KEYS=new), line.redis)
    assert only_new.vault.decrypt(record(only_new).note_enc or "") == "lonely it went well"
