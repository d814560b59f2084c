"""What a tester playing texters and supporters found while waiting: the words that look like
STOP, questions to the line while in it, the wait it tells, #pass on a one-person shift, the
texts replayed on a re-take, and the coordinator told when the line is left with nobody."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fakeredis import FakeRedis
from sqlalchemy import func, select

from peerline.flows import texter as texter_flow
from peerline.flows.keywords import asks_the_line
from peerline.service import routing, segments
from peerline.service.availability import load_line_rotas
from peerline.service.models import Alert, Contact, Conversation, Offer, Supporter, utcnow
from peerline.service.routing import PASS_HOLD
from peerline.service.runtime import Inbound, expire_offer, receive_sms, run_matching
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox, texts_to
from tests.support.line import Webhooks, load_line_file, make_line, make_settings


def sms(line: LineServices, phone: str, body: str, now: datetime) -> None:
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


# -- words that look like an opt-out but are none to carriers --------------------------------


def conversations(line: LineServices) -> int:
    """Return how many conversations the line holds."""
    with line.db.session() as session:
        return int(session.scalar(select(func.count()).select_from(Conversation)) or 0)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("PARAR", "Para dejar de recibir mensajes, responde STOP"),
        ("alto", "Para dejar de recibir mensajes, responde STOP"),
        ("stop pls", "To stop getting texts from Peerline, reply STOP"),
        ("Stop please!", "To stop getting texts from Peerline, reply STOP"),
    ],
)
def test_a_stop_that_carriers_do_not_know_is_told_how_to_stop_and_not_enrolled(
    line: LineServices, hooks: Webhooks, body: str, expected: str
) -> None:
    hooks.sms(lines.TEXTER, body)
    told = texts_to(line, lines.TEXTER)
    assert len(told) == 1 and told[0].startswith(expected), told
    assert "Reply YES" not in told[0] and "Responde SI" not in told[0]
    assert conversations(line) == 0  # no welcome, no conversation
    with line.db.session() as session:
        assert not session.scalars(select(Contact.opted_out)).one()  # and no opt-out either


def test_a_stop_like_word_in_the_queue_keeps_the_place_and_says_how_to_stop(
    line: LineServices, hooks: Webhooks
) -> None:
    hooks.sms(lines.TEXTER, "hola")
    hooks.sms(lines.TEXTER, "si")
    hooks.sms(lines.TEXTER, "parar")
    assert texts_to(line, lines.TEXTER)[-1].startswith("Para dejar de recibir mensajes")
    assert "Para salir solo de la fila, responde ADIOS" in texts_to(line, lines.TEXTER)[-1]
    with line.db.session() as session:
        assert session.scalars(select(Conversation.state)).one() == "queued"


def test_a_real_stop_is_still_an_opt_out(line: LineServices, hooks: Webhooks) -> None:
    hooks.sms(lines.TEXTER, "hi")
    hooks.sms(lines.TEXTER, "STOP")
    with line.db.session() as session:
        assert session.scalars(select(Contact.opted_out)).one()


# -- a question to the line while waiting -----------------------------------------------------


def test_hello_is_anyone_coming_five_minutes_in_gets_a_short_answer_once_in_a_while(
    line: LineServices,
) -> None:
    # Found by a tester: five minutes after joining, "hello? is anyone coming" got nothing (the
    # place in line is held back ten minutes). Sam holds the offer and has not taken it.
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    told = len(texts(line, lines.TEXTER))
    sms(line, lines.TEXTER, "hello? is anyone coming", start + timedelta(minutes=5))
    answer = texts(line, lines.TEXTER)[told:]
    assert len(answer) == 1 and answer[0].startswith("Yes, we're here. You are number 1 in line")
    # Asked again a minute later: no second answer yet (their words still wait for Sam).
    sms(line, lines.TEXTER, "hello??", start + timedelta(minutes=6))
    assert len(texts(line, lines.TEXTER)) == told + 1
    # A few minutes on, asking again is answered again.
    sms(line, lines.TEXTER, "how long?", start + timedelta(minutes=8, seconds=30))
    assert len(texts(line, lines.TEXTER)) == told + 2
    # Their story, written while they wait, is not answered: it is for the supporter.
    sms(line, lines.TEXTER, "my dad died in march and i cant sleep", start + timedelta(minutes=9))
    assert len(texts(line, lines.TEXTER)) == told + 2
    sms(line, lines.SAM, "#take", start + timedelta(minutes=10))
    replayed = "\n".join(texts(line, lines.SAM, "relay"))
    assert "hello? is anyone coming" in replayed and "my dad died in march" in replayed


def test_a_spanish_texter_asking_if_anyone_is_there_is_answered_in_spanish(
    line: LineServices,
) -> None:
    start = utcnow()
    sms(line, lines.TEXTER, "hola", start)
    sms(line, lines.TEXTER, "si", start + timedelta(seconds=10))
    sms(line, lines.TEXTER, "hola? hay alguien?", start + timedelta(minutes=5))
    assert texts(line, lines.TEXTER)[-1].startswith("Si, aqui estamos. Eres el numero 1 en la")


def test_an_ordinary_text_while_waiting_is_still_not_answered(line: LineServices) -> None:
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    told = len(texts(line, lines.TEXTER))
    sms(line, lines.TEXTER, "ok", start + timedelta(minutes=5))
    sms(line, lines.TEXTER, "i just feel so alone lately", start + timedelta(minutes=5, seconds=5))
    assert len(texts(line, lines.TEXTER)) == told


def test_crisis_words_in_a_question_keep_their_own_answer() -> None:
    waiting = texter_flow.TexterState(stage=texter_flow.QUEUED, still_waiting_due=False)
    status = texter_flow.LineStatus(open_now=True)
    outcome = texter_flow.decide(
        waiting, status, "is anyone there? i want to die", crisis="suicide"
    )
    replies = [e.key for e in outcome.effects if isinstance(e, texter_flow.fx.Reply)]
    assert replies == ["crisis", "still_waiting"]


@pytest.mark.parametrize(
    "text",
    ["hello?", "is anyone there", "how long?", "u there?", "hola? hay alguien?", "cuanto falta"],
)
def test_questions_to_the_line(text: str) -> None:
    assert asks_the_line(text)


@pytest.mark.parametrize(
    "text",
    [
        "hi",
        "i don't have anyone there for me",
        "I don't know how long I can do this",
        "my dad died in march and i cant sleep and i dont know who else to talk to about it",
    ],
)
def test_not_questions_to_the_line(text: str) -> None:
    assert not asks_the_line(text)


# -- the wait a texter is told ------------------------------------------------------------------

CRISIS = "i want to kill myself"
TEXTER_3 = "+14165550197"


def on_call_line(tmp_path: Path, **env: str) -> LineServices:
    """Return a line where Sam and Ria (the on-call coordinator) are always on shift, Ria
    away: Sam is the one supporter taking chats."""
    made = make_line(make_settings(tmp_path, **env), FakeRedis())
    load_line_file(made, lines.ON_CALL)
    sms(made, lines.RIA, "#away", utcnow())
    return made


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


def miss(line: LineServices, name: str) -> datetime:
    """Let a supporter's pending offer time out; return when it did."""
    offer = pending_offer(line, name)
    assert offer is not None
    at = offer.expires_at + timedelta(seconds=1)
    expire_offer(line, offer.id, now=at)
    run_matching(line, now=at)
    return at


def told_wait(text: str) -> str:
    """Return the wait a place-in-line text gives, in brackets."""
    found = re.search(r"\(([^)]*)\)", text)
    assert found is not None, text
    return found.group(1)


def test_the_wait_counts_the_rest_of_the_one_supporter_after_a_hard_chat(tmp_path: Path) -> None:
    # Found by a tester: the only supporter on shift rested after a crisis chat (five minutes,
    # PEERLINE_CRISIS_PAUSE_MINUTES) and the next texter heard "(about 1 min)".
    line = on_call_line(tmp_path)
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    sms(line, lines.SAM, "#take", start)
    sms(line, lines.TEXTER, CRISIS, start + timedelta(seconds=30))
    sms(line, lines.SAM, "#done", start + timedelta(minutes=1))
    sms(line, lines.TEXTER_2, "yes", start + timedelta(minutes=1, seconds=10))
    wait = told_wait(texts(line, lines.TEXTER_2, "queued")[-1])
    minutes = re.fullmatch(r"about (\d+) min", wait)
    assert minutes is not None and int(minutes.group(1)) >= 4, wait


def test_nobody_is_available_when_the_one_supporter_keeps_missing_offers(tmp_path: Path) -> None:
    # Found by a tester: Sam let two offers time out (not yet set away, that takes three) and
    # the next texter heard "(about 1 min)".
    line = on_call_line(tmp_path)
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    miss(line, "Sam")
    at = miss(line, "Sam")
    sms(line, lines.TEXTER, "bye", at + timedelta(seconds=5))  # they gave up waiting
    sms(line, lines.TEXTER_2, "yes", at + timedelta(seconds=10))
    told = texts(line, lines.TEXTER_2, "queued")[-1]
    assert "(nobody is available right now; we keep looking)" in told, told
    # Once Sam takes a chat again, the line counts on him as before.
    sms(line, lines.SAM, "#take", at + timedelta(seconds=20))
    sms(line, TEXTER_3, "yes", at + timedelta(seconds=30))
    assert "nobody is available" not in texts(line, TEXTER_3, "queued")[-1]


# -- the coordinator told when auto-away leaves nobody ------------------------------------------


def test_on_call_hears_when_auto_away_leaves_texters_with_nobody(tmp_path: Path) -> None:
    # Found by a tester: the last supporter taking chats was set away after missed offers and
    # the on-call coordinator heard nothing until the stuck-queue alert, a quarter hour on.
    line = on_call_line(tmp_path, PEERLINE_AUTO_AWAY_AFTER="2")
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    sms(line, lines.TEXTER_2, "yes", start + timedelta(seconds=5))
    miss(line, "Sam")
    assert texts(line, lines.RIA, "auto_away_alert") == []  # not away yet
    at = miss(line, "Sam")
    alerts = texts(line, lines.RIA, "auto_away_alert")  # Ria reads Spanish first
    assert len(alerts) == 1, alerts
    assert "Sam no respondio 2 ofertas seguidas y queda ausente" in alerts[0]
    assert "2 esperando" in alerts[0]
    # Once: the queue's later rounds and texts add no second alert.
    run_matching(line, now=at + timedelta(minutes=1))
    sms(line, lines.TEXTER, "hello?", at + timedelta(minutes=2))
    assert len(texts(line, lines.RIA, "auto_away_alert")) == 1
    with line.db.session() as session:
        assert session.scalars(select(func.count()).select_from(Alert)).one() == 1


def test_auto_away_with_someone_else_taking_chats_alerts_nobody(tmp_path: Path) -> None:
    line = on_call_line(tmp_path, PEERLINE_AUTO_AWAY_AFTER="2")
    start = utcnow()
    sms(line, lines.TEXTER_2, "yes", start)
    sms(line, lines.SAM, "#take", start)
    sms(line, lines.RIA, "#back", start + timedelta(seconds=1))
    sms(line, lines.TEXTER, "yes", start + timedelta(seconds=2))
    sms(line, lines.RIA, "#take", start + timedelta(seconds=3))  # Ria is in a chat
    sms(line, lines.SAM, "#done", start + timedelta(seconds=4))
    sms(line, TEXTER_3, "yes", start + timedelta(seconds=5))
    miss(line, "Sam")
    miss(line, "Sam")
    with line.db.session() as session:
        assert session.scalars(select(Supporter.away).where(Supporter.name == "Sam")).one()
    assert texts(line, lines.RIA, "auto_away_alert") == []


# -- #pass on a one-person shift -------------------------------------------------------------


def queued_states(line: LineServices) -> list[str]:
    """Return the states of the conversations, oldest first."""
    with line.db.session() as session:
        return list(session.scalars(select(Conversation.state).order_by(Conversation.id)))


def test_a_pass_on_a_one_person_shift_holds_for_a_few_minutes(line: LineServices) -> None:
    # Found by a tester: Sam, alone on shift, texted #pass and the same offer came back 30 ms
    # later ("comes round to you again"): #pass did nothing.
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    sms(line, lines.SAM, "#pass", start + timedelta(seconds=10))
    assert pending_offer(line, "Sam") is None
    assert texts(line, lines.SAM)[-1].startswith("Offer for ")  # declined, and nothing more
    assert queued_states(line) == ["queued"]  # the texter keeps waiting, in their place
    # Another texter is offered to Sam meanwhile.
    sms(line, lines.TEXTER_2, "yes", start + timedelta(seconds=20))
    offer = pending_offer(line, "Sam")
    assert offer is not None
    sms(line, lines.SAM, "#pass", start + timedelta(seconds=30))
    run_matching(line, now=start + timedelta(minutes=3))
    assert pending_offer(line, "Sam") is None  # both passes still hold
    # Once the hold is over, the first texter comes round to Sam again, first in line.
    run_matching(line, now=start + timedelta(minutes=3, seconds=11))
    again = pending_offer(line, "Sam")
    assert again is not None and again.conversation_id != offer.conversation_id
    assert "comes round to you again" in texts(line, lines.SAM)[-1]


def test_a_texter_in_crisis_passed_waits_out_the_hold_as_after_a_rest(tmp_path: Path) -> None:
    # The rule a resting supporter's #pass follows: a texter let go while in crisis is not asked
    # of them again until the hold ends; the coordinator hears at once.
    line = on_call_line(tmp_path)
    start = utcnow()
    sms(line, lines.TEXTER, CRISIS, start)
    assert pending_offer(line, "Sam") is not None
    sms(line, lines.SAM, "#pass", start + timedelta(seconds=10))
    assert len(texts(line, lines.RIA, "crisis_untaken_alert")) == 1
    run_matching(line, now=start + timedelta(minutes=1))
    assert pending_offer(line, "Sam") is None
    run_matching(line, now=start + timedelta(minutes=3, seconds=11))
    assert pending_offer(line, "Sam") is not None
    assert texts(line, lines.SAM)[-1].startswith("PRIORITY: ")


def test_crisis_words_after_a_pass_reach_the_one_supporter_at_once(tmp_path: Path) -> None:
    # A texter passed as an ordinary chat who then writes crisis words may be in crisis, and
    # nobody else can take them: Sam, who has not had that news, is asked at once.
    line = on_call_line(tmp_path)
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    sms(line, lines.SAM, "#pass", start + timedelta(seconds=10))
    assert pending_offer(line, "Sam") is None
    sms(line, lines.TEXTER, CRISIS, start + timedelta(seconds=40))
    assert pending_offer(line, "Sam") is not None
    assert texts(line, lines.SAM)[-1].startswith("PRIORITY: ")


def test_a_pass_holds_only_for_whoever_passed(tmp_path: Path) -> None:
    line = on_call_line(tmp_path)
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    sms(line, lines.SAM, "#pass", start + timedelta(seconds=10))
    sms(line, lines.RIA, "#back", start + timedelta(seconds=20))
    assert pending_offer(line, "Ria") is not None


# -- what a supporter who takes a texter back is replayed -------------------------------------


def test_taking_back_a_chat_replays_only_what_the_supporter_has_not_seen(
    line: LineServices,
) -> None:
    # Found by a tester: Sam handed a chat back (#pass), took it again, and "While waiting they
    # wrote" repeated the texts he had read live in the chat.
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    sms(line, lines.TEXTER, "before anyone came", start + timedelta(seconds=5))
    sms(line, lines.SAM, "#take", start + timedelta(seconds=10))
    assert "before anyone came" in texts(line, lines.SAM, "relay")[-1]
    sms(line, lines.TEXTER, "told sam live", start + timedelta(seconds=20))
    sms(line, lines.SAM, "#pass", start + timedelta(seconds=30))
    sms(line, lines.TEXTER, "written after the pass", start + timedelta(seconds=40))
    relayed = len(texts(line, lines.SAM, "relay"))
    run_matching(line, now=start + timedelta(minutes=4))
    sms(line, lines.SAM, "#take", start + timedelta(minutes=4, seconds=5))
    assert texts(line, lines.SAM, "took_with_backlog"), texts(line, lines.SAM)[-3:]
    replayed = "\n".join(texts(line, lines.SAM, "relay")[relayed:])
    assert "written after the pass" in replayed
    assert "told sam live" not in replayed and "before anyone came" not in replayed, replayed


def test_taking_back_a_chat_with_nothing_new_replays_nothing(line: LineServices) -> None:
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    sms(line, lines.SAM, "#take", start + timedelta(seconds=10))
    sms(line, lines.TEXTER, "told sam live", start + timedelta(seconds=20))
    sms(line, lines.SAM, "#pass", start + timedelta(seconds=30))
    relayed = len(texts(line, lines.SAM, "relay"))
    run_matching(line, now=start + timedelta(minutes=4))
    sms(line, lines.SAM, "#take", start + timedelta(minutes=4, seconds=5))
    assert texts(line, lines.SAM, "relay")[relayed:] == []
    assert texts(line, lines.SAM, "took_with_backlog") == []
    assert texts(line, lines.SAM, "took")


def test_another_supporter_taking_a_chat_handed_back_still_reads_it_all(tmp_path: Path) -> None:
    line = on_call_line(tmp_path)
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    sms(line, lines.SAM, "#take", start + timedelta(seconds=10))
    sms(line, lines.TEXTER, "told sam live", start + timedelta(seconds=20))
    sms(line, lines.SAM, "#away", start + timedelta(seconds=25))
    sms(line, lines.SAM, "#pass", start + timedelta(seconds=30))
    sms(line, lines.RIA, "#back", start + timedelta(seconds=40))
    sms(line, lines.RIA, "#take", start + timedelta(seconds=50))
    assert "told sam live" in "\n".join(texts(line, lines.RIA, "relay"))


# -- what the reviewer found: stop-like words while waiting reach the supporter ----------------


def test_stop_like_words_written_while_waiting_are_replayed_to_the_supporter(
    line: LineServices,
) -> None:
    # Found by a reviewer: "please stop" and "basta" while in line were answered with how to
    # stop, and then left out of what the supporter read on #take (only ordinary words, HELP
    # or a rating were kept). They may be words about someone else ("my ex keeps texting me").
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    sms(line, lines.SAM, "#pass", start + timedelta(seconds=5))  # so their texts pile up
    sms(line, lines.TEXTER, "my ex keeps texting me", start + timedelta(seconds=10))
    sms(line, lines.TEXTER, "please stop", start + timedelta(seconds=20))
    sms(line, lines.TEXTER, "PARAR", start + timedelta(seconds=30))
    run_matching(line, now=start + timedelta(minutes=4))
    sms(line, lines.SAM, "#take", start + timedelta(minutes=4, seconds=5))
    replayed = "\n".join(texts(line, lines.SAM, "relay"))
    assert "my ex keeps texting me" in replayed
    assert "please stop" in replayed and "PARAR" in replayed, replayed


# -- a hold's end brings a matching round, whichever way it began ------------------------------


def rounds_at(line: LineServices) -> set[int]:
    """Return when the scheduled matching rounds are due, as whole epoch seconds."""
    jobs = line.job_queue.queue.scheduled_job_registry.get_job_ids()
    return {int(job.removeprefix("match-at-")) for job in jobs if job.startswith("match-at-")}


def test_away_handing_offers_back_schedules_a_round_for_when_the_hold_ends(
    line: LineServices,
) -> None:
    # Found by a reviewer: offers #away gives back hold like a #pass, but only #pass scheduled
    # the round for when the hold ends; Sam back within the hold waited for the sweep.
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    assert pending_offer(line, "Sam") is not None
    at = start + timedelta(seconds=10)
    sms(line, lines.SAM, "#away", at)
    sms(line, lines.SAM, "#back", at + timedelta(seconds=20))
    assert pending_offer(line, "Sam") is None  # the given-back texter holds
    assert int((at + PASS_HOLD + timedelta(seconds=1)).timestamp()) in rounds_at(line)


# -- words like STOP: leaving the line, "enough" as distress, the Spanish word -----------------


def test_stop_pls_in_the_queue_also_says_how_to_leave_the_line(
    line: LineServices, hooks: Webhooks
) -> None:
    # Found by a reviewer: a texter in line who wrote "stop pls" heard only "reply STOP" (which
    # ends every text from the line) and not how to leave the line alone.
    hooks.sms(lines.TEXTER, "hi")
    hooks.sms(lines.TEXTER, "yes")
    hooks.sms(lines.TEXTER, "stop pls")
    told = texts_to(line, lines.TEXTER)[-1]
    assert told.startswith("To stop getting texts from Peerline, reply STOP."), told
    assert "To leave the line only, reply BYE." in told, told
    assert segments.count(told) <= 2
    assert queued_states(line) == ["queued"]


@pytest.mark.parametrize("body", ["BASTA", "no mas", "No más."])
def test_enough_as_a_first_text_gets_the_welcome(
    line: LineServices, hooks: Webhooks, body: str
) -> None:
    # "Basta" or "no mas" alone may be someone at the end of their rope ("enough"), not asking
    # to stop: they get the welcome (which says how to stop, and where to turn).
    hooks.sms(lines.TEXTER, body)
    told = texts_to(line, lines.TEXTER)
    assert len(told) == 1 and "STOP" in told[0], told
    assert not told[0].startswith(("To stop getting texts", "Para dejar de recibir")), told
    assert conversations(line) == 1


@pytest.mark.parametrize("first", ["hi", "hi|yes"])
def test_parar_from_an_english_texter_gets_the_spanish_pointer(
    line: LineServices, hooks: Webhooks, first: str
) -> None:
    # PARAR is a Spanish word: an English-state texter, welcomed or in line, who writes it is
    # told how to stop in Spanish, that reply only: one word is no switch of language (a
    # tester's texter was then offered to supporters as writing Spanish).
    for body in first.split("|"):
        hooks.sms(lines.TEXTER, body)
    hooks.sms(lines.TEXTER, "PARAR")
    told = texts_to(line, lines.TEXTER)[-1]
    assert told.startswith("Para dejar de recibir mensajes, responde STOP."), told
    assert ("ADIOS" in told) == ("yes" in first), told
    with line.db.session() as session:
        assert session.scalars(select(Contact)).one().language == "en"


# -- a #pass inside a chat holds like an offer's ------------------------------------------------


def test_a_chat_handed_back_on_a_one_person_shift_holds_for_a_few_minutes(
    line: LineServices,
) -> None:
    # Found by a reviewer: Sam, alone on shift, handed a chat back (#pass in the chat) and the
    # next round offered the texter straight back to him.
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    sms(line, lines.SAM, "#take", start + timedelta(seconds=10))
    at = start + timedelta(seconds=30)
    sms(line, lines.SAM, "#pass", at)
    run_matching(line, now=at + timedelta(seconds=1))
    assert pending_offer(line, "Sam") is None
    assert queued_states(line) == ["queued"]
    # A round is scheduled for when the hold ends, and that round offers them to Sam again.
    assert int((at + PASS_HOLD + timedelta(seconds=1)).timestamp()) in rounds_at(line)
    run_matching(line, now=at + PASS_HOLD - timedelta(seconds=5))
    assert pending_offer(line, "Sam") is None
    run_matching(line, now=at + PASS_HOLD + timedelta(seconds=1))
    assert pending_offer(line, "Sam") is not None


def test_a_crisis_chat_handed_back_waits_out_the_hold_unless_new_crisis_words_come(
    tmp_path: Path,
) -> None:
    # The crisis exception of an offer's #pass (routing.matching._asked): a texter handed back
    # while in crisis is not asked of the one supporter again until the hold ends; crisis
    # words written since the #pass are news Sam has not had, and he is asked at once.
    line = on_call_line(tmp_path)
    start = utcnow()
    sms(line, lines.TEXTER, CRISIS, start)
    sms(line, lines.SAM, "#take", start + timedelta(seconds=10))
    sms(line, lines.SAM, "#pass", start + timedelta(seconds=30))
    run_matching(line, now=start + timedelta(minutes=1))
    assert pending_offer(line, "Sam") is None
    sms(line, lines.TEXTER, "i have the pills here", start + timedelta(minutes=1, seconds=30))
    assert pending_offer(line, "Sam") is not None
    assert texts(line, lines.SAM)[-1].startswith("PRIORITY: ")


def test_a_crisis_chat_handed_back_tells_on_call_at_once(tmp_path: Path) -> None:
    # A texter in crisis whose chat is handed back waits like one whose offer was let go: the
    # on-call coordinator hears now (once a conversation), not after the stuck-queue alert.
    line = on_call_line(tmp_path)
    start = utcnow()
    sms(line, lines.TEXTER, CRISIS, start)
    sms(line, lines.SAM, "#take", start + timedelta(seconds=10))
    assert texts(line, lines.RIA, "crisis_untaken_alert") == []
    sms(line, lines.SAM, "#pass", start + timedelta(seconds=30))
    alerts = texts(line, lines.RIA, "crisis_untaken_alert")
    assert len(alerts) == 1, alerts
    assert "Sam devolvio la conversacion (#pass)" in alerts[0]  # Ria reads Spanish first


def test_an_ordinary_chat_handed_back_alerts_nobody(tmp_path: Path) -> None:
    line = on_call_line(tmp_path)
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    sms(line, lines.SAM, "#take", start + timedelta(seconds=10))
    sms(line, lines.SAM, "#pass", start + timedelta(seconds=30))
    assert texts(line, lines.RIA, "crisis_untaken_alert") == []


# -- who is "not answering": recent misses only, never while an offer is in their hands --------


def test_one_missed_offer_hours_ago_does_not_make_the_line_say_nobody(tmp_path: Path) -> None:
    # Found by a reviewer: one missed offer, however old, made Sam "not answering": on his
    # one-person shift every new texter heard "nobody is available" hours later.
    line = on_call_line(tmp_path)
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    at = miss(line, "Sam")  # he stepped out once
    sms(line, lines.TEXTER, "bye", at + timedelta(seconds=5))
    sms(line, lines.TEXTER_2, "yes", at + timedelta(hours=5))
    told = texts(line, lines.TEXTER_2, "queued")[-1]
    assert "nobody is available" not in told, told
    assert re.fullmatch(r"about \d+ min", told_wait(told)), told


def test_a_supporter_holding_an_offer_is_counted_on_after_a_miss(tmp_path: Path) -> None:
    # Sam missed an offer a moment ago and holds it again (it came round to him): the line is
    # asking him now, and the next texter is not told that nobody is available.
    line = on_call_line(tmp_path)
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    at = miss(line, "Sam")
    assert pending_offer(line, "Sam") is not None
    sms(line, lines.TEXTER_2, "yes", at + timedelta(seconds=10))
    told = texts(line, lines.TEXTER_2, "queued")[-1]
    assert "nobody is available" not in told, told


def test_someone_whose_one_miss_is_old_is_counted_on_by_the_auto_away_alert(
    tmp_path: Path,
) -> None:
    # Found by a reviewer: the auto-away alert ("nobody else on shift can take chats") counted
    # out anyone with one missed offer, however old. Ria missed one five hours ago.
    line = on_call_line(tmp_path)
    start = utcnow()
    sms(line, lines.SAM, "#away", start)
    sms(line, lines.RIA, "#back", start)
    sms(line, lines.TEXTER, "yes", start + timedelta(seconds=1))
    at = miss(line, "Ria")
    sms(line, lines.TEXTER, "bye", at + timedelta(seconds=5))
    later = at + timedelta(hours=5)
    with line.db.session() as session:
        rotas = load_line_rotas(session, line.settings.line_timezone)
        staff = routing.staffing(session, rotas, later, routing.policy_of(line.settings))
        ria = session.scalars(select(Supporter.id).where(Supporter.name == "Ria")).one()
        recent = routing.staffing(
            session, rotas, at + timedelta(seconds=10), routing.policy_of(line.settings)
        )
    assert staff.supporters[ria].answering and staff.answering == 1
    assert not recent.supporters[ria].answering and recent.answering == 0


def test_a_pass_restarts_the_row_of_missed_offers(tmp_path: Path) -> None:
    # A #pass answers the line: the misses before it are no longer "in a row". With auto-away
    # after 2, miss, #pass, miss leaves Sam on shift with one miss.
    line = on_call_line(tmp_path, PEERLINE_AUTO_AWAY_AFTER="2")
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    at = miss(line, "Sam")
    sms(line, lines.SAM, "#pass", at + timedelta(seconds=5))
    with line.db.session() as session:
        in_row = select(Supporter.expired_in_row).where(Supporter.name == "Sam")
        assert session.scalars(in_row).one() == 0
    later = at + PASS_HOLD + timedelta(seconds=10)
    run_matching(line, now=later)
    miss(line, "Sam")
    with line.db.session() as session:
        sam = session.scalars(select(Supporter).where(Supporter.name == "Sam")).one()
        assert (sam.away, sam.expired_in_row) == (False, 1)


# -- a re-take replays what was not shown live, by what was shown, not by the clock ------------


def test_a_text_that_came_in_before_a_pass_and_was_stepped_after_it_is_replayed_on_retake(
    line: LineServices,
) -> None:
    # Found by a reviewer: the re-take replay compared the "handed back" text's time (when the
    # #pass was stepped) with each text's webhook arrival: a text that reached the webhook
    # just before the #pass, stepped by the texter's worker just after it (so queued, never
    # relayed), was never shown to Sam at all.
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    sms(line, lines.SAM, "#take", start + timedelta(seconds=10))
    sms(line, lines.TEXTER, "told sam live", start + timedelta(seconds=20))
    sms(line, lines.SAM, "#pass", start + timedelta(seconds=30))
    receive_sms(
        line,
        Inbound(
            "SM" + uuid.uuid4().hex,
            lines.TEXTER,
            line.settings.twilio_phone_number,
            "sent just before the pass",
            received_at=start + timedelta(seconds=29),
        ),
        now=start + timedelta(seconds=31),
    )
    relayed = len(texts(line, lines.SAM, "relay"))
    assert "sent just before the pass" not in "\n".join(texts(line, lines.SAM))
    run_matching(line, now=start + timedelta(minutes=4))
    sms(line, lines.SAM, "#take", start + timedelta(minutes=4, seconds=5))
    replayed = "\n".join(texts(line, lines.SAM, "relay")[relayed:])
    assert "sent just before the pass" in replayed, replayed
    assert "told sam live" not in replayed, replayed


def test_a_text_stepped_in_the_chat_after_it_was_taken_is_not_replayed_again_on_retake(
    line: LineServices,
) -> None:
    # The other side of the same race: a text that reached the webhook before Sam's #take but
    # was stepped after it went to Sam live; taking the chat back, he is not told it again.
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    sms(line, lines.SAM, "#take", start + timedelta(seconds=10))
    receive_sms(
        line,
        Inbound(
            "SM" + uuid.uuid4().hex,
            lines.TEXTER,
            line.settings.twilio_phone_number,
            "sent as sam took it",
            received_at=start + timedelta(seconds=9),
        ),
        now=start + timedelta(seconds=11),
    )
    assert "sent as sam took it" in texts(line, lines.SAM, "relay")[-1]
    sms(line, lines.SAM, "#pass", start + timedelta(seconds=30))
    relayed = len(texts(line, lines.SAM, "relay"))
    run_matching(line, now=start + timedelta(minutes=4))
    sms(line, lines.SAM, "#take", start + timedelta(minutes=4, seconds=5))
    assert texts(line, lines.SAM, "relay")[relayed:] == []


# -- the hold's length and the wait told while it lasts ----------------------------------------


def one_person_line(tmp_path: Path, **env: str) -> LineServices:
    """Return a line where Sam alone is always on shift."""
    made = make_line(make_settings(tmp_path, **env), FakeRedis())
    load_line_file(made, lines.ALWAYS_OPEN)
    return made


def test_a_pass_holds_at_least_an_offer_time_out(tmp_path: Path) -> None:
    # Found by a reviewer: the hold was a fixed 3 minutes; with offers that give a supporter
    # 4 minutes, whoever passed had the texter back before the time an offer gives them.
    line = one_person_line(tmp_path, OFFER_TIMEOUT_SECONDS="240")
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    at = start + timedelta(seconds=10)
    sms(line, lines.SAM, "#pass", at)
    hold = routing.pass_hold(240)
    assert hold >= timedelta(minutes=4) and routing.pass_hold(120) == PASS_HOLD
    run_matching(line, now=at + timedelta(minutes=3, seconds=30))
    assert pending_offer(line, "Sam") is None
    assert int((at + hold + timedelta(seconds=1)).timestamp()) in rounds_at(line)
    run_matching(line, now=at + hold + timedelta(seconds=1))
    assert pending_offer(line, "Sam") is not None


def test_the_wait_told_while_a_pass_holds_counts_the_hold(tmp_path: Path) -> None:
    # Found by a reviewer: the texter Sam let go, asking how long, heard the time of an offer
    # (Sam counted free), while Sam would not be offered them until the hold ended.
    line = one_person_line(tmp_path, OFFER_TIMEOUT_SECONDS="240")
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    at = start + timedelta(seconds=10)
    sms(line, lines.SAM, "#pass", at)
    asked = start + timedelta(minutes=3, seconds=5)
    sms(line, lines.TEXTER, "hello? is anyone there", asked)
    told = texts(line, lines.TEXTER)[-1]
    minutes = re.fullmatch(r"about (\d+) min", told_wait(told))
    left = (at + routing.pass_hold(240) - asked).total_seconds() / 60
    assert minutes is not None and int(minutes.group(1)) >= left + 4 - 0.5, told


# -- the line's own words are no part of a burst --------------------------------------------


@pytest.mark.parametrize(
    "burst",
    [
        ("yes", "stop pls", "PARAR"),
        ("yse", "ALTO", "si porfa"),
        ("yse", "stop pls", "ADIOS"),
    ],
)
def test_commands_in_a_row_are_not_read_together_as_a_crisis(
    tmp_path: Path, burst: tuple[str, ...]
) -> None:
    # Found by a tester (session 26): a texter in line who sent "yes", "stop pls", "PARAR" got
    # the crisis text and on call a safety alert: each is a command, and read together as one
    # thought the model alarmed (690 of 8,000 three-command bursts did).
    line = on_call_line(tmp_path)
    start = utcnow()
    for n, body in enumerate(burst):
        sms(line, lines.TEXTER, body, start + timedelta(seconds=2 * n))
    sent = [m["purpose"] for m in outbox(line, lines.TEXTER)]
    assert "crisis" not in sent and "crisis_queued" not in sent, sent
    assert texts(line, lines.RIA, "safety_alert") == []


def test_a_thought_split_around_a_command_is_still_read_together(tmp_path: Path) -> None:
    # The texts that are not the line's words are read together as before.
    line = on_call_line(tmp_path)
    start = utcnow()
    sms(line, lines.TEXTER, "yes", start)
    sms(line, lines.TEXTER, "i cant", start + timedelta(seconds=5))
    sms(line, lines.TEXTER, "do this anymore", start + timedelta(seconds=7))  # alone: nothing
    sent = [m["purpose"] for m in outbox(line, lines.TEXTER)]
    assert "crisis" in sent or "crisis_queued" in sent, sent


def test_a_texter_in_crisis_told_their_place_is_not_told_it_again_seconds_later(
    tmp_path: Path,
) -> None:
    # Found by a tester (session 26): "please" 9 s after the crisis text and their place got
    # "You are still in line, number 1": the crisis welcome did not count as a place told.
    line = on_call_line(tmp_path)
    start = utcnow()
    sms(line, lines.SAM, "#away", start)
    sms(line, lines.TEXTER, CRISIS, start + timedelta(seconds=1))
    assert len(texts(line, lines.TEXTER, "crisis_queued")) == 1
    sms(line, lines.TEXTER, "please", start + timedelta(seconds=10))
    sms(line, lines.TEXTER, "i just feel so alone", start + timedelta(seconds=38))
    assert texts(line, lines.TEXTER, "still_waiting") == []



def test_a_texter_in_crisis_who_sends_stop_by_mistake_keeps_the_front_of_the_line(
    tmp_path: Path,
) -> None:
    # Found by a tester (session 26): flagged, then STOP, START and YES, they joined at
    # number 2 behind a texter who was not in crisis. Within the crisis window their place is
    # still the front.
    line = on_call_line(tmp_path)
    start = utcnow()
    sms(line, lines.SAM, "#away", start)
    sms(line, lines.TEXTER_2, "yes", start + timedelta(seconds=1))
    sms(line, lines.TEXTER, CRISIS, start + timedelta(seconds=5))
    sms(line, lines.TEXTER, "STOP", start + timedelta(seconds=20))
    sms(line, lines.TEXTER, "START", start + timedelta(seconds=40))
    sms(line, lines.TEXTER, "YES", start + timedelta(seconds=50))
    told = texts(line, lines.TEXTER)[-1]
    assert "number 1 in line" in told, told
    with line.db.session() as session:
        joined = session.scalars(
            select(Conversation).order_by(Conversation.id.desc()).limit(1)
        ).one()
        assert joined.state == texter_flow.QUEUED and joined.priority > 0
    sms(line, lines.SAM, "#back", start + timedelta(minutes=1))
    assert texts(line, lines.SAM)[-1].startswith("PRIORITY: ")
