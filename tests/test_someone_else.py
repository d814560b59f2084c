"""Words about another person: whose crisis they tell, and what the line does with them.

Session 18 measured the line on texts writers wrote about other people (`python -m
peerline.service.crisis_others_eval`): of 100 texts telling of another person in danger now,
the session-start line answered 9 as a worried texter and 59 with nothing at all. These are
its kinds of words, in sentences of this file's own.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

from peerline.service.crisis import CrisisDetector
from peerline.service.crisis_detection import (
    NO_MATCH,
    OTHERS_FLAGGED,
    OTHERS_OUT_OF_REACH,
    OTHERS_OUT_OF_REACH_CATEGORY,
    priority_of,
)
from peerline.service.crisis_eval import load
from peerline.service.crisis_others import in_danger_now, others, told_as_past
from peerline.service.crisis_others_eval import ANSWERS as KINDS
from peerline.service.crisis_others_eval import RIGHT, load_items, tally
from peerline.service.crisis_text import normalise


@pytest.fixture(scope="module")
def detector() -> CrisisDetector:
    return CrisisDetector.load()


def test_another_persons_clause_is_rewritten_as_the_writers() -> None:
    split = others("my sister took all her pills and wont answer")
    assert split is not None
    assert split.as_own.startswith("i took all my pills")
    assert split.rest == ""  # "wont answer" names nobody: read with hers
    assert "wont answer" in split.theirs
    split = others("mi hermana se tomo todas sus pastillas")
    assert split is not None and split.as_own == "yo me tome todas mis pastillas"


def test_reported_words_quotes_names_and_a_subject_carried_on() -> None:
    cases = {
        "she told me she is in the garage with the engine on": "i am in the garage",
        "he texted me goodbye": "i texted goodbye",
        "kayla just posted a pic of the bridge": "i just posted a pic of the bridge",
        "mi amigo me dijo que hoy se mata": "me mato",
        "he grabbed a knife and said hed do it": "i said id do it",
    }
    for text, rewritten in cases.items():
        split = others(text)
        assert split is not None and rewritten in split.as_own, (text, split)
    quoted = others("my best friend just texted 'i took all of them im sorry' and wont answer")
    assert quoted is not None and "i took all of them im sorry" in quoted.theirs


def test_the_writers_own_words_stay_theirs() -> None:
    assert others("i want to die") is None  # nobody else named
    split = others("my son is on the overpass im on the phone with him")
    assert split is not None and split.rest == "im on the phone with him"
    # A name is a subject only before a verb; "tonight" is no name.
    split = others("tonight is the night")
    assert split is None
    # Spanish names its subject by the verb: the writer's own verb is the writer's, and so is
    # what another person did to them ("me dejo": left me).
    split = others("mi hermana se fue y ya no aguanto")
    assert split is not None and split.rest == "ya no aguanto"
    assert others("mi novio me dejo y ya no aguanto") is None
    # "esta noche" is a time, not "is".
    assert others("esta noche me tomo todo") is None


def test_danger_out_of_reach_and_a_past_told() -> None:
    assert in_danger_now(normalise("he grabbed a knife and hung up, hes not answering"))
    assert in_danger_now(normalise("mi hijo se despidio y apago el celular"))
    assert not in_danger_now(normalise("she said goodbye before moving to denver"))
    assert not in_danger_now(normalise("he is not answering, probably at work"))
    assert told_as_past("my sister in law attempted in january")
    assert told_as_past("mi novio se quemaba los brazos hace como medio ano")
    assert not told_as_past("my sister took all her pills")


# (text, a flag raised, the writer worried about someone else)
ANSWERS = (
    # Another person in danger now: the worried text, and the flag.
    ("my sister told me she is in the garage with the engine on and wont answer", True, True),
    ("my brother grabbed dads gun and left, he texted me goodbye", True, True),
    ("my best friend just texted 'i took all of them im sorry' and wont answer", True, True),
    ("mi amiga me mando un audio diciendo que ya se tomo todas las pastillas", True, True),
    ("mi hermano dice que hoy se mata, ya tiene la soga", True, True),
    ("my husband left a note saying sorry for everything and his phone is off", True, True),
    ("she took pills before she went up there, she is on the roof and not answering", True, True),
    ("my friend just took a whole bottle of pills", True, True),
    ("mi hermano esta en el puente y me tome todo no contesta", True, True),
    # Another person's risk told as past: the worried text only.
    ("my cousin attempted in january and i dont know how to bring it up", False, True),
    # The writer's own crisis beside another person: the writer's.
    ("my friend took pills and honestly i took some too", True, False),
    ("my sister took all her pills. i took the rest of the bottle", True, False),
    ("my brother killed himself last year and i want to be with him", True, False),
    ("i want to die, my mom would be better off without me", True, False),
    ("mi amigo dice que ya no quiere vivir y yo tampoco", True, False),
    # Everyday words about another person: nothing.
    ("my dad is on the roof fixing the gutters", False, False),
    ("mi mama se mato trabajando toda la semana", False, False),
    ("my roommate is in the garage with the engine running warming up the car", False, False),
)


@pytest.mark.parametrize(("text", "raised", "worried"), ANSWERS)
def test_what_the_line_acts_on(
    detector: CrisisDetector, text: str, raised: bool, worried: bool
) -> None:
    found, said_worried = detector.answer(text, detector.detect(text))
    assert (found.matched, said_worried) == (raised, worried)


def test_someone_out_of_reach_is_raised_in_its_own_category(detector: CrisisDetector) -> None:
    # Words no rewrite reads as a crisis, told of someone gone quiet with a means.
    text = "we were arguing and he grabbed a knife and hung up, hes not answering"
    found, worried = detector.answer(text, detector.detect(text))
    assert worried and found.matched
    if found.phrase == OTHERS_OUT_OF_REACH:
        assert found.category == OTHERS_OUT_OF_REACH_CATEGORY
    else:
        assert found.category in OTHERS_FLAGGED
    assert priority_of(found.category) >= priority_of("intent")
    assert detector.answer("", NO_MATCH) == (NO_MATCH, False)


DEV = Path(__file__).with_name("someone_else_dev.yaml")


def _share(table: Counter[tuple[str, str, str]], label: str, answers: tuple[str, ...]) -> float:
    total = sum(n for (lab, _, _), n in table.items() if lab == label)
    return sum(n for (lab, _, said), n in table.items() if lab == label and said in answers) / total


def test_the_development_texts_about_other_people(detector: CrisisDetector) -> None:
    # Session 18's development writers (400 texts): at the session's start 9 of 100 texts of
    # another person in danger now got the worried text, and 31 raised the flag.
    table, _ = tally(detector, load_items(DEV))
    # 0.58 and 0.75 when written; 0.56 and 0.76 after the reviews' mends (the writer's own
    # quotes, possessions and aftermath, other people's everyday days).
    assert _share(table, "other_now", RIGHT["other_now"]) >= 0.50
    assert _share(table, "other_now", ("own", "theirs+flag")) >= 0.70
    assert _share(table, "other_concern", RIGHT["other_concern"]) >= 0.85  # 0.89
    assert _share(table, "own_and_other", RIGHT["own_and_other"]) >= 0.85  # 0.87
    assert _share(table, "everyday_other", RIGHT["everyday_other"]) >= 0.90  # 0.92


def test_crisis_words_the_detector_finds_stay_the_writers(detector: CrisisDetector) -> None:
    # The rewriting of other people's words reads only what the detector did not find, or a
    # phrase in another person's quoted words: of the development set's 18,009 crisis texts,
    # none it finds is read as someone else's. Those it misses and now reads so (54 when
    # written, 38 after the reviews' mends: "dads shotgun is loaded, hes away til sunday") hear
    # the someone-else text, which names 988 for the texter too, where before they heard
    # nothing.
    found_but_worried, worried = 0, 0
    for example in load(Path(__file__).with_name("crisis_examples.yaml")):
        if not example.label:
            continue
        found = detector.detect(example.text)
        if detector.answer(example.text, found)[1]:
            worried += 1
            found_but_worried += found.matched
    assert found_but_worried == 0
    assert worried <= 60


HELDOUT = Path(__file__).with_name("someone_else_heldout.yaml")
#: The held-out file as its writer wrote it (the lines after this repository's header).
HELDOUT_SHA256 = "2905ee07d4722e27ddc5a42debbaa2068ab9f93aa61d6d86dd7dcabc07f922fb"
#: Its answers by label: (own, theirs+flag, theirs, nothing), after the two reviews' mends
#: (read again, and its everyday errors read after the freeze, so no longer a fresh measure).
#: At the session's start (49de9aa): other_now (32, 2, 7, 59), other_concern (9, 0, 4, 87),
#: own_and_other (71, 0, 1, 28), everyday_other (0, 0, 2, 98); at the freeze 81ff1ec, scored
#: once: (27, 40, 10, 23), (7, 5, 35, 53), (72, 1, 3, 24), (0, 7, 2, 91)
#: (docs/someone_else_heldout_run.txt).
HELDOUT_FROZEN = {
    # Session 20: "my brother took pills" (a bare report). Session 24's model (fitted on the
    # spent sets too): (31, 35, 9, 25) -> (30, 37, 10, 23): one text fewer read as the writer's
    # own, two more with the someone-else text and the flag ("my grandpa said goodbye to
    # everyone at dinner ... went out to the shed with his pistol"), one more with the text
    # alone, two fewer met with nothing.
    "other_now": (30, 37, 10, 23),
    # Session 21: a friend's three past attempts and the worry now ("...3 attempts in the past
    # and shes doing better now but i get anxious") hears the someone-else text. Session 24's
    # model: (11, 2, 31, 56) -> (12, 2, 30, 56), one worried text more read as the writer's own.
    "other_concern": (12, 2, 30, 56),
    "own_and_other": (72, 1, 3, 24),
    "everyday_other": (0, 7, 3, 90),
}


def test_the_held_out_texts_about_other_people(detector: CrisisDetector) -> None:
    lines = HELDOUT.read_text(encoding="utf-8").splitlines(keepends=True)
    body = "".join(line for line in lines if not line.startswith("#"))
    assert hashlib.sha256(body.encode("utf-8")).hexdigest() == HELDOUT_SHA256
    table, _ = tally(detector, load_items(HELDOUT))
    got = {
        label: tuple(sum(table[label, lang, said] for lang in ("en", "es")) for said in KINDS)
        for label in RIGHT
    }
    # A change that moves these says so in docs/crisis.md and sets HELDOUT_FROZEN anew.
    assert got == HELDOUT_FROZEN


# Session 18's review: the writer's own crisis told through other people, each shown taken for
# someone else's before its mend.
WRITERS_OWN_THROUGH_OTHERS = (
    # The writer's own quoted words ("i posted", "my note says", "puse en mi historia").
    'i posted "i took all my pills" on my story. last week was the worst',
    'i just texted my ex "i took all my pills, hope youre happy". we broke up 2 weeks ago',
    'my mom asked and i just said "i took all my pills". she used to be a nurse',
    'i literally texted him "im on the bridge" cuz he left me 3 days ago',
    'puse en mi historia "ya me tome todas las pastillas", desde enero todo esta mal',
    'i posted "goodbye everyone, i took all my pills"',
    'my note says "im sorry mom, i took all of them"',
    'escribi en mi historia "adios a todos, me tome todas las pastillas"',
)


@pytest.mark.parametrize("text", WRITERS_OWN_THROUGH_OTHERS)
def test_the_writers_own_quotes_stay_theirs(detector: CrisisDetector, text: str) -> None:
    found = detector.detect(text)
    assert found.matched
    assert detector.answer(text, found) == (found, False)


# What others will do after the writer, and the writer's things: never another's crisis.
AFTERMATH = (
    "my mom will find out tomorrow when its too late",
    "my sister can have my stuff after tonight",
    "my bf took all my pills away so i bought more and took them",
    "mi hermana se puede quedar con mis cosas despues de hoy",
)


@pytest.mark.parametrize("text", AFTERMATH)
def test_others_after_the_writer_are_no_worried_texter(detector: CrisisDetector, text: str) -> None:
    assert not detector.answer(text, detector.detect(text))[1]


# Everyday days of other people, which their words rewritten as the writer's read as crisis.
EVERYDAY_OF_OTHERS = (
    "she took all her meds today like the doctor said",
    "he is on the bridge team at school",
    "he he he he",
    "my coworker took the whole day off",
    "my dad wrote his will today, hes getting older",
)
# ...and the first review's others, raised again since the second review's mends: a word of
# danger ("all her pills", "whole bottle", a bridge, a goodbye, a rope) now outweighs an everyday
# one beside it, since the same words with "lol" or "this morning" were emergencies. Raised for
# someone else: the safe side, and the cost.
RAISED_THOUGH_EVERYDAY = (
    "my grandma took all her pills this morning",
    "mi abuela se tomo todas sus pastillas de la presion hoy",
    "my mom took the whole bottle of tylenol to work lol",
    "my cousin is at the bridge taking pictures",
    "my daughter wrote a goodbye letter to her old school",
    "he said goodbye and hung up, we broke up",
    "my dad bought a rope to tie the tree today",
)


@pytest.mark.parametrize("text", RAISED_THOUGH_EVERYDAY)
def test_a_word_of_danger_outweighs_an_everyday_one(detector: CrisisDetector, text: str) -> None:
    found, worried = detector.answer(text, detector.detect(text))
    assert found.matched and worried


@pytest.mark.parametrize("text", EVERYDAY_OF_OTHERS)
def test_everyday_days_of_other_people_raise_nothing(detector: CrisisDetector, text: str) -> None:
    assert detector.answer(text, detector.detect(text)) == (NO_MATCH, False)


def test_a_subject_is_read_without_backtracking() -> None:
    # The review's: fillers written both whole and in parts ("and now") made the subject
    # pattern try every split; 22 of them took seconds.
    # (Were it back, this would not finish.)
    assert others("and now " * 40 + "zzz") is None


# The second review's: another person's emergencies beside an everyday word, the writer's
# things or what others will do, each shown raising nothing after the first review's mends.
EMERGENCIES_BESIDE_EVERYDAY_WORDS = (
    "my sister took all her pills this morning and wont wake up",
    "my mom swallowed her whole bottle of blood pressure pills",
    "mi abuela se tomo todas sus pastillas de la manana de golpe",
    "we broke up and he texted me hes gonna jump off the bridge tonight",
    "my roommate took a whole bottle of tylenol lol what do i do",
    "my cousin is camping alone and texted goodbye, hes not answering",
    "my friend overdosed on her allergy pills and is passing out",
    "my friend is at my house with a knife to her wrist right now",
    "my friend took my pills, all of them, and is throwing up",
    "my brother says he can get a gun tonight and end it",
    "my bf od",
    "she od",
)


@pytest.mark.parametrize("text", EMERGENCIES_BESIDE_EVERYDAY_WORDS)
def test_an_emergency_beside_an_everyday_word_raises_the_flag(
    detector: CrisisDetector, text: str
) -> None:
    assert detector.answer(text, detector.detect(text))[0].matched


# The second review's: the writer's own words taken for another person's (a filler or an
# address word as a name, a Spanish subject carried past a full stop, a note quoted).
WRITERS_OWN_NOT_ANOTHERS = (
    "finally wrote the note",
    "girl took the whole bottle tonight",
    "welp sent the last message",
    "mi novio se fue. hoy va a ser el ultimo dia",
    "mi papa se fue. esta noche se termina",
    'my sister will see the text that says "by the time you read this im gone"',
    "mom will read the note that says 'i cant do this anymore, im ending it tonight'",
)


@pytest.mark.parametrize("text", WRITERS_OWN_NOT_ANOTHERS)
def test_the_writers_words_are_not_anothers(detector: CrisisDetector, text: str) -> None:
    assert not detector.answer(text, detector.detect(text))[1]
