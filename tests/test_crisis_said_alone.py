"""Short crisis words a tester playing callers said, read in texts and calls (session 28).

"quiero desaparecer", "I just want to disappear", "tengo un arma", "esta es mi última llamada"
were passed over (a caller heard "not one of the choices", a texter the welcome), while "I have
a gun", "this is my last text" and "me quiero morir" were found. Each is read as its English or
Spanish counterpart is; their everyday senses stay quiet.
"""

from __future__ import annotations

import pytest

from peerline.service.crisis import CrisisDetector


@pytest.fixture(scope="module")
def detector() -> CrisisDetector:
    return CrisisDetector.load()


FOUND = [
    ("quiero desaparecer", "wish_dead"),
    ("solo quiero desaparecer", "wish_dead"),
    ("a veces quiero desaparecer", "wish_dead"),
    ("me gustaría desaparecer, no mudarme, desaparecer de verdad", "wish_dead"),
    ("i just want to disappear", "wish_dead"),
    ("i want to disappear.", "wish_dead"),
    ("i just want to disappear 😔", "wish_dead"),
    ("tengo un arma", "means"),
    ("tengo una pistola", "means"),
    ("ya tengo una pistola", "means"),
    ("esta es mi última llamada", "preparation"),
    ("this is my last phone call", "preparation"),
    ("this is my final call. goodbye", "preparation"),
]

QUIET = [
    "ugh i want to disappear",
    "ugh so embarrassing i want to disappear lol",
    "i want to disappear for a week to the beach",
    "i want to disappear, i waved back at someone who was waving at the person behind me",
    "i dont want to disappear",
    "no quiero desaparecer, quiero que me escuchen",
    "quiero desaparecer de las redes un tiempo",
    "que verguenza quiero desaparecer",
    "tengo una pistola de agua",
    "tengo un arma en el juego",
    "esta es mi ultima llamada del dia, me voy a casa",
    "this is my last call of the day",
    "this is my last call before the meeting",
]


@pytest.mark.parametrize(("text", "category"), FOUND)
def test_said_alone_it_is_found(detector: CrisisDetector, text: str, category: str) -> None:
    found = detector.detect(text)
    assert found.matched and found.category == category, found


@pytest.mark.parametrize("text", QUIET)
def test_the_everyday_sense_stays_quiet(detector: CrisisDetector, text: str) -> None:
    assert not detector.detect(text).matched, detector.detect(text)


# A waiting texter's questions and a sorry for leaving, read alone and as a burst: the model
# alone read "hola?? / hay alguien ahi / cuanto falta?" as a plan (988 sent, on call woken)
# and "perdon no queria irme" as intent (a tester's texter, session 28).
QUIET_BURSTS = [
    ["hola??", "hay alguien ahi", "cuanto falta?"],
    ["hello??", "anyone there", "how much longer?"],
    ["perdon no queria irme"],
    ["sorry i didnt mean to leave"],
    ["cuanto falta para que me atiendan"],
]
# ...while crisis words beside them are still read.
FOUND_BURSTS = [
    (["hola", "hay alguien ahi", "me quiero morir"], "wish_dead"),
    (["anyone there", "i took all my pills"], "attempt"),
    (["perdon no queria irme", "pero ya no aguanto mas, me quiero matar"], "active_thoughts"),
]


@pytest.mark.parametrize("texts", QUIET_BURSTS)
def test_waiting_questions_and_sorry_stay_quiet(detector: CrisisDetector, texts: list[str]) -> None:
    for text in texts:
        assert not detector.detect(text).matched, text
    assert not detector.detect_together(texts).matched


@pytest.mark.parametrize(("texts", "category"), FOUND_BURSTS)
def test_crisis_words_beside_them_are_found(
    detector: CrisisDetector, texts: list[str], category: str
) -> None:
    found = detector.detect_together(texts)
    assert found.matched and found.category == category, found
