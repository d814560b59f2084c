"""The conversation flows as pure functions: no Flask, no Redis, no database."""

from __future__ import annotations

import pytest

from peerline.flows import effects as fx
from peerline.flows import supporter, texter
from peerline.flows.catalogue import Catalogue
from peerline.flows.keywords import Keyword, classify
from peerline.service import segments

OPEN = texter.LineStatus(open_now=True, position=2, wait_minutes=5, groups="Group: Mon 1 PM")
CLOSED = texter.LineStatus(open_now=False, next_opening="tomorrow at 9:00 AM (EST)")


def keys(step: texter.Step | supporter.Step) -> list[str]:
    """Return the catalogue keys a step replies with."""
    return [e.key for e in step.effects if isinstance(e, fx.Reply)]


@pytest.mark.parametrize(
    ("text", "keyword"),
    [
        ("STOP", Keyword.STOP),
        (" stop. ", Keyword.STOP),
        ("End", Keyword.STOP),
        ("cancel", Keyword.STOP),
        ("STOPALL", Keyword.STOP),
        ("unstop", Keyword.START),
        ("Yes!", Keyword.YES),
        ("sí", Keyword.YES),
        ("info", Keyword.HELP),
        ("remind off", Keyword.REMIND_OFF),
        ("3", Keyword.RATING),
        ("stop calling me names", Keyword.NONE),  # not the whole message: just words
        ("the end of the week", Keyword.NONE),
    ],
)
def test_keywords_are_whole_messages(text: str, keyword: Keyword) -> None:
    assert classify(text) is keyword


def test_first_message_gets_the_welcome() -> None:
    step = texter.step(texter.TexterState(), OPEN, "hello?")
    assert (step.stage, keys(step)) == (texter.WELCOMED, ["welcome"])


def test_yes_as_a_first_message_welcomes_and_queues() -> None:
    step = texter.step(texter.TexterState(), OPEN, "YES")
    assert step.stage == texter.QUEUED
    assert keys(step) == ["welcome", "queued"]
    assert any(isinstance(e, fx.JoinQueue) for e in step.effects)


def test_closed_line_says_when_it_opens() -> None:
    step = texter.step(texter.TexterState(stage=texter.WELCOMED), CLOSED, "yes")
    assert step.stage == texter.WELCOMED
    assert step.effects == [fx.Reply("closed", {"next_opening": "tomorrow at 9:00 AM (EST)"})]


def test_spanish_greeting_switches_language() -> None:
    step = texter.step(texter.TexterState(), OPEN, "Hola")
    assert fx.SetLanguage("es") in step.effects


def test_chat_relays_and_bye_asks_for_a_rating() -> None:
    active = texter.TexterState(stage=texter.ACTIVE, supporter_name="Sam")
    assert texter.step(active, OPEN, "it's hard").effects == [fx.Relay("it's hard")]
    bye = texter.step(active, OPEN, "bye")
    assert bye.stage == texter.RATING
    assert bye.effects == [fx.EndChat(by="texter"), fx.Reply("ask_rating")]
    rated = texter.step(texter.TexterState(stage=texter.RATING), OPEN, "4")
    assert (rated.stage, rated.effects[0]) == (texter.CLOSED, fx.Rate(4))


@pytest.mark.parametrize("stage", [texter.NEW, texter.WELCOMED, texter.QUEUED, texter.ACTIVE])
def test_stop_works_everywhere_and_says_nothing(stage: str) -> None:
    step = texter.step(texter.TexterState(stage=stage), OPEN, "STOP")
    assert step.stage == texter.CLOSED
    assert step.effects[0] == fx.SetOptOut(True)
    assert keys(step) == []


def test_opted_out_texter_gets_nothing_until_start() -> None:
    out = texter.TexterState(stage=texter.CLOSED, opted_out=True)
    assert texter.step(out, OPEN, "hello").effects == []
    assert texter.step(out, OPEN, "START").effects == [fx.SetOptOut(False), fx.Reply("opted_in")]
    yes = texter.step(out, OPEN, "yes")
    assert yes.effects[0] == fx.SetOptOut(False) and yes.stage == texter.QUEUED


def test_crisis_words_raise_safety_and_keep_the_chat_going() -> None:
    active = texter.TexterState(stage=texter.ACTIVE)
    step = texter.step(active, OPEN, "i want to end it all", crisis="suicide")
    assert step.effects == [
        fx.RaiseSafety("detector", "suicide"),
        fx.Reply("crisis"),
        fx.Relay("i want to end it all"),
    ]
    again = texter.step(
        texter.TexterState(stage=texter.ACTIVE, crisis_reply_due=False), OPEN, "x", crisis="suicide"
    )
    assert keys(again) == []


def test_delete_needs_confirmation() -> None:
    first = texter.step(texter.TexterState(stage=texter.WELCOMED), OPEN, "DELETE")
    assert first.effects == [fx.RequestErase(), fx.Reply("erase_confirm")]
    second = texter.step(
        texter.TexterState(stage=texter.WELCOMED, erase_pending=True), OPEN, "delete"
    )
    assert second.effects[-1] == fx.Erase()


def test_supporter_commands() -> None:
    offered = supporter.SupporterState(offer_id=7, offer_alias="K7", on_shift=True)
    assert supporter.step(offered, "#take").effects == [fx.AcceptOffer(7)]
    assert supporter.step(offered, "#TAKE please").effects == [fx.AcceptOffer(7)]
    assert keys(supporter.step(supporter.SupporterState(), "#take")) == ["no_offer"]
    chatting = supporter.SupporterState(chat_alias="K7")
    assert supporter.step(chatting, "hi there").effects == [fx.Relay("hi there")]
    assert fx.EndChat(by="supporter") in supporter.step(chatting, "#done").effects
    assert fx.PassChat() in supporter.step(chatting, "#pass").effects
    assert fx.SetAway(True) in supporter.step(chatting, "#away").effects
    assert keys(supporter.step(chatting, "#dance")) == ["unknown_command"]
    assert keys(supporter.step(supporter.SupporterState(), "hello")) == ["not_in_chat"]


def test_every_automatic_text_fits_two_segments() -> None:
    catalogue = Catalogue.load()
    sample = {
        "position": 12,
        "wait": "(about 45 min)",
        "minutes": 45,
        "name": "Alexandra",
        "alias": "K77",
        "next_opening": "on Wednesday at 10:00 AM (EST)",
        "groups": "Online peer support group: Mon Dec 7 1:00 PM.",
        "group": "Online peer support group",
        "when": "tomorrow at 1:00 PM (EST)",
        "join": " Join: https://example.org/groups",
        "command": "#something",
        "language_note": " (writes in Spanish; no Spanish speaker is free)",
        "still_in_chat": " You are still in your chat with K77.",
        "off_shift": " (You are not on shift right now.)",
        "count": 3,
        "queue": 14,
        "on_shift": 3,
        "what": "may be in crisis (suicide)",
        # The longest an offer's parts and the stuck-queue alert's figures can be.
        "waited": "waiting 11 h 59 min",
        "returning": ", returning: you talked with them less than a day ago",
        "again": " Your offer timed out; everyone free has had it, so it comes back.",
        "waiting": 140,
        "free": 12,
        "away": 12,
    }
    for language, texts in catalogue.texts.items():
        for key in texts:
            text = catalogue.render(language, key, **sample)
            assert segments.count(text) <= 2, (language, key, len(text))


def test_segment_counting() -> None:
    assert segments.count("a" * 160) == 1
    assert segments.count("a" * 161) == 2
    assert segments.count("ñ" * 160) == 1  # in GSM-7
    assert segments.count("á" * 70) == 1  # not in GSM-7: UCS-2
    assert segments.count("á" * 71) == 2
    assert segments.count("€" * 80) == 1 and segments.count("€" * 81) == 2  # escape: 2 septets
