"""People as they really text, replayed end to end: signed webhooks over HTTP, the worker as
deployed (a `peerline worker` process), real PostgreSQL and Redis, and the local Twilio server
whose record says what each phone received."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from peerline.service.models import Alert, Conversation, InboundMessage
from tests.support import lines
from tests.support.deploy import LINE_NUMBER, Deployment, deployed
from tests.support.servers import PostgresServer, RedisServer

pytestmark = pytest.mark.servers

# Sam is always on shift; Ria is the on-call coordinator and takes no chats.
COORDINATED = lines.ALWAYS_OPEN.replace(
    "groups:", f'  - name: Ria\n    phone: "{lines.RIA}"\n    on_call: true\ngroups:', 1
)
CRISIS = "i want to kill myself"
# One segment a second, as a long code really sends: a burst outruns it.
CARRIER_RATE = "long_code=1,toll_free=1,short_code=1"


Deploy = Callable[..., Deployment]


@pytest.fixture
def deploy(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> Iterator[Deploy]:
    """Return a function that deploys a line with one worker process (closed afterwards)."""
    with ExitStack() as stack:

        def make(line_file: str = COORDINATED, **env: str) -> Deployment:
            d = stack.enter_context(
                deployed(tmp_path, postgres_server, redis_server, line_file, **env)
            )
            d.start_worker("--sweep-every", "5")
            return d

        yield make


def connect(d: Deployment, texter: str = lines.TEXTER) -> str:
    """Bring a texter into a chat with Sam over the wire; return the alias Sam sees."""
    d.sms(texter, "yes")
    offer = d.wait_for_text(lines.SAM, r"#take within")
    alias = offer.split()[1] if offer.startswith("PRIORITY") else offer.split()[0]
    d.sms(lines.SAM, "#take")
    d.wait_for_text(texter, "connected with Sam")
    return alias.rstrip(":")


def said_to(d: Deployment, number: str, alias: str) -> list[str]:
    """Return a texter's words as their supporter's phone showed them, one a line."""
    said = "\n".join(d.bodies_to(number)).split("\n")
    return [s.split(": ", 1)[1] for s in said if re.match(rf"^(\[SAFETY\] )?{alias}: ", s)]


def picture(d: Deployment, sender: str, body: str = "") -> int:
    """Deliver an MMS with one picture, as Twilio posts it."""
    return d.post(
        "/webhooks/sms",
        {
            "MessageSid": "MM" + uuid.uuid4().hex,
            "AccountSid": d.twilio.account_sid,
            "From": sender,
            "To": LINE_NUMBER,
            "Body": body,
            "NumMedia": "1",
            "MediaUrl0": f"{d.twilio.base_url}/media/ME{uuid.uuid4().hex}",
            "MediaContentType0": "image/jpeg",
        },
    )


def age_chat(d: Deployment, minutes: int) -> int:
    """Move the one chat's record back in time, as if it had been quiet; return its id."""
    with d.line.db.session() as session:
        chat = session.scalars(select(Conversation).where(Conversation.state == "active")).one()
        shift = timedelta(minutes=minutes)
        chat.matched_at = chat.matched_at - shift
        for message in session.scalars(
            select(InboundMessage).where(InboundMessage.conversation_id == chat.id)
        ):
            message.received_at -= shift
        return chat.id


def test_a_burst_of_25_texts_with_crisis_in_the_middle(deploy: Deploy) -> None:
    d = deploy(PEERLINE_SEND_RATES=CARRIER_RATE)
    alias = connect(d)
    words = [f"I keep typing, part {n}" for n in range(25)]
    words[12] = "i have pills with me and i want to die"
    started = time.monotonic()
    for n, text in enumerate(words):
        assert d.sms(lines.TEXTER, text) == 200
        time.sleep(max(0.0, started + 0.4 * (n + 1) - time.monotonic()))
    assert time.monotonic() - started <= 11
    d.wait_until(lambda: len(said_to(d, lines.SAM, alias)) >= 25, 90, "25 texts relayed to Sam")
    time.sleep(1.5)  # room for a duplicate to show itself
    assert said_to(d, lines.SAM, alias) == words  # every word, in order, exactly once
    relayed = [b for b in d.bodies_to(lines.SAM) if re.match(rf"^(\[SAFETY\] )?{alias}: ", b)]
    assert len(relayed) < 25  # joined while the carrier's rate held them back
    print(f"\nburst: 25 texts reached Sam in {len(relayed)} SMS at one segment a second")
    flagged = "\n".join(d.bodies_to(lines.SAM))
    assert f"[SAFETY] {alias}: i have pills" in flagged and "may be in crisis" in flagged
    d.wait_for_text(lines.RIA, "Peerline safety alert")
    to_texter = d.bodies_to(lines.TEXTER)
    assert len([b for b in to_texter if "988" in b and "matter" in b]) == 1
    assert not any("slow down" in b or "writing fast" in b for b in to_texter)


def test_crisis_as_the_first_text(deploy: Deploy) -> None:
    d = deploy()
    d.sms(lines.TEXTER, CRISIS)
    d.wait_for_text(lines.TEXTER, "988")
    d.wait_for_text(lines.TEXTER, "will text you here as soon as one is free")
    offer = d.wait_for_text(lines.SAM, r"^PRIORITY: .* #take within")
    alias = offer.split()[1]
    d.sms(lines.TEXTER, "are you there")
    d.wait_until(lambda: len(d.bodies_to(lines.TEXTER)) >= 3, 20, "an answer while waiting")
    assert not any("Reply YES" in b for b in d.bodies_to(lines.TEXTER))
    d.sms(lines.SAM, "#take")
    d.wait_for_text(lines.TEXTER, "connected with Sam")
    d.wait_until(lambda: len(said_to(d, lines.SAM, alias)) >= 2, 20, "the words so far")
    assert said_to(d, lines.SAM, alias) == [CRISIS, "are you there"]


def test_one_thought_split_across_first_texts(deploy: Deploy) -> None:
    # Typed fast, before anyone answers; no text says it alone (session 14's burst reading).
    d = deploy()
    split = ["ok so", "i decided", "its happening this weekend"]
    for text in split:
        assert d.sms(lines.TEXTER, text) == 200
    d.wait_for_text(lines.TEXTER, "matter")  # the crisis resources, not the welcome
    offer = d.wait_for_text(lines.SAM, r"^PRIORITY: .* #take within")
    alias = offer.split()[1]
    d.wait_for_text(lines.RIA, "Peerline safety alert")
    d.sms(lines.SAM, "#take")
    d.wait_for_text(lines.TEXTER, "connected with Sam")
    d.wait_until(lambda: len(said_to(d, lines.SAM, alias)) >= 3, 20, "the three texts")
    assert said_to(d, lines.SAM, alias) == split
    assert len([b for b in d.bodies_to(lines.TEXTER) if "988" in b and "matter" in b]) == 1


def test_a_crisis_chat_left_quiet_past_the_idle_time(deploy: Deploy) -> None:
    d = deploy()
    alias = connect(d)
    d.sms(lines.SAM, "Hi, I'm Sam. I'm here.")
    d.wait_for_text(lines.TEXTER, "^Sam: Hi, I'm Sam")
    d.sms(lines.TEXTER, "i don't want to be alive anymore")
    d.wait_for_text(lines.SAM, f"{alias}: i don't want to be alive")
    chat = age_chat(d, 61)
    d.line.job_queue.chat_tick(chat, 0)  # the timer comes due, and the worker runs it
    d.wait_for_text(lines.SAM, f"{alias} was flagged for safety and has been quiet")
    d.wait_for_text(lines.RIA, f"{alias}, flagged for safety, has been quiet")
    time.sleep(1)
    assert not any("closed" in b for b in d.bodies_to(lines.TEXTER))
    with d.line.db.session() as session:
        assert session.get(Conversation, chat).state == "active"  # type: ignore[union-attr]
    # The chat goes on: words still pass both ways.
    d.sms(lines.TEXTER, "still here")
    d.wait_for_text(lines.SAM, f"{alias}: still here")


def test_a_chat_the_supporter_never_answered(deploy: Deploy) -> None:
    d = deploy()
    alias = connect(d)
    d.sms(lines.TEXTER, "hello? anyone?")
    d.wait_for_text(lines.SAM, f"{alias}: hello")
    chat = age_chat(d, 61)
    d.line.job_queue.chat_tick(chat, 0)
    d.wait_for_text(lines.TEXTER, "couldn't answer")
    d.wait_for_text(lines.RIA, f"{alias} got no reply from Sam")
    assert not any("quiet while" in b for b in d.bodies_to(lines.TEXTER))
    with d.line.db.session() as session:
        assert session.get(Conversation, chat).state == "queued"  # type: ignore[union-attr]
        assert "unanswered" in session.scalars(select(Alert.kind)).all()


def test_help_and_a_picture_mid_chat(deploy: Deploy) -> None:
    d = deploy()
    alias = connect(d)
    d.sms(lines.TEXTER, "HELP")
    d.wait_for_text(lines.SAM, f"^{alias}: HELP$")
    d.wait_for_text(lines.TEXTER, "Your message went to Sam")
    d.sms(lines.TEXTER, "please help me")
    d.wait_for_text(lines.SAM, f"^{alias}: please help me$")
    assert picture(d, lines.TEXTER) == 200
    d.wait_for_text(lines.SAM, f"^{alias} sent a picture")
    d.wait_for_text(lines.TEXTER, "Pictures can't be passed on")
    assert not any(b.strip() == f"{alias}:" for b in d.bodies_to(lines.SAM))
    assert not any(m.get("media_url") for m in d.twilio.messages_to(lines.SAM))


def test_a_supporter_who_ignores_one_offer(deploy: Deploy) -> None:
    d = deploy(OFFER_TIMEOUT_SECONDS="3")
    d.sms(lines.TEXTER, "yes")
    d.wait_for_text(lines.SAM, r"#take within")
    # Sam lets it lapse; he is still the only one free, so it must come round to him again.
    d.wait_until(
        lambda: sum("#take within" in b for b in d.bodies_to(lines.SAM)) >= 2,
        12,
        "the offer made again",
    )
    d.sms(lines.SAM, "#take")
    d.wait_for_text(lines.TEXTER, "connected with Sam")


def test_a_first_text_in_spanish_in_crisis(deploy: Deploy) -> None:
    d = deploy()
    d.sms(lines.TEXTER, "hola, no quiero vivir mas")
    d.wait_for_text(lines.TEXTER, "Tu vida importa")
    d.wait_for_text(lines.TEXTER, "compañero/a de apoyo te escribira")
    d.wait_for_text(lines.SAM, r"^PRIORITY: .*writes in Spanish")


def test_a_first_text_in_spanish(deploy: Deploy) -> None:
    d = deploy()
    d.sms(lines.TEXTER, "necesito ayuda")
    d.wait_for_text(lines.TEXTER, "apoyo")
