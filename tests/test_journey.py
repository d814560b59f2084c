"""The texter's and supporter's journeys through signed webhooks, with jobs run by RQ."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
from fakeredis import FakeRedis
from sqlalchemy import select

from peerline.app import create_app
from peerline.service import outbox as outbox_module
from peerline.service.models import Contact, Conversation, InboundMessage, Offer
from peerline.service.runtime import ALIAS_LETTERS, expire_offer
from peerline.service.services import LineServices
from tests.support import lines
from tests.support.chat import outbox, run_jobs, take_chat, texts_to
from tests.support.fake_twilio import sign
from tests.support.line import LineBuilder, Webhooks, load_line_file, make_line, make_settings


def test_whole_journey(line: LineServices, hooks: Webhooks) -> None:
    assert hooks.sms(lines.TEXTER, "hi").status_code == 200
    welcome = texts_to(line, lines.TEXTER)
    assert len(welcome) == 1
    assert "not counsellors or a crisis service" in welcome[0]
    assert "988" in welcome[0] and "STOP" in welcome[0] and "YES" in welcome[0]

    hooks.sms(lines.TEXTER, "yes")
    assert "number 1 in line" in texts_to(line, lines.TEXTER)[-1]
    hooks.sms(lines.TEXTER, "I've had a rough week")
    run_jobs(line)  # matching makes an offer to Sam
    offer = texts_to(line, lines.SAM)[-1]
    assert "#take" in offer
    alias = re.match(r"([A-Z]\d+) is waiting", offer)
    assert alias is not None

    hooks.sms(lines.SAM, "#take")
    assert texts_to(line, lines.TEXTER)[-1].startswith("You're connected with Sam")
    # What they wrote before the chat, every word, joined into one SMS a line each (issue 14).
    to_sam = "\n".join(texts_to(line, lines.SAM)).split("\n")
    assert to_sam[-2:] == [f"{alias.group(1)}: hi", f"{alias.group(1)}: I've had a rough week"]
    run_jobs(line)  # sent: the next text to Sam is an SMS of its own

    hooks.sms(lines.TEXTER, "thanks for being here")
    assert texts_to(line, lines.SAM)[-1] == f"{alias.group(1)}: thanks for being here"
    hooks.sms(lines.SAM, "I'm glad you texted. What's been hardest?")
    assert texts_to(line, lines.TEXTER)[-1] == "Sam: I'm glad you texted. What's been hardest?"

    hooks.sms(lines.TEXTER, "bye")
    assert "from 1" in texts_to(line, lines.TEXTER)[-1]
    # Sam hears that it ended, then the after-chat text (issue 21) inviting a #note.
    assert "has ended the chat" in texts_to(line, lines.SAM)[-2]
    assert "#note" in texts_to(line, lines.SAM)[-1]
    hooks.sms(lines.TEXTER, "5")
    assert texts_to(line, lines.TEXTER)[-1].startswith("Thank you")
    with line.db.session() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert (conversation.state, conversation.rating, conversation.closed_by) == (
            "closed",
            5,
            "texter",
        )
    run_jobs(line)
    assert {m["status"] for m in outbox(line)} == {"sent"}
    # Masking: every message comes from the line, and none to Sam carries the texter's number.
    assert {m["from"] for m in outbox(line)} == {line.settings.twilio_phone_number}
    digits = lines.TEXTER.lstrip("+")
    for body in texts_to(line, lines.SAM):
        assert digits[-7:] not in re.sub(r"\D", "", body)


def test_duplicate_webhook_acts_once(line: LineServices, hooks: Webhooks) -> None:
    assert hooks.sms(lines.TEXTER, "hello", sid="SM" + "1" * 32).status_code == 200
    assert hooks.sms(lines.TEXTER, "hello", sid="SM" + "1" * 32).status_code == 200
    assert len(texts_to(line, lines.TEXTER)) == 1
    with line.db.session() as session:
        assert len(session.scalars(select(InboundMessage)).all()) == 1


def test_bad_signature_is_refused(line: LineServices, hooks: Webhooks) -> None:
    params = {"MessageSid": "SM" + "2" * 32, "From": lines.TEXTER, "Body": "hi"}
    assert hooks.post("/webhooks/sms", params, signed=False).status_code == 403
    response = hooks.client.post(
        "/webhooks/sms", data=params, headers={"X-Twilio-Signature": "bm90IGl0"}
    )
    assert response.status_code == 403
    tampered = hooks.client.post(
        "/webhooks/sms",
        data={**params, "Body": "changed"},
        headers={"X-Twilio-Signature": _signature(line, params)},
    )
    assert tampered.status_code == 403
    assert outbox(line) == []


def _signature(line: LineServices, params: dict[str, str]) -> str:
    """Return the signature Twilio would give these params (before they were tampered with)."""
    url = line.settings.public_base_url + "/webhooks/sms"
    return sign(url, params, line.settings.twilio_auth_token)


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"From": lines.TEXTER, "Body": "hi"}, "MessageSid is required"),
        ({"MessageSid": "SM" + "3" * 32, "Body": "hi"}, "From is required"),
        ({"MessageSid": "SM" + "4" * 32, "From": "not a number", "Body": "hi"}, "phone number"),
    ],
)
def test_malformed_request_gets_400_with_reason(
    hooks: Webhooks, params: dict[str, str], reason: str
) -> None:
    response = hooks.post("/webhooks/sms", params)
    assert response.status_code == 400
    assert reason in response.get_json()["reason"]


@pytest.mark.parametrize("body", ["", "   ", "💙", "🙏🏽🙏🏽"])
def test_empty_or_emoji_body_is_a_message(line: LineServices, hooks: Webhooks, body: str) -> None:
    assert hooks.sms(lines.TEXTER, body).status_code == 200
    assert "Peerline" in texts_to(line, lines.TEXTER)[0]


@pytest.mark.parametrize("word", ["STOP", "stop", "End", "CANCEL", "unsubscribe", "quit"])
def test_stop_opts_out_and_gets_no_reply(line: LineServices, hooks: Webhooks, word: str) -> None:
    hooks.sms(lines.TEXTER, "hi")
    response = hooks.sms(lines.TEXTER, word)
    assert b"<Message" not in response.data
    with line.db.session() as session:
        assert session.scalars(select(Contact)).one().opted_out
    assert len(texts_to(line, lines.TEXTER)) == 1  # only the welcome
    hooks.sms(lines.TEXTER, "is anyone there")
    assert len(texts_to(line, lines.TEXTER)) == 1
    hooks.sms(lines.TEXTER, "START")
    assert "get texts from Peerline again" in texts_to(line, lines.TEXTER)[-1]


def test_stop_during_chat_frees_the_supporter(line: LineServices, hooks: Webhooks) -> None:
    take_chat(line, hooks, lines.TEXTER, lines.SAM)
    hooks.sms(lines.TEXTER, "STOP")
    # The after-chat text (issue 21) follows what happened.
    assert "sent an opt-out word" in texts_to(line, lines.SAM)[-2]
    assert "text START they can come back" in texts_to(line, lines.SAM)[-2]
    hooks.sms(lines.TEXTER_2, "yes")
    run_jobs(line)
    assert "#take" in texts_to(line, lines.SAM)[-1]


def test_help_and_unknown_supporter_command(line: LineServices, hooks: Webhooks) -> None:
    hooks.sms(lines.TEXTER, "HELP")
    assert "peer support by text" in texts_to(line, lines.TEXTER)[-1]
    hooks.sms(lines.SAM, "#dance")
    assert "Unknown command #dance" in texts_to(line, lines.SAM)[-1]
    hooks.sms(lines.SAM, "#help")
    assert "#take" in texts_to(line, lines.SAM)[-1]
    hooks.sms(lines.SAM, "hello?")
    assert "not in a chat" in texts_to(line, lines.SAM)[-1]


def test_closed_line_says_when_it_opens(build: LineBuilder) -> None:
    line, hooks = build(lines.NEVER_OPEN)
    hooks.sms(lines.TEXTER, "yes")
    reply = texts_to(line, lines.TEXTER)[-1]
    assert "not on shift right now" in reply
    with line.db.session() as session:
        assert session.scalars(select(Conversation)).one().state == "welcomed"


def test_offer_times_out_and_moves_to_next(build: LineBuilder) -> None:
    line, hooks = build(lines.TWO_ON)
    hooks.sms(lines.TEXTER, "yes")
    run_jobs(line)
    with line.db.session() as session:
        first = session.scalars(select(Offer)).one()
        first_id, expires = first.id, first.expires_at
    expire_offer(line, first_id, now=expires)
    run_jobs(line)
    with line.db.session() as session:
        offers = session.scalars(select(Offer).order_by(Offer.id)).all()
        assert [o.status for o in offers] == ["expired", "pending"]
        assert offers[0].supporter_id != offers[1].supporter_id


def test_supporter_pass_returns_chat_to_queue(build: LineBuilder) -> None:
    line, hooks = build(lines.TWO_ON)
    hooks.sms(lines.TEXTER, "yes")
    run_jobs(line)
    with line.db.session() as session:
        offered = session.scalars(select(Offer)).one().supporter_id
    first, other = (lines.SAM, lines.RIA) if offered == 1 else (lines.RIA, lines.SAM)
    hooks.sms(first, "#take")
    hooks.sms(first, "#pass")
    assert "finding another peer" in texts_to(line, lines.TEXTER)[-1]
    run_jobs(line)
    assert "#take" in texts_to(line, other)[-1]
    hooks.sms(other, "#take")
    assert "connected with" in texts_to(line, lines.TEXTER)[-1]


def test_aliases_grow_rather_than_run_out(line: LineServices, hooks: Webhooks) -> None:
    with line.db.session() as session:
        # Every one-letter, two-digit alias is taken.
        session.add_all(
            Contact(phone_hash=f"h{letter}{n}", phone_enc="", alias=f"{letter}{n}")
            for letter in ALIAS_LETTERS
            for n in range(10, 100)
        )
    assert hooks.sms(lines.TEXTER, "hello").status_code == 200
    with line.db.session() as session:
        alias = session.scalars(select(Contact.alias).order_by(Contact.id.desc())).first()
    assert alias is not None and re.fullmatch(r"[A-Z]\d{3,}", alias)


def test_a_send_whose_slot_is_later_leaves_it_to_the_sender_loop(tmp_path: Path) -> None:
    # One text a second from the line: the second text's slot is a second away.
    settings = make_settings(tmp_path, PEERLINE_SEND_RATES="long_code=1")
    line = make_line(settings, FakeRedis())
    load_line_file(line, lines.ALWAYS_OPEN)
    hooks = Webhooks(create_app(line=line).test_client(), line.settings)
    hooks.sms(lines.TEXTER, "hello")
    hooks.sms(lines.TEXTER, "yes")
    waiting = outbox(line, lines.TEXTER)
    assert len(waiting) >= 2
    started = time.monotonic()
    outbox_module.send(line, waiting[1]["id"])
    # No worker waits for the slot (issue 19): the first went, the rest wait in their lane...
    assert time.monotonic() - started < 0.5
    statuses = [m["status"] for m in outbox(line, lines.TEXTER)]
    assert statuses[0] == "sent" and "pending" in statuses
    due = line.lanes.next_due()
    assert due is not None and due[0] == line.settings.twilio_phone_number
    # ...and the sender loop sends each at its slot, in order.
    stopping = threading.Event()
    loop = threading.Thread(target=outbox_module.pace, args=(line, stopping))
    loop.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
            m["status"] == "pending" for m in outbox(line, lines.TEXTER)
        ):
            time.sleep(0.1)
    finally:
        stopping.set()
        loop.join(5)
    assert [m["status"] for m in outbox(line, lines.TEXTER)] == ["sent"] * len(waiting)
