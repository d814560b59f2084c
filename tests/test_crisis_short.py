"""Short texts: one to five words, as a first text typed fast or a lone line mid-chat.

Session 20 found the line quiet on a bare "took pills" (and so on "my sister took pills"), on
"let me die", "me voy a pegar un tiro" and "decidi morir": the phrases wanted more words around
them and the model is not asked under four words. These are those kinds of words, in sentences
of this file's own (not the development or held-out texts).
"""

from __future__ import annotations

import pytest

from peerline.service.crisis import CrisisDetector


@pytest.fixture(scope="module")
def detector() -> CrisisDetector:
    return CrisisDetector.load()


SHORT_CRISIS = [
    ("attempt", "took pills"),
    ("attempt", "i just swallowed pills 😭"),
    ("attempt", "took them all. sorry"),
    ("attempt", "overdosed"),
    ("attempt", "ya me tome las pastillas"),
    ("attempt", "me trague todas"),
    ("danger_place", "in the garage engine on"),
    ("danger_place", "auto prendido, cochera cerrada"),
    ("danger_place", "en las vias esperando el tren"),
    ("means", "gun aimed at my temple"),
    ("means", "the noose is tied"),
    ("means", "pistola contra mi cabeza"),
    ("preparation", "sent my goodbye messages"),
    ("preparation", "ya hice mi testamento. adios"),
    ("plan", "saturday its over for me"),
    ("plan", "my last day alive is tomorrow"),
    ("plan", "roof at midnight. goodbye"),
    ("plan", "a las 4 me ahorco"),
    ("plan", "cuando se duerman me mato"),
    ("intent", "decided to die"),
    ("intent", "me voy a pegar un tiro"),
    ("intent", "ya decidi matarme"),
    ("preparation", "how many advil would kill me"),  # looking up a dose
    ("method", "whether drowning hurts"),
    ("method", "ahorcarse es doloroso?"),
    ("method", "un balazo en la boca"),
    ("active_thoughts", "my head keeps telling me kys"),
    ("active_thoughts", "la voz me dice suicidate"),
    ("past_attempt", "survived my overdose"),
    ("past_attempt", "overdose attempt didnt work"),
    ("past_attempt", "mi segundo intento fue hace un ano"),
    ("self_harm", "cut again"),
    ("self_harm", "burned myself again"),
    ("wish_dead", "please let me die"),
    ("wish_dead", "dejenme morir"),
    ("wish_dead", "mejor muerto que vivir asi"),
    ("wish_dead", "ojala me maten"),
    ("wish_dead", "me pesa vivir"),
    ("burden_hopelessness", "my death would help them"),
    ("burden_hopelessness", "family better off if im gone"),
    ("burden_hopelessness", "sin mi mi familia estaria mejor"),
    ("burden_hopelessness", "nomas soy una carga"),
]


@pytest.mark.parametrize(("category", "text"), SHORT_CRISIS)
def test_short_texts_of_every_category(detector: CrisisDetector, category: str, text: str) -> None:
    assert detector.detect(text).category == category


SHORT_NEAR_MISSES = [
    # A bare report ends the message; any more words are read by the phrases as before.
    "took pills for my cramps",
    "took them all to the bake sale",
    "me tome todas las cervezas jaja",
    "took my pills this morning",
    # Everyday senses of the new phrases' words.
    "in the garage with the engine on to warm it up",
    "the rope is tied to the tent",
    "let me die of embarrassment lol",
    "sent my last texts for the day",
    "hice mi testamento con el abogado",
    "me di un porrazo",
    "survived a jump 10 years ago, i speak at schools now",
    # Recovered history and a negation.
    "2 anos sin cortarme",
    "nunca pense en matarme",
]


@pytest.mark.parametrize("text", SHORT_NEAR_MISSES)
def test_short_near_misses_stay_quiet(detector: CrisisDetector, text: str) -> None:
    assert not detector.detect(text).matched


def test_a_relapse_after_clean_years_still_counts(detector: CrisisDetector) -> None:
    assert detector.detect("recai. 2 anos limpia de cortarme y hoy otra vez").matched


@pytest.mark.parametrize(
    "text", ["my brother took pills", "mi hermana tomo pastillas", "she swallowed pills"]
)
def test_another_persons_bare_pills_raise_the_flag_for_a_worried_texter(
    detector: CrisisDetector, text: str
) -> None:
    found = detector.detect(text)
    acted, worried = detector.answer(text, found)
    assert worried
    assert acted.matched and acted.category == "attempt"
