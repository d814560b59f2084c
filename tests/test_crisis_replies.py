"""A tester's texts (session 27): a short answer before the crisis words, SMS run-ons, doors."""

from __future__ import annotations

import pytest

from peerline.service.crisis import CrisisDetector
from peerline.service.crisis_model import without_reply
from peerline.service.crisis_text import normalise


@pytest.fixture(scope="module")
def detector() -> CrisisDetector:
    return CrisisDetector.load()


# A reply in a chat that opens with a short answer: the model read a denial in "creo que no"
# (0.27) and the gate dropped the phrase.
FOUND = [
    ("creo que no. quiero dormir y no despertar", "wish_dead"),
    ("took a buncha my moms pills", "attempt"),
    ("i tooka bunch of pills", "attempt"),
    ("took a lotta pills", "attempt"),
    # A door in a crisis scene stays one.
    ("im at the door of the roof", "danger_place"),
    ("the pills are by the door", "means"),
]

# Short answers before words that are not a crisis stay quiet.
QUIET = [
    "no, i dont want to die, just tired of school",
    "creo que no. no me quiero morir, solo estoy cansada",
    "nah. my phone is dead lol",
    "idk. this traffic is killing me",
    "no se, me muero de sueño",
    "took a buncha pics at the beach today",
    # A door as the way in, alone (the model read "door" as a place of danger: a tester).
    "car keys are on the hook by the door",
    "i left my keys by the door",
    "im at the door",
    "i'm outside by the door",
    "my spare keys are behind the back door again",
    "the pizza guy is at the door",
]


@pytest.mark.parametrize(("text", "category"), FOUND)
def test_a_crisis_after_a_short_answer_or_a_run_on_is_found(
    detector: CrisisDetector, text: str, category: str
) -> None:
    found = detector.detect(text)
    assert found.matched and found.category == category


@pytest.mark.parametrize("text", QUIET)
def test_a_short_answer_before_everyday_words_stays_quiet(
    detector: CrisisDetector, text: str
) -> None:
    assert not detector.detect(text).matched


def test_only_the_opening_answers_are_set_aside() -> None:
    assert without_reply(normalise("no se. creo que no. quiero dormir")) == "quiero dormir"
    # An answer alone, or one in the middle, stays.
    assert without_reply(normalise("nope")) == "nope"
    assert without_reply(normalise("im tired. no. i want to sleep")) == normalise(
        "im tired. no. i want to sleep"
    )
