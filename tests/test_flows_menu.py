"""The voice menu's parsing of keys and words: pure, without Flask, a database or Twilio."""

from __future__ import annotations

import pytest

from peerline.flows.menu import CRISIS, GROUPS, PEER, REPEAT, SWITCH, TEXT_GROUPS, parse_choice


@pytest.mark.parametrize(
    ("digits", "expected"),
    [("1", PEER), ("2", GROUPS), ("3", CRISIS), ("4", TEXT_GROUPS), ("8", SWITCH), ("9", REPEAT)],
)
def test_each_key_is_its_choice(digits: str, expected: str) -> None:
    assert parse_choice(digits, "") == expected


def test_a_negated_word_does_not_count_but_the_next_clause_does() -> None:
    assert parse_choice("", "I'm not in crisis, I just want to talk") == PEER
    assert parse_choice("", "no es una emergencia, quiero hablar", "es") == PEER


def test_a_spanish_menu_word_at_the_english_menu_switches_language() -> None:
    assert parse_choice("", "quiero hablar con alguien", "en") == "es"
    assert parse_choice("", "quiero hablar con alguien", "es") == PEER


def test_accents_and_case_do_not_matter() -> None:
    assert parse_choice("", "ESPAÑOL") == "es"
    assert parse_choice("", "Reunión de grupo", "es") == GROUPS
