"""The crisis detector: figures on the labelled sets, every category in both languages, near misses.

Run ``python -m peerline.service.crisis --evaluate --errors`` to see the figures and every message
scored wrong. ``tests/crisis_examples.yaml`` is the development set (read while writing the
phrases); ``tests/crisis_heldout.yaml``, when there is one, is written by someone who never saw
the phrase lists and is guarded below so that it cannot change silently.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import sys
import tracemalloc
from array import array
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from peerline.flows.catalogue import Catalogue
from peerline.service import crisis_gate, crisis_model, crisis_train
from peerline.service.crisis import (
    ALIASES,
    CATEGORIES,
    DROPPED_BY_GRAMMAR,
    DROPPED_BY_SENSE,
    MODEL_CATEGORY,
    NO_MATCH,
    PACKAGED_FILE,
    CrisisDetector,
    Detection,
    merge_configs,
    normalise,
    priority_of,
    required_strings,
)
from peerline.service.crisis_eval import (
    GENERAL,
    Example,
    as_the_line_reads,
    each_alone,
    load,
    load_bursts,
    run,
    score,
    sha256,
)

EXAMPLES = Path(__file__).with_name("crisis_examples.yaml")
HELDOUT = Path(__file__).with_name("crisis_heldout.yaml")
BURSTS = Path(__file__).with_name("crisis_bursts.yaml")
BURSTS_HELDOUT = Path(__file__).with_name("crisis_bursts_heldout.yaml")
# The held-out split. The first eight were spent: the first (500 messages) because the phrases
# were tuned after reading its failures; the second (600 messages, 2026-12-03, scored once on the
# frozen commit cccdc1f: 200 of 300 crisis messages, 12 false alarms of 300) because it was then
# used once to choose the statistical layer; the third (600 messages, scored once on the frozen
# commit b8adf1a: 239 of 300, 23 false alarms) because session 7 tuned on it; the fourth (600
# messages, scored once on the frozen commit 6352320: 225 of 300, 19 false alarms; verbatim run in
# docs/crisis_heldout_run_set4.txt) and the fifth (600 messages, scored once on the frozen commit
# 69496da: 237 of 300, 23 false alarms; docs/crisis_heldout_run_set5.txt) because session 8 tuned
# on them; the sixth (600 messages, scored once on the frozen commit 970d48c: 239 of 300, 18 false
# alarms; docs/crisis_heldout_run_set6.txt) because session 9 tuned on it; the seventh (600
# messages, scored once on the frozen commit dcbe8f0: 231 of 300, 19 false alarms;
# docs/crisis_heldout_run_set7.txt) because session 10 tuned on it; the eighth (600 messages,
# 2026-12-04, scored once on the frozen commit 50fe215: 230 of 300, 24 false alarms;
# docs/crisis_heldout_run_set8.txt) because session 10 tuned on it again; the ninth (600
# messages, 2026-12-04, scored once on the frozen commit 18c68de: 203 of 300, 29 false alarms;
# docs/crisis_heldout_run_set9.txt) because session 11 chose its threshold rule with it
# (docs/crisis.md); the tenth (600 messages, 2026-12-04, scored once on the frozen commit e485916:
# 267 of 300, 31 false alarms; docs/crisis_heldout_run_set10.txt) because session 11's second
# round trained on it; the eleventh (600 messages, 2026-12-04, scored once on the frozen commit
# a7b24ab: 255 of 300, 36 false alarms; docs/crisis_heldout_run_set11.txt) because session 12
# tuned on it; the twelfth (600 messages, 2026-12-04, scored once on the frozen commit 66d60fe:
# 244 of 300, 23 false alarms; docs/crisis_heldout_run_set12.txt) because session 13 tuned on it;
# the thirteenth (600 messages, 2026-12-04, scored once on the frozen commit 8515a4a: 235 of 300,
# 29 false alarms; docs/crisis_heldout_run_set13.txt) because session 14 tuned on it; the
# fourteenth (600 messages, 2026-12-04, scored once on the frozen commit 2f16f61: 252 of 300, 30
# false alarms; docs/crisis_heldout_run_set14.txt) because session 15 tuned on it; the fifteenth
# (600 messages, 2026-12-04, scored once on the frozen commit 308d956: 255 of 300, 13 false
# alarms; docs/crisis_heldout_run_set15.txt) because session 16 tuned on it; the sixteenth (600
# messages, 2026-12-04, scored once on the frozen commit fdc6bb0: 256 of 300, 23 false alarms;
# docs/crisis_heldout_run_set16.txt) and the seventeenth (600 messages, kept outside the
# repository and scored once on the same freeze: 231 of 300, 18 false alarms;
# docs/crisis_heldout_run_set17_fdc6bb0.txt) because session 17 trained on them. All seventeen
# are development data now (crisis_examples.yaml). The eighteenth (600 messages, 2026-12-05,
# session 17) was written by a fresh writer told to open nothing of the project, kept read-only
# outside the repository (its SHA-256 noted when written, 00:19 UTC), copied in after the
# detector's freeze at e8c4b3b (the full suite passed there) and scored once
# (docs/crisis_heldout_run.txt).
HELDOUT_SHA256: str | None = "e9a4b87f3b36d00a2588345fc490154806a0d33188b0dde5067a2c09d74c587b"
# What the frozen detector (phrases + model, as the line runs it) scores on it, once: (crisis
# messages found, false alarms). A later change may only do better here, and any figure after
# such a change is in-sample.
HELDOUT_FROZEN: tuple[int, int] | None = (261, 21)
# Messages written word for word in both sets (the eighteenth shares 3 with dev, all crisis:
# "i won't be here by morning", "i cut again tonight. first time in 8 months", one Spanish).
HELDOUT_SHARED_WITH_DEV = 3
# The held-out bursts, written beside the held-out set by another writer told to open nothing,
# copied in after the same freeze and scored once (docs/crisis_bursts_heldout_run.txt): the
# SHA-256 of the file here (the writer's file under two comment lines) and (crisis bursts found,
# safe bursts alarmed) as the line reads them. Session 14's, 15's and 16's were spent into the
# development bursts (docs/crisis_bursts_heldout_run_set14.txt: 140 of 150, 33 of 150 on the
# frozen 2f16f61; docs/crisis_bursts_heldout_run_set15.txt: 146 of 150, 80 of 150 on 308d956;
# docs/crisis_bursts_heldout_run_set16.txt: 144 of 150, 80 of 150 on fdc6bb0).
BURSTS_HELDOUT_SHA256: str | None = "0a8ce88bfc52"
BURSTS_HELDOUT_FROZEN: tuple[int, int] | None = (147, 52)
# Session 11 chose the model's threshold on writers it never saw, for recall (0.87 -> 0.75,
# crisis_train.MARGIN): in-sample the development set went to recall 0.912 and precision 0.946
# with 4.8% false alarms (docs/crisis.md, "Session 11"); with four more writers and the tenth
# set (threshold 0.80) 0.880, 0.942 and 5.1%, so the guards are 0.93, 0.86 and 6%. Session 12
# (the gate, seven writers, threshold 0.75): 0.899, 0.945 and 4.8%; session 13 (six writers,
# everyday texts weighed 3 times, threshold 0.80): 0.885, 0.941 and 4.7%.
MIN_DEV_PRECISION = 0.93
MAX_DEV_FALSE_ALARMS = 0.06
# Sessions 7 and 8 brought the guard on the development fit from 0.95 to 0.77 as hard writers'
# messages joined (risk told by a scene, a date or an errand, fitted only in part); session 11's
# threshold, chosen for recall, raised it to 0.86 (docs/crisis.md).
MIN_DEV_RECALL = 0.86
# Generous, so a slow CI machine does not fail it; `python -m benchmarks crisis` measures p99.


@pytest.fixture(scope="module")
def detector() -> CrisisDetector:
    return CrisisDetector.load()


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return load(EXAMPLES)


def test_examples_are_well_formed(examples: list[Example]) -> None:
    crisis = [e for e in examples if e.label]
    near = [e for e in examples if not e.label]
    assert len(examples) >= 450
    assert len(near) >= 0.9 * len(crisis)
    assert sum(e.language == "es" for e in examples) >= len(examples) / 3
    assert {e.split for e in examples} == {"dev"}
    for category in CATEGORIES:
        for language in ("en", "es"):
            assert any(e.category == category and e.language == language for e in crisis)
            assert any(e.category == category and e.language == language for e in near)
    assert {e.category for e in crisis} <= set(CATEGORIES)
    texts = [e.text for e in examples]
    assert len(texts) == len(set(texts)), "duplicate example"


def test_the_held_out_split_is_guarded(examples: list[Example]) -> None:
    if HELDOUT_SHA256 is None:
        assert not HELDOUT.exists(), "a held-out set is here: record its SHA-256 (frozen first?)"
        return
    assert sha256(HELDOUT) == HELDOUT_SHA256, (
        "tests/crisis_heldout.yaml changed: record its new SHA-256 here and say why in "
        "docs/crisis.md (a held-out set that changes silently measures nothing)"
    )
    heldout = load(HELDOUT)
    assert len(heldout) == 600 and {e.split for e in heldout} == {"holdout"}
    dev_texts = {e.text for e in examples}
    # Messages written word for word in both sets (docs/crisis.md gives the figures without
    # them too). No more.
    assert len(dev_texts & {e.text for e in heldout}) <= HELDOUT_SHARED_WITH_DEV


def test_held_out_figures_as_recorded(detector: CrisisDetector) -> None:
    if HELDOUT_FROZEN is None:
        assert HELDOUT_SHA256 is None and not HELDOUT.exists(), "scored: record its figures"
        return
    found, false_alarms = HELDOUT_FROZEN
    s = score((e, d.matched) for e, d in run(detector, load(HELDOUT)))
    print(f"\nheld-out: found {s.tp} of {s.tp + s.fn}, false alarms {s.fp} of {s.fp + s.tn}")
    assert s.tp >= found
    assert s.fp <= false_alarms


def test_held_out_bursts_as_recorded(detector: CrisisDetector) -> None:
    if BURSTS_HELDOUT_FROZEN is None or BURSTS_HELDOUT_SHA256 is None:
        assert BURSTS_HELDOUT_SHA256 is None and not BURSTS_HELDOUT.exists(), "record it"
        return
    assert sha256(BURSTS_HELDOUT).startswith(BURSTS_HELDOUT_SHA256)
    bursts = load_bursts(BURSTS_HELDOUT)
    assert len(bursts) == 300 and sum(b.example.label for b in bursts) == 150
    s = score((b.example, as_the_line_reads(detector, b.texts).matched) for b in bursts)
    found, false_alarms = BURSTS_HELDOUT_FROZEN
    assert s.tp >= found
    assert s.fp <= false_alarms


def test_the_old_held_out_set_is_development_data(examples: list[Example]) -> None:
    old = [e for e in examples if e.note.startswith("old held-out, read during tuning")]
    assert len(old) == 488  # 500, less the 12 written word for word in both sets


def test_the_second_held_out_set_is_development_data(examples: list[Example]) -> None:
    second = [e for e in examples if e.note.startswith("second held-out, read in session 5/6")]
    assert len(second) == 583  # 600, less the 17 written word for word in both sets
    assert sum(e.label for e in second) == 289  # 300 crisis messages, 11 already here


def test_the_third_held_out_set_is_development_data(examples: list[Example]) -> None:
    third = [e for e in examples if e.note.startswith("third held-out, read in session 7")]
    assert len(third) == 588  # 600, less the 12 written word for word in both sets
    assert sum(e.label for e in third) == 293  # 300 crisis messages, 7 already here


def test_the_fourth_held_out_set_is_development_data(examples: list[Example]) -> None:
    fourth = [e for e in examples if e.note.startswith("fourth held-out, read in session 8")]
    assert len(fourth) == 582  # 600, less the 18 written word for word in both sets
    assert sum(e.label for e in fourth) == 287  # 300 crisis messages, 13 already here


@pytest.mark.parametrize(
    "text",
    [
        "seriously considering suicide now",
        "im considerin suicide",
        "theres blood all over the bathroom floor and im getting dizzy, tried to kill myself",
        "my partner would be better off if i just died",
        "my wife would be free of it if i wasnt here",
        "gonna end things, sorry for texting u this",
        "I am wishing every day to die",
        "been planning suicide for weeks",
        "me gustaria estar muerta",
        "mis hijos estarian mejor si me muero",
        "la semana pasada me intente colgar",
        "tia voy a acabar con esto, ya lo he decidido",
        "me voy a morir esta noche",
        "me voy a morir en mi cumpleaños, ya tengo decidido como y donde",
        "im going to die this weekend, ive decided",
        "considerando el suicidio",
        "i tried 2 kms",
        "m gustaria estar muerto",
        "todos starian mejor sin mi",
    ],
)
def test_plain_first_person_wording_is_caught_by_the_phrases(
    detector: CrisisDetector, text: str
) -> None:
    # Session 8's fifth set: plainly worded messages both layers passed; a third-person word
    # before a phrase with its own "i" ("my partner would be ... if i died") no longer drops it.
    assert detector.detect_phrases(text).matched


# Plain wording in a context that rules it out: someone else, a negation, a question about the
# words, reported speech, an idiom, an everyday task or a relationship.
CONTEXT_RULES_OUT = (
    "my friend is considering suicide",
    "i would never try to kill myself",
    "what does considering suicide mean",
    "someone at school said they wanted to kms",
    "mi hijo dice me quiero morir por todo",
    "me voy a morir de risa hoy",
    "quiero terminar con esto ya",
    "going to end things with him tonight",
    "i would like to die peacefully in my sleep at 95",
    "me voy a morir de risa, ya decidi ir a la fiesta",
)


def test_plain_wording_still_respects_its_context(detector: CrisisDetector) -> None:
    caught = [text for text in CONTEXT_RULES_OUT if detector.detect_phrases(text).matched]
    assert caught == []


# Session 9: the kinds the sixth held-out set showed weak, as general patterns in both languages
# (fresh wording here, not the set's sentences): questions whether an amount, a height or a means
# would kill, places told as a scene, intent with a farewell or a decision, plans tied to a date or
# an event, symptoms after something taken, burden as a cost, self-harm slang.
SESSION_9_FAMILIES = (
    ("method", "would jumping off a 7 storey car park kill you straight away"),
    ("method", "is an overdose of tylenol painful"),
    ("method", "what happens if u take like 50 of my sleeping pills"),
    ("method", "how many of my anxiety meds would be too many"),
    ("method", "si me tiro del 10mo piso me muero al instante?"),
    ("method", "cuantas pastillas de dormir serian demasiadas pa alguien como yo"),
    ("method", "desde q altura se muere uno seguro"),
    ("danger_place", "standing on the footbridge watching the cars go under"),
    ("danger_place", "i can hear the train coming and im next to the tracks"),
    ("danger_place", "on the flyover watching the lorries"),
    ("danger_place", "toy en el puente peatonal viendo pasar los camiones"),
    ("danger_place", "wading into the sea with my clothes on"),
    ("danger_place", "escucho el tren que viene, estoy junto a las vias"),
    ("danger_place", "la barandilla es bien bajita y el rio se ve negro desde aqui arriba"),
    ("danger_place", "estoy sentada en el muro de la azotea del piso 20"),
    ("intent", "wont be alive by monday, i decided"),
    ("plan", "im going through with it tonight, sorry"),
    ("intent", "no voy a estar mañana, perdon"),
    ("intent", "hoy es mi ultima noche"),
    ("plan", "after my mums birthday on saturday im done"),
    ("plan", "despues del cumple de mi novia me mato"),
    ("plan", "lo voy a hacer cuando mi marido se vaya al trabajo"),
    ("attempt", "heart racing and i feel dizzy after what i took"),
    ("attempt", "so much blood on the bathroom floor"),
    ("attempt", "desde q me tome todo eso me late rapidisimo el corazon"),
    ("attempt", "hay tanta sangre en la banera"),
    ("burden_hopelessness", "im a drain on my family"),
    ("burden_hopelessness", "they would be fine without me"),
    ("burden_hopelessness", "estarian en paz sin mi"),
    ("burden_hopelessness", "si me muriera mi familia tendria una preocupacion menos"),
    ("self_harm", "sh'd last night"),
    ("self_harm", "relapsed with sh again"),
    ("self_harm", "recai en sh otra vez"),
    ("self_harm", "lo unico q me ayuda es el ardor de la cuchilla"),
    ("active_thoughts", "keep thinking about how i would end my life"),
    ("active_thoughts", "pienso todo el dia en dejar de vivir"),
    # second round: a date picked, a birthday as the day; things given that will not be needed,
    # letters done, a video left for when the children are older
    ("plan", "i chose the day, it will be my bday"),
    ("plan", "ya elegi la fecha, el dia de mi cumple"),
    ("plan", "doing it on my birthday this year"),
    ("plan", "el dia de mi cumpleaños lo hago"),
    ("preparation", "gave my switch to my nephew, i wont need it anymore"),
    ("preparation", "le regale mi bici a mi vecino, ya no la voy a necesitar"),
    ("preparation", "my goodbye letters are all written"),
    ("preparation", "escribi cartas para mis hijos para cuando sean grandes"),
    ("preparation", "made a video for my daughter for when shes older"),
    # third round: hiding the marks, a relapse whatever came before, praying to be taken
    ("self_harm", "wearing hoodies in the heat so nobody sees"),
    ("self_harm", "uso pulseras pa esconder mis cicatrices"),
    ("self_harm", "cut myself again after 6 months clean"),
    ("self_harm", "me volvi a lastimar despues de 2 meses limpio"),
    ("wish_dead", "i pray jesus takes me in my sleep"),
    # fourth round: plain words tied to a day or an occasion; everything prepared; the note done
    ("plan", "going to end my life on the 3rd, its decided"),
    ("plan", "me mato el dia de mi cumple"),
    ("plan", "suicidio en nochevieja, ya lo tengo decidido"),
    ("plan", "pago la renta y despues me mato, asi de simple"),
    ("preparation", "i prepared everything for after im gone"),
    ("preparation", "nota suicida ya esta escrita"),
    ("intent", "to finish my life is all i want"),
    # fifth round: means told by where they lie
    ("means", "the shotgun is next to me on the bed"),
    ("means", "rope is tied to the beam"),
    ("means", "my pockets are full of pills"),
    ("means", "tengo el cuchillo enfrente y lo estoy mirando"),
    ("means", "la escopeta de mi viejo esta en el closet y estoy sola"),
    ("means", "bolsillos llenos de pastillas"),
    # a laugh alone does not make "kms" slang
    ("active_thoughts", "i want to kill myself lol"),
)
# ... and the near misses of the same words it alarmed on: kms as slang, recovered history,
# tourist heights, a date asked for, a trip packed for, a song, a fun jump.
SESSION_9_NEAR_MISSES = (
    "kms this queue is so long lol",
    "if i have to hear one more christmas song i'll kms",
    "my brother says he wants to kms about his exams",
    "it's been 3 years since my attempt and i'm doing really well",
    "at the top of the tower with my parents, gorgeous view",
    "tonight's the night, asking him out at dinner",
    "everything's ready for tomorrow, suitcase packed",
    "this track makes me want to jump off a building in the best way",
    "esta rola me da ganas de tirarme de un puente de lo buena q esta",
    "de adolescente me cortaba pero ahora estoy bien",
    "fuimos a saltar del acantilado con los del curro, brutal",
    "ya tengo todo listo para mañana, la maleta y el pasaporte",
    "si me tomo otra cerveza me muero jaja",
    "la baranda del balcon es bajita, cuidado con el nene",
    "esta es mi ultima noche en madrid, que pena",
    "picked the date for the wedding, june 14th",
    "planning to quit friday, already picked the day to tell my boss",
    "ya elegi la fecha de la boda",
    "gave my old bike to my nephew, i dont need it anymore since i bought a new one",
    "le regale mi ropa vieja a mi prima, ya no me queda, me compre nueva",
    "thank you notes are all done after the wedding",
    "im gonna kms if my mum makes me go to church again lmao",
    "kms lol just spilled coffee all over my laptop",
    "covering my scars from the surgery with a scarf",
    "me pongo base para tapar las marcas del acne",
    "going to end it with him on friday",
    "si me como otro pastel y despues me muero jaja",
    "bleach bottle is open, careful with the kids",
    "stuck on the bridge watching the traffic jam for an hour",
    "the gun case is open on the table, just cleaning it for hunting season",
    "estoy mirando la soga en la tienda para el tendedero, cual es mejor de precio",
)


# Session 10: the kinds the eighth held-out set showed weak, as general patterns in both languages
# (fresh wording here, not the set's sentences), and a Spanish name used in address.
SESSION_10_FAMILIES = (
    ("method", "hanging or pills which one is quicker"),
    ("method", "is cutting or the train less painful"),
    ("method", "would a jump from 8 floors always kill or do some survive"),
    ("method", "how tall does a car park need to be to not survive it"),
    ("method", "que duele menos ahorcarse o tirarse de un puente"),
    ("method", "a que altura tendria que tirarme pa no quedar en silla de ruedas"),
    ("method", "desde el 6to piso uno se muere seguro o no"),
    ("intent", "its happening tonight. love you all x"),
    ("intent", "please dont try to talk me out of it this time"),
    ("intent", "ya lo decidi, que no me busquen, los quiero"),
    ("intent", "no paso de navidad, eso ya lo tengo decidido"),
    ("plan", "flatmates are away all weekend and thats when"),
    ("wish_dead", "tio me quiero morir ya"),
    ("attempt", "amiga me tome todas las pastillas de mi mama"),
)
SESSION_10_NEAR_MISSES = (
    "whats the difference between suicidal ideation and intrusive thoughts, for my psych class",
    "what does ctb mean, saw it on a forum",
    "last message from this number, switching to my work phone",
    "at 17 i tried to end it, im 40 now, grateful every day for my kids",
    "cual es la diferencia entre autolesion y suicidio, es para una tarea",
    "mi ultimo mensaje desde este cel, mañana tengo numero nuevo",
    "a los 15 intente matarme y ahora tengo 38, soy feliz con mi familia",
    "pills or jumping, which is the better song on the album",
    "no llego a fin de mes con este sueldo",
    "mis papas se van el sabado y ese dia hago la fiesta",
    "parents are away this weekend thats when the party is",
    "mi tio se quiere morir desde que perdio el trabajo",
    "mi hijo dice me quiero morir por todo",
)

# Session 13: what the twelfth set showed the phrases missing (written afresh here): a count of a
# medicine with no verb, an engine left running in a shut garage, an opened medicine told barely,
# poison kept in one's room, the day others leave, not getting past a weekend, not waking.
SESSION_13_FAMILIES = (
    ("attempt", "ok its done. 30 tylenol 500s about an hour ago. ears ringing"),
    ("attempt", "2 boxes of advil and my head is spinning"),
    ("means", "trucks been running in the closed garage a while, head hurts"),
    ("means", "the paracetamol box is open"),
    ("means", "encerrada en la cochera con la troca prendida"),
    ("means", "consegui raticida y lo escondi debajo de mi cama"),
    ("plan", "el sabado cuando mis tios se vayan al rancho, ese dia lo hago"),
    ("plan", "ya lo pense bien, no paso de este finde"),
    ("intent", "me bajo de este mundo, ya estuvo"),
    ("intent", "gonna make sure i dont wake up this time"),
    # The review's own sentences: a guard must not reach past its phrase into another clause.
    ("burden_hopelessness", "i dont think it gets better. everyone would be better off without me"),
    ("active_thoughts", "i never had thoughts of killing myself until this week"),
    ("active_thoughts", "no quiero pensamientos de matarme"),
    ("plan", "tonights the night. im gay and my dad said hed rather i was dead"),
    ("intent", "its too late now. gonna make sure i dont wake up"),
    ("preparation", "regale toda mi ropa. ya no me queda nada"),
    ("burden_hopelessness", "mi familia estaria mejor sin mi, sin mis problemas, sin mi drama"),
    ("intent", "me bajo de este mundo, paren todo ya no puedo"),
    ("danger_place", "im standing on the edge. i made my choice"),
    ("plan", "el sabado cuando mis papas se vayan a la boda. ese dia lo hago"),
    # "they" before a phrase that ends in "me" is still the writer's own burden.
    ("burden_hopelessness", "honestly they would be better off without me"),
)
SESSION_13_NEAR_MISSES = (
    "i dont really think my family would be better off without me, i just feel left out lately",
    "no tengo pensamientos de hacerme dano, solo quiero hablar de mi trabajo",
    "i dont have any thoughts of hurting myself, just stressed",
    "no paso de esta semana sin ir al medico, la espalda me esta matando",
    "5 years since my attempt, recovery is real and i volunteer now",
    "tonights the night i come out to my grandparents 🏳️‍🌈",
    "standing on the edge... of a big decision about college",
    "todos estarian mejor sin mi karaoke jaja",
    "40 ibuprofen for the month, bought at the pharmacy. its done, errands finished",
    "me bajo del mundo por hoy, apago el cel y a dormir",
    "my mom takes 7 pills a day, sorry i forgot to text back",
    "the pill bottle is open, grab me 2 for my headache",
    "cuando se vaya mi mama al trabajo esa noche hago la tarea",
    "cars running in the garage, i opened the door",
)


# Session 14: what the thirteenth set showed the phrases missing, and its false alarms (written
# afresh here, not copied from the set): a place told barely (legs over the drop, alone up high, on
# the way to a bridge), a room booked, a promise kept till a date, a settled absence, voices, a
# question asked "for myself", a relapse counter reset, a burden felt now; and quiet for a recovered
# past, someone else's marks or gun, means handed over, a decision's edge, a fear of heights.
SESSION_14_FAMILIES = (
    ("danger_place", "legs hanging off the edge of the overpass. cars below"),
    ("danger_place", "nobodys up here but me, top level of the garage"),
    ("danger_place", "heading to the bridge now"),
    ("danger_place", "drove out alone to the cliffs"),
    ("danger_place", "vine sola al puente, no hay nadie"),
    ("danger_place", "me subi a la azotea por la escalera de incendios"),
    ("plan", "rented a motel room for saturday. by myself"),
    ("plan", "the plan is the overpass on the highway"),
    ("plan", "im finishing the year for my mom and then thats it"),
    ("plan", "ya revise a que hora pasa el ultimo tren"),
    ("plan", "ya lo ensaye mil veces en mi cabeza"),
    ("intent", "i wont be here for thanksgiving, made my peace"),
    ("intent", "ya tome la decision de irme"),
    ("wish_dead", "so done being a person"),
    ("wish_dead", "want to disappear off the face of the earth and never come back"),
    ("active_thoughts", "i think about how id do it every single day"),
    ("active_thoughts", "the voice keeps telling me to do it"),
    ("active_thoughts", "hoy mas que nunca pienso en ponerle punto final"),
    ("active_thoughts", "las voces me dicen que me tire"),
    ("method", "what happens if you mix xanax and wine. asking for myself"),
    ("method", "pensando en abrir el gas"),
    ("attempt", "me tome todas y creo que ya estan haciendo efecto, mucho sueno"),
    ("means", "tengo las pastillas aqui, ya las conte"),
    ("self_harm", "back to day 0. was at 60 days clean"),
    ("self_harm", "punched the wall till my knuckles bled"),
    ("self_harm", "llevaba tres meses limpia y ayer recai"),
    ("self_harm", "me pego cachetadas cuando me equivoco"),
    ("burden_hopelessness", "everyone would go on fine without me"),
    ("burden_hopelessness", "me siento una carga para mi familia"),
    ("burden_hopelessness", "ya no creo que haya solucion para mi"),
    ("burden_hopelessness", "si un dia no llego nadie se va a dar cuenta"),
)
# The review's (session 14): a near miss must not reach into another clause's crisis.
SESSION_14_BESIDE_NEAR_MISSES = (
    ("danger_place", "im scared of heights but im on the bridge now and im going to jump"),
    ("plan", "i banged my head on the desk over homework. i want to kill myself tonight"),
    ("preparation", "im going to do it tonight. tell my mom im sorry"),
    ("plan", "antes era feliz. hoy no estoy bien y me voy a matar esta noche"),
    ("active_thoughts", "me hice un corte trabajando. hoy me quiero matar"),
    ("active_thoughts", "thinking of ending things with this bottle of pills"),
    ("danger_place", "tengo vertigo. estoy en el borde del puente y voy a saltar"),
    ("burden_hopelessness", "me siento una carga para todos, mi mama me cuida y ya no puedo"),
)
SESSION_14_NEAR_MISSES = (
    "my legs dangling off the dock while we fish, best sunday",
    "heading to the bridge now to meet my friends for the run",
    "booked a hotel room for friday for our anniversary",
    "wont be around for christmas, working a double in the er",
    "so done being an adult today lol",
    "thinking about how id do it differently next time, the presentation i mean",
    "back to day 0 on smoking again ugh",
    "back to day 1 on duolingo, lost my 200 day streak",
    "me siento una carga pidiendole a mi mama que me lleve al doctor",
    "tengo las pastillas de mi abuela, no las conte todavia",
    "cuando empieza a hacer efecto la sertralina? llevo dos semanas",
    "ya calcule a que hora pasa el ultimo tren para volver a casa",
    "attempted 8 years ago and today im a counselor, thank you for this line",
    "encontre cortes en los brazos de mi hijo, que hago",
    "gave my guns to my brother to hold for a while, therapists idea",
    "on the verge of a decision about grad school",
    "im scared of heights, the balcony on the 9th floor freaks me out",
    "no tengo ningun plan de hacerme dano, solo estoy triste",
    "despues de mi intento hoy tengo dos hijas y soy feliz",
    "mi amigo me dijo que piensa en acabar con todo, como lo ayudo",
    # the review's everyday senses
    "ya esta haciendo efecto la pastilla para dormir, tengo sueno",
    "las conte y me faltan 3 pastillas de la tiroides",
    "booked a hotel room for saturday, so excited",
    "ya se a que hora pasa el ultimo tren, nos vemos en la estacion",
    "estoy harta de este trabajo, ya decidi irme.",
    "i wont be here for christmas, staying with grandma",
    "part of me was disappointed when the pregnancy test came back negative",
    "ugh day one again of learning spanish",
    "how much melatonin can i take? asking for myself",
)


@pytest.mark.parametrize(
    ("category", "text"),
    SESSION_9_FAMILIES
    + SESSION_10_FAMILIES
    + SESSION_13_FAMILIES
    + SESSION_14_FAMILIES
    + SESSION_14_BESIDE_NEAR_MISSES,
)
def test_session_families_are_caught_by_the_phrases(
    detector: CrisisDetector, category: str, text: str
) -> None:
    assert detector.detect_phrases(text).category == category


@pytest.mark.parametrize(
    "near_misses",
    [SESSION_9_NEAR_MISSES, SESSION_10_NEAR_MISSES, SESSION_13_NEAR_MISSES, SESSION_14_NEAR_MISSES],
)
def test_session_near_misses_stay_quiet(
    detector: CrisisDetector, near_misses: tuple[str, ...]
) -> None:
    caught = [text for text in near_misses if detector.detect_phrases(text).matched]
    assert caught == []


# Session 14: one thought split across texts, none of which says it alone (written afresh);
# the review's: split mid-sentence.
SPLIT_THOUGHTS = (
    ("i cant", "do this anymore"),
    ("i just want", "to die"),
    # Session 16's model hears "i made up my mind" alone as intent (p 0.80): two words here.
    ("ok so", "i decided", "its happening this weekend"),
    ("no se como decirlo", "ya no quiero", "seguir viviendo"),
)


@pytest.mark.parametrize("texts", SPLIT_THOUGHTS)
def test_a_burst_is_read_together_when_its_last_text_says_nothing(
    detector: CrisisDetector, texts: tuple[str, ...]
) -> None:
    assert not any(detector.detect(text).matched for text in texts)
    assert detector.detect_burst(texts).matched
    assert detector.detect_burst(texts[-1:]) == detector.detect(texts[-1])
    assert detector.detect_burst([]) == NO_MATCH


def test_a_burst_read_by_the_phrases_only(detector: CrisisDetector) -> None:
    # While a raised crisis is recent the line reads a burst without the model (texter.burst).
    split = ("i swallowed", "everything in the cabinet", "room is spinning")
    assert detector.detect_burst(split, model=False).category == "attempt"
    # Bland texts after a raised crisis: session 14's model read these together as means (the
    # review's case); without the model they say nothing.
    bland = ("sorry", "its just a lot rn")
    assert not detector.detect_burst(bland, model=False).matched


def test_short_texts_put_together_are_not_more_words_for_the_model(
    detector: CrisisDetector,
) -> None:
    # A chat of numbered test texts (the soak test's) read as counts and times, p 0.95.
    assert not detector.detect_burst(["t0-22", "t0-23", "t0-24"]).matched
    assert not detector.detect_burst(["ok", "ok", "k 20"]).matched


def test_a_text_that_says_it_alone_is_what_the_burst_says(detector: CrisisDetector) -> None:
    words = "just took 20 tylenol"
    assert detector.detect_burst(["hi", "are you there", words]) == detector.detect(words)


def test_bursts_read_together_find_more_for_few_more_alarms(detector: CrisisDetector) -> None:
    bursts = load_bursts(BURSTS)
    # Session 14's 400 and its 300 held-out bursts, spent in session 15; session 15's 300 held-out
    # bursts, spent in session 16; session 16's, spent in session 17.
    assert len(bursts) == 1300 and sum(b.example.label for b in bursts) == 650
    alone = score((b.example, each_alone(detector, b.texts).matched) for b in bursts)
    together = score((b.example, as_the_line_reads(detector, b.texts).matched) for b in bursts)
    # Session 14, with BURST_TEXTS = 3: 168 -> 187 of 200 crisis bursts, 71 -> 72 of 200 safe.
    # Session 15 (its model, and session 14's held-out bursts spent here): 306 -> 332 of 350,
    # 104 -> 110 of 350. Session 16 (its model; session 15's held-out bursts spent here, whose
    # safe bursts mostly open with a risky text a later one corrects): 444 -> 479 of 500,
    # 176 -> 185 of 500. Session 17 (its model; session 16's held-out bursts spent here, which
    # read together found 6 more for 5 more alarms when scored): 584 -> 622 of 650, 253 -> 271
    # of 650.
    assert together.tp >= alone.tp + 30
    assert together.fp <= alone.fp + 20


def test_one_scan_gives_the_phrase_hit_and_the_drop(
    detector: CrisisDetector, examples: list[Example]
) -> None:
    # The trainer reads both from one scan a message.
    pairs = [detector.phrases_and_drop(e.text) for e in examples[::10]]
    expected = [
        (detector.detect_phrases(e.text), detector.dropped_by(e.text)) for e in examples[::10]
    ]
    assert pairs == expected
    assert any(reason is not None for _, reason in pairs) and any(d.matched for d, _ in pairs)


def test_a_phrase_without_its_context_leaves_the_model_free(detector: CrisisDetector) -> None:
    # "antes de irme" counts only with a farewell; without one the phrase says nothing either way,
    # so the model is still asked (it used to be silenced as if the context had ruled it out).
    text = "solo queria q alguien supiera antes de irme"
    assert not detector.detect_phrases(text).matched
    assert not detector.dropped(text)
    # a negation still silences it
    assert detector.dropped("i would never try to kill myself")


def test_the_fifth_held_out_set_is_development_data(examples: list[Example]) -> None:
    fifth = [e for e in examples if e.note.startswith("fifth held-out, read in session 8")]
    assert len(fifth) == 583  # 600, less the 17 written word for word in both sets
    assert sum(e.label for e in fifth) == 287  # 300 crisis messages, 13 already here


def test_the_sixth_held_out_set_is_development_data(examples: list[Example]) -> None:
    sixth = [e for e in examples if e.note.startswith("sixth held-out, read in session 9")]
    assert len(sixth) == 581  # 600, less the 19 written word for word in both sets
    assert sum(e.label for e in sixth) == 287  # 300 crisis messages, 13 already here


def test_the_seventh_held_out_set_is_development_data(examples: list[Example]) -> None:
    seventh = [e for e in examples if e.note.startswith("seventh held-out, read in session 10")]
    assert len(seventh) == 574  # 600, less the 26 written word for word in both sets
    assert sum(e.label for e in seventh) == 279  # 300 crisis messages, 21 already here


def test_the_eighth_held_out_set_is_development_data(examples: list[Example]) -> None:
    eighth = [e for e in examples if e.note.startswith("eighth held-out, read in session 10")]
    assert len(eighth) == 587  # 600, less the 13 written word for word in both sets
    assert sum(e.label for e in eighth) == 288  # 300 crisis messages, 12 already here


def test_the_ninth_and_tenth_held_out_sets_and_session_11_writers_are_development_data(
    examples: list[Example],
) -> None:
    ninth = [e for e in examples if e.note.startswith("ninth held-out, read in session 11")]
    assert len(ninth) == 596  # 600, less the 4 written word for word in both sets
    assert sum(e.label for e in ninth) == 297
    writers = Counter(crisis_train.writer_of(e) for e in examples)
    session_11 = {
        w: n
        for w, n in writers.items()
        if w and w.startswith("dev writer ") and w[11:] in set("abcdefghijk")
    }
    assert sorted(session_11) == [f"dev writer {c}" for c in "abcdefghijk"]
    assert sum(session_11.values()) == 6523  # 6,600 written, 77 already here word for word
    assert writers["ninth held-out"] == 596 and writers["second writer"] == 1225
    tenth = [e for e in examples if e.note.startswith("tenth held-out, read in session 11")]
    assert len(tenth) == 590  # 600, less the 10 written word for word in both sets
    assert sum(e.label for e in tenth) == 292


# Session 12's seven writers (l to r): 4,200 written, 58 already in the file word for word.
SESSION_12_WRITTEN = 4142
# The twelfth set's short messages that development held word for word when it was spent.
TWELFTH_SHARED_WITH_DEV = 11
# Session 13's six writers (s to x): 3,600 written, 32 already in the file word for word.
SESSION_13_WRITTEN = 3568
# The thirteenth set's short messages that development held word for word when it was spent.
THIRTEENTH_SHARED_WITH_DEV = 5
# The fourteenth set's short messages that development held word for word when it was spent.
FOURTEENTH_SHARED_WITH_DEV = 19
# The fifteenth set's short messages that development held word for word when it was spent.
FIFTEENTH_SHARED_WITH_DEV = 6
# Session 15's three writers (ac to ae): 1,800 written, 14 already in the file word for word.
SESSION_15_WRITTEN = 1786
# Session 14's four writers (y, z, aa, ab): 2,400 written, 15 already in the file word for word.
SESSION_14_WRITTEN = 2385
# Session 16's four writers (af to ai): 2,400 written, 53 already in the file word for word
# (47 of them short everyday texts of writer ai: "hi", "ok", "gracias").
SESSION_16_WRITTEN = 2347
# The sixteenth and seventeenth sets' short messages development held word for word when spent.
SIXTEENTH_SHARED_WITH_DEV = 10
SEVENTEENTH_SHARED_WITH_DEV = 8
# Session 17's two writers (ak, al): 1,200 written, 2 already in the file word for word.
SESSION_17_WRITTEN = 1198


def test_the_eleventh_set_and_session_12_writers_are_development_data(
    examples: list[Example],
) -> None:
    writers = Counter(crisis_train.writer_of(e) for e in examples)
    assert writers["eleventh held-out"] == 597  # 600, less the 3 written word for word in both
    session_12 = {
        w: n
        for w, n in writers.items()
        if w and w.startswith("dev writer") and w[11:] in set("lmnopqr")
    }
    assert sorted(session_12) == [f"dev writer {c}" for c in "lmnopqr"]
    assert sum(session_12.values()) == SESSION_12_WRITTEN


def test_the_twelfth_set_and_session_13_writers_are_development_data(
    examples: list[Example],
) -> None:
    writers = Counter(crisis_train.writer_of(e) for e in examples)
    assert writers["twelfth held-out"] == 600 - TWELFTH_SHARED_WITH_DEV
    session_13 = {
        w: n
        for w, n in writers.items()
        if w and w.startswith("dev writer") and w[11:] in set("stuvwx")
    }
    assert sorted(session_13) == [f"dev writer {c}" for c in "stuvwx"]
    assert sum(session_13.values()) == SESSION_13_WRITTEN


def test_the_thirteenth_set_and_session_14_writers_are_development_data(
    examples: list[Example],
) -> None:
    writers = Counter(crisis_train.writer_of(e) for e in examples)
    assert writers["thirteenth held-out"] == 600 - THIRTEENTH_SHARED_WITH_DEV
    session_14 = {
        w: n
        for w, n in writers.items()
        if w in {"dev writer y", "dev writer z", "dev writer aa", "dev writer ab"}
    }
    assert len(session_14) == 4
    assert sum(session_14.values()) == SESSION_14_WRITTEN


def test_the_fourteenth_set_and_session_15_writers_are_development_data(
    examples: list[Example],
) -> None:
    writers = Counter(crisis_train.writer_of(e) for e in examples)
    assert writers["fourteenth held-out"] == 600 - FOURTEENTH_SHARED_WITH_DEV
    session_15 = {
        w: n for w, n in writers.items() if w in {"dev writer ac", "dev writer ad", "dev writer ae"}
    }
    assert len(session_15) == 3
    assert sum(session_15.values()) == SESSION_15_WRITTEN


def test_the_fifteenth_set_and_session_16_writers_are_development_data(
    examples: list[Example],
) -> None:
    writers = Counter(crisis_train.writer_of(e) for e in examples)
    assert writers["fifteenth held-out"] == 600 - FIFTEENTH_SHARED_WITH_DEV
    session_16 = {
        w: n
        for w, n in writers.items()
        if w in {"dev writer af", "dev writer ag", "dev writer ah", "dev writer ai"}
    }
    assert len(session_16) == 4
    assert sum(session_16.values()) == SESSION_16_WRITTEN


def test_the_sixteenth_and_seventeenth_sets_and_session_17_writers_are_development_data(
    examples: list[Example],
) -> None:
    writers = Counter(crisis_train.writer_of(e) for e in examples)
    assert writers["sixteenth held-out"] == 600 - SIXTEENTH_SHARED_WITH_DEV
    assert writers["seventeenth held-out"] == 600 - SEVENTEENTH_SHARED_WITH_DEV
    session_17 = {w: n for w, n in writers.items() if w in {"dev writer ak", "dev writer al"}}
    assert len(session_17) == 2
    assert sum(session_17.values()) == SESSION_17_WRITTEN


def test_all_labelled_messages_together(examples: list[Example]) -> None:
    everything = examples + (load(HELDOUT) if HELDOUT.exists() else [])
    crisis = [e for e in everything if e.label]
    assert len(everything) >= 800
    assert sum(e.language == "es" for e in everything) >= len(everything) / 3
    assert len(everything) - len(crisis) >= len(crisis)  # as many near misses as crisis messages
    for category in CATEGORIES:
        assert sum(e.category == category for e in crisis) >= 40, category


def test_development_figures(detector: CrisisDetector, examples: list[Example]) -> None:
    results = run(detector, examples)
    for language in ("en", "es", None):
        group = [(e, d.matched) for e, d in results if language in (None, e.language)]
        s = score(group)
        assert s.precision >= MIN_DEV_PRECISION, language
        assert s.recall >= MIN_DEV_RECALL, language
        assert s.false_alarm_rate <= MAX_DEV_FALSE_ALARMS, language


# ------------------------------------------------------------------------- focused cases


def hits(detector: CrisisDetector, text: str) -> bool:
    return detector.detect(text).matched


@pytest.mark.parametrize(
    "text",
    [
        "I would never kill myself",
        "I'm not going to hurt myself",
        "im not gonna kill myself",
        "I do not want to die",
        "i'm not suicidal",
        "I won't ever take my own life",
        "no quiero morir",
        "no me quiero morir",
        "no me voy a suicidar",
        "nunca me haría daño",
        "jamás pensaría en matarme",
    ],
)
def test_local_negation_suppresses(detector: CrisisDetector, text: str) -> None:
    assert not hits(detector, text)


def test_a_cleft_ends_the_negated_clause(detector: CrisisDetector, tmp_path: Path) -> None:
    # Session 23: "what i didnt say is ..." tells what follows; the negator denies the saying.
    assert detector.detect("what i didnt say is i have a razor in my hand right now").matched
    assert detector.detect("the thing i never said was i want to kill myself").matched
    assert not detector.detect("i didnt say i want to die, i said im tired").matched
    assert not detector.detect("im not saying i want to die").matched
    extra = tmp_path / "extra.yaml"
    extra.write_text("negation:\n  clefts:\n    en: ['say is that']\n", encoding="utf-8")
    with pytest.raises(ValueError, match="two words each"):
        CrisisDetector.load(str(extra), model=False)


@pytest.mark.parametrize(
    "text",
    [
        "I can't go on",
        "I don't want to live anymore",
        "i dont wanna be alive",
        "no quiero vivir",
        "ya no quiero vivir",
        "no puedo seguir así",
        "nobody would miss me",
        "there's no reason to live",
        # a negation that belongs to another clause or verb does not reach the phrase
        "I'm not okay, I want to die",
        "no aguanto más me quiero morir",
        "I can't stop thinking about killing myself",
        "I don't know why but I want to die",
    ],
)
def test_negation_inside_phrase_or_elsewhere_still_matches(
    detector: CrisisDetector, text: str
) -> None:
    assert hits(detector, text)


@pytest.mark.parametrize(
    "text",
    [
        "quiero suicidarme",
        "quiero suicídarme",
        "QUIERO SUICIDARME",
        "quiero hacerme dano",
        "quiero hacerme daño",
        "ya no quiero vivir más",
        "adiós para siempre",
        "adios para siempre",
    ],
)
def test_accents_and_case_do_not_matter(detector: CrisisDetector, text: str) -> None:
    assert hits(detector, text)


def test_normalise() -> None:
    assert normalise("I don't wanna live anymore... ¡Adiós!") == (
        "i dont want to live anymore | adios |"
    )
    assert normalise("I’m gonna kms") == "im going to kill myself"
    assert normalise("ran 5 kms") == "ran 5 kms"
    assert normalise("Self-harm") == "self harm"
    assert normalise("i do not want 2 die") == "i dont want to die"
    assert normalise("byeeee\u00a0everyoneee 😂") == "bye everyone | lol |"
    assert normalise("cant\t\u2003 anymore \x1c") == "cant anymore"


def test_whitespace_is_what_a_pattern_reads_as_whitespace() -> None:
    # `basic` joins words split by `str.split` (faster than substituting `\s+`): the same
    # characters for every code point.
    for point in range(sys.maxunicode + 1):
        if 0xD800 <= point < 0xE000:
            continue  # surrogates are no text
        char = chr(point)
        assert (char.split() == []) == bool(re.fullmatch(r"\s", char)), hex(point)


@pytest.mark.parametrize(
    "text",
    [
        "the skills workshop was great",
        "skill myself up",
        "a suicidemouse video",
        "killing myselfie",
        "I want to diet",
        "pesticide killed them",
        "overdosage table",
        "ran 5 kms",
        "the station is 3 kms away",
    ],
)
def test_word_boundaries(detector: CrisisDetector, text: str) -> None:
    # Word boundaries are the phrases' concern: the letter-piece model may read "skill myself"
    # near "kill myself" (it is scored on whole messages, docs/crisis.md).
    assert not detector.detect_phrases(text).matched


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("quiero suicidarme", "active_thoughts"),
        ("me quiero morir", "wish_dead"),
        ("estoy pensando en quitarme la vida", "active_thoughts"),
        ("me estoy cortando otra vez", "self_harm"),
        ("me tomé todas las pastillas", "attempt"),
        ("me voy a tirar del puente", "method"),
        ("me voy a suicidar esta noche", "plan"),
        # Session 11: 'sin autolesionarme' is a near miss, the wish and the relapse are not.
        ("quiero autolesionarme", "self_harm"),
        ("no he podido dejar de autolesionarme", "self_harm"),
    ],
)
def test_spanish(detector: CrisisDetector, text: str, category: str) -> None:
    detection = detector.detect(text)
    assert detection == Detection(True, "es", detection.phrase, category)
    assert detection.phrase


@pytest.mark.parametrize(
    "text",
    [
        "me muero de risa",
        "me quiero morir de la vergüenza",
        "me corté el pelo",
        "este trabajo me está matando",
        "mi mamá me va a matar",
        "no puedo seguir la conversación",
    ],
)
def test_spanish_near_misses(detector: CrisisDetector, text: str) -> None:
    assert not hits(detector, text)


@pytest.mark.parametrize(
    "text",
    [
        "this homework is killing me",
        "I could die of embarrassment",
        "dying to see that movie",
        "killing it at work",
        "I killed myself laughing",
        "I cut myself shaving",
        "I can't go on Friday",
        "my friend says they want to die",
        "she is suicidal",
        "Is this a suicide hotline?",
        "I want to end this chat",
    ],
)
def test_english_near_misses(detector: CrisisDetector, text: str) -> None:
    assert not hits(detector, text)


@pytest.mark.parametrize(
    "text", ["thank you i want to die", "he told me to kill myself", "KMS", "i wanna kms fr"]
)
def test_first_person_after_other_people_still_matches(detector: CrisisDetector, text: str) -> None:
    assert hits(detector, text)


def test_most_urgent_category_wins(detector: CrisisDetector) -> None:
    detection = detector.detect("I cut myself and then I took all my pills")
    assert detection.category == "attempt"
    assert detector.detect("i want to kill myself tonight").category == "plan"
    assert detector.detect("i want to kill myself").category == "active_thoughts"
    # the most urgent hit wins wherever it stands in the message
    assert detector.detect("i want to die. im on the bridge").category == "danger_place"


def test_no_match_and_empty(detector: CrisisDetector) -> None:
    assert detector.detect("") == Detection(False, None, None, None)
    assert detector.detect("YES") == Detection(False, None, None, None)
    assert detector.detect("😭" * 800).matched is False


def test_packaged_phrases_are_package_data() -> None:
    packaged = resources.files("peerline.service").joinpath(PACKAGED_FILE)
    data = yaml.safe_load(packaged.read_text("utf-8"))
    assert set(data["phrases"]) >= {"en", "es"}
    for by_category in data["phrases"].values():
        assert set(by_category) == set(CATEGORIES)


def test_extra_file_is_merged(tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "macros:\n"
        "  PLACE: [the quarry, the old mill]\n"
        "negation:\n"
        "  negators:\n"
        "    en: [hardly]\n"
        "near_misses:\n"
        "  en: ['yeet myself in (?:minecraft|the game)']\n"
        "phrases:\n"
        "  en:\n"
        "    suicide: ['yeet myself', 'I\u2019m going to vanish from this earth']\n"
        "    imminent: ['walk(?:ing)? into {PLACE}']\n"
        "  fr:\n"
        "    suicide: ['je veux mourir']\n",
        encoding="utf-8",
    )
    # Phrases only: the statistical layer would read "yeet myself" as a crisis on its own.
    base = CrisisDetector.load(model=False)
    merged = CrisisDetector.load(str(extra), model=False)
    assert merged.phrase_count == base.phrase_count + 4

    assert not base.detect("I want to yeet myself").matched
    # the old category names still work, as their new equivalents
    assert merged.detect("I want to yeet myself") == Detection(
        True, "en", "yeet myself", "active_thoughts"
    )
    assert merged.detect("im going to vanish from this earth").matched
    assert merged.detect("walking into the old mill").category == "plan"
    assert merged.detect("Je veux mourir").language == "fr"
    # the coordinator's negator and near miss apply, and the packaged lists still work
    assert not merged.detect("I would hardly yeet myself").matched
    assert not merged.detect("I'll yeet myself in minecraft").matched
    assert merged.detect("quiero suicidarme").matched
    assert not merged.detect("I would never kill myself").matched


def test_a_phrase_hit_stands_only_where_the_model_confirms_it(tmp_path: Path) -> None:
    detector = CrisisDetector.load()
    model = detector.model
    assert model is not None and 0 < model.gate < model.threshold
    joke = "boludo me quiero morir, me equivoqué de grupo y mandé el audio a la familia 😂"
    assert detector.detect_phrases(joke).category == "wish_dead"  # the words are there
    assert model.probability(joke) < model.gate
    assert detector.detect(joke) == NO_MATCH
    # Too few words to ask the model: the phrase stands.
    assert detector.detect("me quiero morir") == Detection(
        True, "es", "me quiero morir", "wish_dead"
    )
    # A phrase the model confirms stands, under its own category.
    assert detector.detect("me quiero morir, ya no aguanto mas esta vida").category == "wish_dead"
    # A coordinator's phrases are sure: the line's own misses stand whatever the model says.
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "phrases:\n  es:\n    preparation: ['mande el audio a la familia']\n", encoding="utf-8"
    )
    line = CrisisDetector.load(str(extra))
    assert line.detect(joke) == Detection(True, "es", "mande el audio a la familia", "preparation")
    # ...and so is a packaged entry marked sure.
    config = yaml.safe_load(
        resources.files("peerline.service").joinpath(PACKAGED_FILE).read_text("utf-8")
    )
    config["phrases"]["es"]["wish_dead"].append({"phrase": "me equivoque de grupo", "sure": True})
    marked = CrisisDetector(config, model)
    assert marked.detect(joke) == Detection(True, "es", "me equivoque de grupo", "wish_dead")


# Session 23: explicit words of the writer's own, said among a question about the line, an age
# or a role, that the model put under its gate ("is that normal", "my therapist", "mom of two"
# weigh towards a worried or curious texter in its training). Across every labelled text the
# gate never spared an everyday text matched by these entries, while it dropped 16 crisis
# texts they matched ("i have a plan to kill myself on friday", "i still cut"): they are sure.
EXPLICIT_UNDER_THE_GATE = [
    (
        "my counselor is away til monday so she gave me this number. i have a plan to kill "
        "myself on saturday",
        "plan",
    ),
    (
        "mom of two teens here. im holding the knife and crying in the bathroom, is this a "
        "real person",
        "means",
    ),
    (
        "my therapist said to text here. the suicidal thoughts are back since my dad passed "
        "in march",
        "active_thoughts",
    ),
    (
        "my brain keeps drifting back to ending it, even at my kids soccer game, is that normal",
        "active_thoughts",
    ),
    (
        "tengo 40 años y todavia me corto cuando discuto con mi esposo, me da pena contarlo",
        "self_harm",
    ),
    ("how do i even start. i went back to cutting last week after 3 years clean", "self_harm"),
]


@pytest.mark.parametrize(("text", "category"), EXPLICIT_UNDER_THE_GATE)
def test_explicit_words_stand_under_the_models_gate(
    detector: CrisisDetector, text: str, category: str
) -> None:
    model = detector.model
    assert model is not None
    assert model.probability(text) < model.gate  # the model alone would drop the phrase
    found = detector.detect(text)
    assert found.matched and found.category == category


@pytest.mark.parametrize(
    "text",
    [
        # Found by a tester calling the line (session 25): the commonest first words to a
        # crisis line were dropped by the model's gate, which read the request for a person as
        # an everyday question (p 0.14-0.24 with it, 0.45-0.98 without).
        "I need to talk to someone because I want to die",
        "can i talk to someone, i want to kill myself",
        "I want to talk to a person, I want to die",
        "I need to talk to someone I might hurt myself",
        "need someone to talk to i want to die",
        "im scared i might kill myself. can someone talk to me",
        "hi. can i talk to someone. i want to die",
        "necesito hablar con alguien porque me quiero morir",
        "hola, necesito hablar con alguien, ya no quiero vivir",
        "alguien me puede ayudar? me quiero morir",
        # Session 26: a plea for help, asked ("me pueden ayudar") or said where a clause starts
        # ("ayuda", "i need help"), the fifty-sixth set's misses in sentences of this file's own.
        "me puedes ayudar? no le veo salida a nada",
        "me pueden ayudar, me corte hace un rato",
        "ayuda, me corte hace un rato pero ya paro",
        "me puedes ayudar, me corte en la tarde",
        # ...and a talk asked for with nobody named ("can we talk", "necesito hablar"), or help
        # asked of the line ("me ayudan?"): the 57th set's misses, in this file's sentences.
        "can we talk? i keep thinking about killing myself",
        "i need to talk. i want to die and i dont know why",
        "podemos hablar? ya no quiero vivir, estoy cansada",
    ],
)
def test_asking_for_a_person_does_not_hide_the_crisis_it_comes_with(
    detector: CrisisDetector, text: str
) -> None:
    model = detector.model
    assert model is not None
    assert model.probability(text) < model.gate  # the whole message reads as everyday
    assert detector.detect(text).matched


@pytest.mark.parametrize(
    "text",
    [
        "can i talk to someone about my exam stress, i want to die lol",
        "hi can i talk to someone? my mom is driving me crazy, i swear i'll kill her lol",
        "necesito hablar con alguien, me muero de sueño jaja",
        "hola hay alguien? me quiero morir de la vergüenza, le mande un audio a mi jefe",
        "can someone talk to me, im so bored i could die",
        "i need someone to talk to, i keep thinking about my dad who killed himself last year",
        "is there someone i can talk to about volunteering on the suicide line",
        "alguien me puede ayudar? se me murio el celular y no tengo cargador",
        "me pueden ayudar? me corte el pelo yo sola y quedo horrible",
        "can you help me, this homework is killing me lol",
        "necesito ayuda con mi tarea, me muero de sueño",
        "me puedes ayudar? no le veo salida al laberinto del juego jaja",
        "can i text the line from abroad? im going to spain next week and might die of boredom lol",
        "podemos hablar? me muero de sueño con este horario jaja",
        "i need to talk. this homework is killing me lol",
        "are you there? my phone is dying, ill text later",
        # A request at the end of a story stays part of what the model reads.
        "at the overpass there was a guy on the railing and i called 911. they got him down."
        " i'm really shaken, can i talk to someone",
    ],
)
def test_asking_for_a_person_raises_no_alarm_of_its_own(
    detector: CrisisDetector, text: str
) -> None:
    assert not detector.detect(text).matched


def test_a_sure_entry_still_yields_to_grammar_and_everyday_senses(detector: CrisisDetector) -> None:
    # Sure is no licence against context: the same words negated, or in an everyday sense, are
    # not the writer's crisis.
    assert not detector.detect("not feeling suicidal at all, just stressed about exams").matched
    assert not detector.detect("i still cut my own hair since the salon closed lol").matched
    assert detector.answer("my son went back to cutting and i dont know what to do", NO_MATCH)[1]


def test_the_model_overrules_a_dropped_phrase_only_when_far_surer() -> None:
    detector = CrisisDetector.load()
    model = detector.model
    assert model is not None and model.threshold < model.overrule < 1
    # A knife in the kitchen's words, held for an hour: the context dropped the phrase, the
    # model is sure past its own bar.
    knife = "kitchen knife on my lap. the big one. been holding it like an hour"
    assert detector.dropped(knife) and not detector.detect_phrases(knife).matched
    assert model.probability(knife) >= model.overrule
    assert detector.detect(knife).phrase == MODEL_CATEGORY
    # A negation or someone else keeps its word even where the model is past that bar: grammar
    # is asked before an everyday sense, so a negated idiom stays negated.
    negated = "im not gonna kill myself with the pills"
    for text in (negated, "I do not want to die", "im not bleeding out lol"):
        assert detector.dropped_by(text) == DROPPED_BY_GRAMMAR, text
        assert not detector.detect(text).matched, text
    assert model.probability(negated) >= model.overrule


def test_merge_configs_appends_lists_and_replaces_values() -> None:
    base = {"negation": {"window": 4, "negators": {"en": ["not"]}}, "phrases": {"en": {}}}
    extra = {"negation": {"window": 2, "negators": {"en": ["hardly"], "es": ["no"]}}}
    assert merge_configs(base, extra) == {
        "negation": {"window": 2, "negators": {"en": ["not", "hardly"], "es": ["no"]}},
        "phrases": {"en": {}},
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("phrases:\n  en:\n    sadness: ['i feel sad']\n", "unknown category"),
        ("phrases:\n  en:\n    suicide: ['kill (myself']\n", "bad pattern"),
        ("phrases:\n  en:\n    suicide: ['{NOPE} myself']\n", "unknown macro"),
        ("negation:\n  negators:\n    es: [no]\n", "quoted"),
        ("phrase:\n  en: {}\n", "unknown keys"),
        ("- just a list\n", "mapping"),
        ("phrases:\n  en:\n    plan: [{phrase: 'x', sure: 'yes'}]\n", "sure: true"),
    ],
)
def test_bad_extra_file_is_refused(tmp_path: Path, content: str, message: str) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        CrisisDetector.load(str(extra))


# ---------------------------------------------------------------- categories and their context

BY_CATEGORY = [
    # (category, language, text): written as people text, two or more per category and language
    ("attempt", "en", "just took 30 tylenol"),
    ("attempt", "en", "took 12 of my 800mg ibuprofen an hour ago"),
    ("attempt", "en", "i drank bleach"),
    ("attempt", "es", "me tome 20 pastillas de ibuprofeno"),
    ("attempt", "es", "acabo de tomar veneno"),
    ("danger_place", "en", "im on the bridge"),
    ("danger_place", "en", "on my way to the train tracks"),
    ("danger_place", "es", "estoy en la azotea mirando para abajo"),
    ("danger_place", "es", "voy camino al puente"),
    ("means", "en", "i have a gun in my hand"),
    ("means", "en", "got 60 pills in front of me"),
    ("means", "es", "tengo la pistola en la mano"),
    ("means", "es", "tengo suficientes pastillas"),
    ("preparation", "en", "been saving up my pills"),
    ("preparation", "en", "googled how much tylenol is lethal"),
    ("preparation", "en", "giving away my stuff, wont need it after im gone"),
    ("preparation", "es", "ya escribi las cartas para mi familia"),
    ("preparation", "es", "le regale mi perro a mi vecina para cuando ya no este"),
    ("plan", "en", "i have a plan"),
    ("plan", "en", "im doing it friday when my roommate leaves"),
    ("plan", "es", "ya tengo todo planeado"),
    ("plan", "es", "lo hago el viernes cuando se vayan"),
    ("intent", "en", "im going to kill myself"),
    ("intent", "en", "made up my mind, im ending my life"),
    ("intent", "es", "me voy a matar"),
    ("intent", "es", "voy a acabar con mi vida"),
    ("method", "en", "thinking of hanging myself"),
    ("method", "en", "i could just jump in front of a train"),
    ("method", "es", "pienso en ahorcarme"),
    ("method", "es", "quiero pegarme un tiro"),
    ("active_thoughts", "en", "i think about killing myself every day"),
    ("active_thoughts", "en", "suicidal thoughts again"),
    ("active_thoughts", "es", "pienso en matarme"),
    ("active_thoughts", "es", "tengo pensamientos suicidas"),
    ("past_attempt", "en", "i tried to kill myself last year"),
    ("past_attempt", "en", "survived an attempt last month"),
    ("past_attempt", "es", "intente suicidarme el año pasado"),
    ("past_attempt", "es", "sobreviví a un intento de suicidio"),
    ("self_harm", "en", "cutting again"),
    ("self_harm", "en", "i burned myself with a lighter"),
    ("self_harm", "es", "me corte otra vez"),
    ("self_harm", "es", "recai en las autolesiones"),
    ("wish_dead", "en", "i wish i was dead"),
    ("wish_dead", "en", "i hope i dont wake up tomorrow"),
    ("wish_dead", "es", "ojala me muera"),
    ("wish_dead", "es", "quiero dormir para siempre"),
    ("burden_hopelessness", "en", "im a burden to my family"),
    ("burden_hopelessness", "en", "theres no way out"),
    ("burden_hopelessness", "es", "soy una carga para todos"),
    ("burden_hopelessness", "es", "no hay salida"),
]


def test_the_table_covers_every_category_in_both_languages() -> None:
    covered = {(category, language) for category, language, _ in BY_CATEGORY}
    assert covered == {(c, lang) for c in CATEGORIES for lang in ("en", "es")}


@pytest.mark.parametrize(("category", "language", "text"), BY_CATEGORY)
def test_every_category_in_both_languages(
    detector: CrisisDetector, category: str, language: str, text: str
) -> None:
    detection = detector.detect(text)
    assert (detection.matched, detection.language, detection.category) == (
        True,
        language,
        category,
    )
    assert detection.priority == priority_of(category) > 0


@pytest.mark.parametrize(
    "text",
    [
        # the everyday senses the issue names
        "bought a rope to tie down the tent",
        "walked across the bridge to the market",
        "my laptop is dead",
        "me muero de sueño",
        "gave my old clothes to charity",
        # and their like, in each category
        "took 2 ibuprofen for my cramps",
        "took an 800mg ibuprofen for my back",
        "can i take tylenol with my antidepressants",
        "took 20 mins to get here lol",
        "me tome un ibuprofeno para el dolor de cabeza",
        "im on the bridge stuck in traffic 😤",
        "fixing the roof with my dad today",
        "estoy en el puente pero hay mucho trafico",
        "vamos a la azotea a tomar el sol",
        "i have a gun license and go to the range",
        "tengo un cuchillo nuevo para cocinar",
        "looked up how much ibuprofen i can take for a toothache",
        "said goodbye to my coworkers, last day at the job!",
        "compre una cuerda para tender la ropa",
        "regale ropa vieja a la iglesia",
        "i have a plan for the weekend",
        "tengo un plan para el finde",
        "im gonna end it with my boyfriend",
        "voy a terminar con mi novio",
        "drowning in homework",
        "me ahogo en trabajo",
        "my brother attempted last year and im scared for him",
        "ya intente hablar con mi mama",
        "cut my finger chopping onions",
        "me corte el dedo con un papel",
        "i want to sleep all weekend",
        "se murio mi laptop",
        "the wifi here is hopeless lol",
        "no hay salida en esta calle",
    ],
)
def test_near_misses_of_every_category(detector: CrisisDetector, text: str) -> None:
    assert detector.detect(text) == Detection(False)


def test_priority_follows_the_categories() -> None:
    ranks = [priority_of(category) for category in CATEGORIES]
    assert ranks == sorted(ranks, reverse=True) and len(set(ranks)) == len(ranks)
    assert priority_of("attempt") == max(ranks)
    assert min(ranks) == 1
    assert priority_of(None) == 0
    assert priority_of("supporter_alert") == 1  # a category it does not know: a crisis still
    for old, new in ALIASES.items():
        assert priority_of(old) == priority_of(new)
    assert Detection(False).priority == 0
    assert Detection(True, "en", "x", "attempt").priority == priority_of("attempt")


def test_context_decides_with_and_unless(tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "phrases:\n"
        "  en:\n"
        "    preparation:\n"
        "      - {phrase: 'sold my drums', with: 'goodbye|gone', unless: 'upgrade'}\n",
        encoding="utf-8",
    )
    merged = CrisisDetector.load(str(extra))
    assert not merged.detect("sold my drums").matched
    assert merged.detect("sold my drums. goodbye").category == "preparation"
    assert not merged.detect("sold my drums to upgrade, goodbye old friend").matched
    bad = tmp_path / "bad.yaml"
    bad.write_text("phrases:\n  en:\n    preparation:\n      - {with: 'x'}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="mappings"):
        CrisisDetector.load(str(bad))


def test_two_as_a_count_and_as_to() -> None:
    assert normalise("i want 2 die") == "i want to die"
    assert normalise("took 2 boxes of benadryl") == "took 2 boxes of benadryl"
    assert normalise("2 hrs ago") == "2 hrs ago"


def test_the_gate_never_hides_a_phrase(detector: CrisisDetector, examples: list[Example]) -> None:
    # The gate runs only the phrases whose needed strings a message holds: it must never skip
    # one that would have matched.
    # Every tenth message (the suite's slowest test: each text is tried against all 1,400
    # patterns; the held-out set and the short sets too): the gate is the same function on every
    # message, and 6,000 texts exercise its strings (all 57,297 crisis texts when session 23
    # sped the suite up: none hidden).
    phrases = detector._phrases
    short = sorted(HELDOUT.parent.glob("crisis_short_*.yaml"))
    extra = [e for path in [HELDOUT, *short] if path.exists() for e in load(path)]
    for example in [*examples[::10], *extra]:
        norm = normalise(example.text)
        candidates = detector._gate.candidates(norm)
        hits = {i for i, phrase in enumerate(phrases) if phrase.regex.search(norm)}
        assert hits <= candidates, example.text


def test_near_misses_gated_match_as_the_whole_list(
    detector: CrisisDetector, examples: list[Example]
) -> None:
    # Near misses are searched as the alternation of only the patterns whose needed strings a
    # message holds (`crisis_gate.GatedAlternation`): the same matches as the whole list.
    later = sorted(HELDOUT.parent.glob("crisis_heldout[23]*.yaml"))
    texts = [e.text for e in examples[::4]] + [e.text for p in later for e in load(p)]
    checked = merged = 0
    for text in texts:
        norm = normalise(text)
        for gated in detector._near_misses.values():
            whole = [m.span() for m in gated.regex.finditer(norm)]
            assert [m.span() for m in gated.finditer(norm)] == whole, text
            checked += bool(whole)
            merged += bool(whole) and len(gated._gate.candidates(norm)) > 1
    # The lists match often enough to have been tried (537 of 16,325), and as the merge of
    # two patterns or more (`GatedAlternation._merged`) on 317.
    assert checked > 400 and merged > 100, (checked, merged)


def test_the_gate_files_strings_under_word_pairs(detector: CrisisDetector) -> None:
    # Common first words ("me", "i", "no") would send every message through thousands of
    # strings; a string of two words or more is filed under both.
    gate = detector._gate
    assert len(gate.by_pair) > len(gate.by_word)
    assert max(len(flat) // 2 for flat in gate.by_word.values()) < 400  # string, index, ...
    # Pairs as common as the words ("no one", "me voy": 340 strings each under a pair) are
    # filed under three words when the string holds three.
    assert ("no", "one", "wou") in gate.by_triple and ("me", "voy", "a") in gate.by_triple
    assert max(len(flat) // 2 for flat in gate.by_pair.values()) < 50


def test_the_gate_looks_up_loose_strings_by_their_start(
    detector: CrisisDetector, examples: list[Example]
) -> None:
    # Strings not filed under a word are looked up by their first two characters: the same
    # phrases as trying every one of them on every message.
    gate = detector._gate
    assert gate.loose and sum(map(len, gate.loose_by_start.values())) == len(gate.loose)
    for example in examples[::3]:
        norm = normalise(example.text)
        plain = {index for string, index in gate.loose if string in norm}
        assert plain <= gate.candidates(norm), example.text
    assert not {index for string, index in gate.loose if string in "hi"}


def test_packed_category_weights_name_the_category_the_columns_name(
    examples: list[Example],
) -> None:
    # Session 19: the worker adds up all twelve categories at once from packed integer
    # weights (a third of the time on a long message); a lead rounding could move is worked
    # out column by column, so the category named never changes.
    exact, packed = crisis_model.load(), crisis_model.load()
    assert exact is not None and packed is not None
    packed.spend_memory_on_speed()
    assert packed == exact  # the same model: packing is no field of it
    # Session 23: a word's rows are added up once and kept, the terms seen more than once
    # brought to their own weight: the same categories.
    # Every fourth message (all 105,327 of the labelled files when written: the same categories),
    # and words too long to be kept (read afresh each time, `_packed_rows`).
    long_words = [
        Example("supercalifragilisticexpialidocious pills tonight i am done", True, "en", "plan"),
        Example("i tookallmypillsandwashedthemdownwithvodka an hour ago " * 3, True, "en", "plan"),
    ]
    cleared = 0
    for example in [*examples[::4], *long_words]:
        norm = normalise(example.text)
        counts, occurrences = exact._terms(norm)
        if not counts:
            continue
        squares = exact._sums(counts, occurrences)[1]
        named = packed._category_of(counts, squares, norm)
        assert named == exact._category_of(counts, squares, norm), example.text
        cleared += packed._clear_lead(norm, counts, math.sqrt(squares)) is not None
    assert cleared > 0.99 * len(examples[::4])  # the columns only for a near tie
    assert any(
        len(word) > crisis_model.CACHED_WORD_LETTERS for e in long_words for word in e.text.split()
    )
    # A tie the quanta cannot settle: two categories with the same weights score the same,
    # and the packed sums leave it to the columns (which name the first).
    twin = crisis_model.Model(
        {"w:a": 0, "w:b": 1},
        array("d", [1.0, 1.0]),
        array("d", [0.0, 0.0]),
        0.0,
        0.5,
        ("one", "two"),
        (0.0, 0.0),
        (array("h", [5, -3]), array("h", [5, -3])),
    )
    twin.spend_memory_on_speed()
    assert twin._terms("a b") == (Counter({0: 1, 1: 1}), 2)
    assert twin._clear_lead("a b", Counter({0: 1, 1: 1}), math.sqrt(2.0)) is None
    assert twin._category_of(Counter({0: 1, 1: 1}), 2.0, "a b") == "one"


def test_the_models_one_pass_verdict_is_its_two_questions(examples: list[Example]) -> None:
    model = crisis_model.load()
    assert model is not None
    alarms = 0
    for example in examples[::3]:  # one function of the words: 14,000 texts try it enough
        norm = normalise(example.text)
        alarm = model.alarms_on_norm(norm)
        expected = (alarm, model.category_of_norm(norm) if alarm else None)
        assert model.verdict_of_norm(norm) == expected, example.text
        alarms += alarm
    assert alarms > 100


def _reference_probability(model: crisis_model.Model, text: str) -> float:
    """The model's arithmetic written out plainly: one loop over the message's features."""
    squares = dot = 0.0
    for feature, count in Counter(crisis_model.features(normalise(text))).items():
        row = model.index.get(feature)
        if row is None:
            continue
        value = model.idf[row] if count == 1 else (1.0 + math.log(count)) * model.idf[row]
        squares += value * value
        dot += value * model.weight[row]
    z = model.bias + (dot / math.sqrt(squares) if squares else 0.0)
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def test_the_models_fast_path_gives_the_very_same_floats(examples: list[Example]) -> None:
    # The hot path reads precomputed products and adds them up in C; the sums must be the very
    # doubles the plain loop gives, so the alarms and the figures do not move by a bit.
    model = crisis_model.load()
    assert model is not None
    heldout = load(HELDOUT) if HELDOUT.exists() else []
    texts = [e.text for e in examples[::7]] + [e.text for e in heldout[::5]]
    texts += ["", "hi", "na na na na na na", "banana " * 40, "a | b | ab ba ab"]
    repeated = 0
    for text in texts:
        assert model.probability(text) == _reference_probability(model, text), text
        counts = Counter(crisis_model.features(normalise(text)))
        repeated += any(n > 1 and f in model.index for f, n in counts.items())
    assert repeated > len(texts) / 2  # the path for terms seen more than once is exercised
    # The path taken where Python's `sum` compensates for rounding (3.12 on) gives them too.
    plain = crisis_model._SUM_IS_A_LOOP
    try:
        crisis_model._SUM_IS_A_LOOP = False
        for text in texts[::10]:
            assert model.probability(text) == _reference_probability(model, text), text
    finally:
        crisis_model._SUM_IS_A_LOOP = plain


def test_the_models_word_cache_stays_small() -> None:
    # Each cached word holds its letter pieces (about 2 kB): a web worker or job process lives
    # for weeks and meets every typo, so the cache must stay bounded well under the memory goal.
    maxsize = crisis_model._word_features.cache_info().maxsize
    assert maxsize is not None and maxsize <= 8192
    # The model's own cache of each word's rows (about 200 bytes a word) is bounded too.
    model = crisis_model.load()
    assert model is not None
    assert model._word_rows.cache_info().maxsize == crisis_model.WORD_ROWS_CACHED <= 8192
    # Session 19's review: a made-up word of 1,600 letters holds some 1,300 rows (12 kB): long
    # words are read each time, never kept, in the worker's larger cache too.
    model.spend_memory_on_speed()
    assert model._word_rows.cache_info().maxsize == crisis_model.WORKER_WORD_ROWS_CACHED <= 8192
    model.probability("abcdefghijklmnopqrstuvwxyz" * 60 + " and " + "zyxwvutsrqponmlkjihgfedcba")
    assert model._word_rows.cache_info().currsize == 1  # "and"


def test_the_shipped_model_is_compact_in_memory() -> None:
    # A JSON number per weight made a float object each: 9.3 MB held by every web worker and
    # job, 17 MB at the peak of the parse. Now the weights are C arrays and the terms one string.
    tracemalloc.start()
    try:
        model = crisis_model.load()
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert model is not None
    assert isinstance(model.idf, array) and model.idf.typecode == "d"
    assert all(isinstance(c, array) and c.typecode == "h" for c in model.category_cents)
    assert len(model.category_cents) == len(model.categories) == len(CATEGORIES)
    assert held < 6_000_000 and peak < 10_000_000, (held, peak)
    packaged = resources.files("peerline.service").joinpath(crisis_model.MODEL_FILE)
    assert len(packaged.read_bytes()) < 1_000_000


def test_the_packaged_file_compiles_whole_and_a_lazy_detector_answers_the_same(
    detector: CrisisDetector, examples: list[Example]
) -> None:
    # The line's detector compiles a phrase the first time a message needs it; here every
    # pattern of the packaged file is compiled (a bad one would raise), and both answer alike.
    packaged = resources.files("peerline.service").joinpath(PACKAGED_FILE)
    config = yaml.safe_load(packaged.read_text("utf-8"))
    checked = CrisisDetector(config, detector.model, check=True)
    lazy = CrisisDetector.load()
    compiled = [p.regex for p in lazy._phrases if p.regex._compiled is not None]
    assert compiled == []  # nothing compiled before a message asks
    for example in examples[::10]:
        assert lazy.detect(example.text) == checked.detect(example.text), example.text
    tried = sum(p.regex._compiled is not None for p in lazy._phrases)
    assert 0 < tried < len(lazy._phrases)


def test_a_coordinators_file_is_checked_whole_when_loaded(tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text("phrases:\n  en:\n    plan:\n      - 'tonight (at|by'\n", encoding="utf-8")
    with pytest.raises(ValueError, match="bad pattern"):
        CrisisDetector.load(str(extra), model=False)


def test_every_phrase_body_compiles_bare(detector: CrisisDetector) -> None:
    # The detector builds its gate without compiling each body a second time (it compiled it
    # inside word boundaries): the same requirements as the checked way, for every phrase.
    bodies = [phrase.body for phrase in detector._phrases]
    assert len(bodies) == detector.phrase_count > 1000
    for body in bodies:
        re.compile(body)
        assert required_strings(body, checked=True) == required_strings(body)
    # An unbalanced body that compiles inside the wrapper is still refused a gate, not misread.
    assert required_strings("kill myself)|(die", checked=True) is None


def test_required_strings() -> None:
    assert required_strings("(?<!tried to )kill(?:ing)? myself") == (
        frozenset({"kill myself", "killing myself"}),
        True,
    )
    # the rarer words win over common ones: "bridge", "roof", not "im"
    assert required_strings("(?:im|i am) (?:\\w+ )?(?:on|at) the (?:bridge|roof)") == (
        frozenset({"on the bridge", "at the bridge", "on the roof", "at the roof"}),
        True,
    )
    assert required_strings("(?:on|at) (?:\\w+ )?(?:bridge|roof)") == (
        frozenset({"bridge", "roof"}),
        True,
    )
    assert required_strings("\\w+") is None
    assert required_strings("[a-z]{2,} pills?") == (frozenset({" pill", " pills"}), False)
    assert required_strings("(?P<n>cut)(?:s|ting)? (?<!a )deep") == (
        frozenset({"cut deep", "cuts deep", "cutting deep"}),
        True,
    )
    assert required_strings("unbalanced (") is None  # Python refuses it, so does the gate


def test_the_gate_reads_patterns_through_public_api_only() -> None:
    source = Path(crisis_gate.__file__).read_text(encoding="utf-8")
    assert "re._" not in source and "sre_" not in source


def test_the_statistical_layer_is_packaged_and_scores() -> None:
    model = crisis_model.load()
    assert model is not None and 0.5 <= model.threshold < 1.0
    assert model.probability("i want to kill myself") > model.probability("what time is group")
    assert " ki" in crisis_model.features(normalise("kill"))
    assert "|" not in "".join(crisis_model.features("hi | there"))
    # Used beside the phrases: chosen on the second held-out set (docs/crisis.md).
    assert CrisisDetector.load().model is not None
    assert CrisisDetector.load(model=False).model is None
    assert "w:kill" in crisis_model.features(normalise("i kill"))
    assert "b:i_kill" in crisis_model.features(normalise("i kill | myself"))
    assert "b:kill_myself" not in crisis_model.features(normalise("i kill | myself"))


def test_the_shipped_arithmetic_matches_scikit_learn(examples: list[Example]) -> None:
    sample = examples[::25]
    norms = [normalise(e.text) for e in sample]
    vectoriser, regression = crisis_train.fit(norms, [e.label for e in sample])
    crisis = [(n, e.category) for n, e in zip(norms, sample, strict=True) if e.label]
    categories = crisis_train.fit_categories(
        vectoriser, [n for n, _ in crisis], [c for _, c in crisis]
    )
    fitted = crisis_model.from_json(
        crisis_train.export(vectoriser, regression, 0.5, categories, gate=0.1, overrule=0.9)
    )
    # The shipped format gives back the very doubles the trainer rounded to, gate and bar too.
    model = crisis_model.loads(crisis_model.dumps(fitted))
    assert model == fitted and (model.gate, model.overrule) == (0.1, 0.9)
    # A file from before session 12 has neither: every phrase hit stands, no model overrules.
    data = json.loads(gzip.decompress(crisis_model.dumps(fitted)))
    del data["gate"], data["overrule"]
    older = crisis_model.loads(json.dumps(data).encode())
    assert (older.gate, older.overrule) == (0.0, 1.0)
    expected = regression.predict_proba(vectoriser.transform(norms))[:, 1]
    named = categories.predict(vectoriser.transform(norms))
    agree = 0
    for example, probability, category in zip(sample, expected, named, strict=True):
        assert abs(model.probability(example.text) - probability) < 1e-3, example.text
        agree += model.category(example.text) == category
    # The shipped category weights leave out the near-zero ones and keep two decimals.
    assert agree >= 0.97 * len(sample)


def test_everyday_texts_weigh_more_in_the_fit(examples: list[Example]) -> None:
    everyday = [e for e in examples if crisis_train.is_everyday(e)]
    assert len(everyday) > 1_000
    assert {crisis_train.weight_of(e) for e in everyday} == {crisis_train.EVERYDAY_WEIGHT}
    others = [e for e in examples if not crisis_train.is_everyday(e)]
    assert all(e.label or e.category != GENERAL for e in others)
    assert {crisis_train.weight_of(e) for e in others} == {1.0}
    # Weighted, the fit puts the everyday texts it learnt from further from an alarm.
    sample = examples[::20]
    norms = [normalise(e.text) for e in sample]
    labels = [e.label for e in sample]
    plain = crisis_train.fit(norms, labels)
    weighted = crisis_train.fit(norms, labels, [crisis_train.weight_of(e) for e in sample])
    at = [i for i, e in enumerate(sample) if crisis_train.is_everyday(e)]
    texts = [norms[i] for i in at]

    def mean(fitted: tuple[Any, Any]) -> float:
        vectoriser, regression = fitted
        return float(regression.predict_proba(vectoriser.transform(texts))[:, 1].mean())

    assert mean(weighted) < mean(plain) - 0.01


def test_a_model_alarm_names_a_real_category(examples: list[Example]) -> None:
    detector = CrisisDetector.load(model=True)
    assert detector.model is not None
    # Every third message (the suite's slowest crisis test read all 41,000 three times): the
    # category regression is one function of the words, and 14,000 messages try it enough.
    only_model = [
        e
        for e in examples[::3]
        if detector.model.alarms(e.text)
        and not detector.detect_phrases(e.text).matched
        and detector.detect(e.text).matched
    ]
    assert only_model  # the layer does add something (docs/crisis.md says what and at what cost)
    named = [detector.detect(e.text) for e in only_model]
    assert all(d.matched and d.phrase == MODEL_CATEGORY for d in named)
    assert all(d.category in CATEGORIES and d.priority >= 1 for d in named)
    agree = sum(d.category == e.category for d, e in zip(named, only_model, strict=True))
    assert agree >= 0.8 * len(only_model)
    assert not CrisisDetector.load(model=False).detect(only_model[0].text).matched
    # A model without the category regression still flags, as `model`, ranking lowest.
    model = detector.model
    bare = crisis_model.Model(model.index, model.idf, model.weight, model.bias, model.threshold)
    detection = CrisisDetector.load(model=False)
    detection.model = bare
    assert detection.detect(only_model[0].text) == Detection(
        True, None, MODEL_CATEGORY, MODEL_CATEGORY
    )
    assert priority_of(MODEL_CATEGORY) == 1


def test_every_category_has_words_for_alerts_in_both_languages() -> None:
    catalogue = Catalogue.load()
    for category in (*CATEGORIES, MODEL_CATEGORY):
        for language in ("en", "es"):
            assert catalogue.has(language, f"crisis_kind_{category}"), (category, language)
            words = catalogue.render(language, f"crisis_kind_{category}")
            assert words and "_" not in words


# Wording families added in the second pass (development rounds 14 to 23), one of each kind per
# category and language, and near misses that share their words.
SECOND_PASS = [
    ("en", "attempt", "the pills are already in my system"),
    ("es", "attempt", "me tome 2000mg de quetiapina"),
    ("en", "danger_place", "im outside the railing on the bridge"),
    ("es", "danger_place", "ya llegue a la azotea"),
    ("en", "means", "the rope is in my backpack"),
    ("es", "means", "ya saque la navaja"),
    ("en", "preparation", "thank you for trying to help me. goodbye"),
    ("es", "preparation", "cuando lean esto ya no voy a estar"),
    ("en", "plan", "i know the exact bridge im going to"),
    ("es", "plan", "ya tengo el lugar y la hora"),
    ("en", "intent", "im going to do it and nobody can talk me out of it"),
    ("es", "intent", "nadie me va a detener"),
    ("en", "method", "maybe ill od on my meds"),
    ("es", "method", "podria salirme de la carretera con el carro"),
    ("en", "active_thoughts", "cant get the idea of dying out of my head"),
    ("es", "active_thoughts", "mi cabeza me dice que me mate"),
    ("en", "past_attempt", "they had to pump my stomach last time"),
    ("es", "past_attempt", "la ultima vez me encontraron y desperte en terapia intensiva"),
    ("en", "self_harm", "i burned my arm with a hot spoon on purpose"),
    ("es", "self_harm", "sigo cortandome los brazos"),
    ("en", "wish_dead", "i dont wanna be here anymre"),
    ("es", "wish_dead", "ojala pudiera no existir"),
    ("en", "burden_hopelessness", "my family would be better off w/o me"),
    ("es", "burden_hopelessness", "solo le causo problemas a mi familia"),
]
SECOND_PASS_NEAR_MISSES = [
    "the rope is in my car for towing",
    "thank you for trying to help me with my resume",
    "i know where and when the meeting is",
    "they found me in time for dinner lol i was hiding",
    "woke up in the hospital after my surgery, all went well",
    "goodbye everyone, see you monday!",
    "i wish i was dead asleep right now lol so tired",
    "im gonna do it tonight when everyones asleep, binge the whole season",
    "la cuerda esta en mi carro para remolcar",
    "adios a todos, nos vemos el lunes!",
    "me despedi de mi mama en la central de autobuses, ya la extrano",
    "antes me cortaba pero llevo 3 anos limpia",
]


def test_one_typo_from_a_key_word_reads_as_the_word() -> None:
    assert normalise("i dont wanna be here anymre") == "i dont want to be here anymore"
    assert normalise("me siento suisida") == "me siento suicida"
    # never a word the phrase lists spell out, nor a plural
    assert normalise("me voy a suicidar") == "me voy a suicidar"
    assert normalise("everyones asleep") == "everyones asleep"


# Session 6 families (written after the second held-out set became development data): each is
# checked here on fresh wording, not on the sentence that prompted it.
THIRD_PASS = [
    ("en", "attempt", "my arm is bleeding so much and i cant stop it"),
    ("es", "attempt", "sigo sangrando mucho del brazo"),
    ("en", "danger_place", "keep stepping past the yellow line at the station"),
    ("es", "danger_place", "ya estoy encima del tanque de agua"),
    ("en", "means", "sitting in my car with a loaded pistol"),
    ("es", "means", "el revolver ya esta cargado"),
    ("en", "preparation", "ordered new razor blades and hid them under my bed"),
    ("es", "preparation", "escribi unas cartas para mis hijos"),
    ("en", "plan", "im going to drive my car off the bridge"),
    ("es", "plan", "ya escogi el lugar, las vias"),
    ("en", "intent", "im checking out for good"),
    ("es", "intent", "esta noche me mato"),
    ("en", "method", "whats the easiest way to die"),
    ("es", "method", "bastaria con todas las pastillas de mi mama?"),
    ("en", "active_thoughts", "the thoughts of not being alive are back"),
    ("es", "active_thoughts", "otra vez los pensamientos de no estar aqui"),
    ("en", "past_attempt", "ive tried twice before"),
    ("es", "past_attempt", "lo he intentado dos veces y sigo aqui"),
    ("en", "self_harm", "i bang my head against the wall when i get like this"),
    ("es", "self_harm", "me golpeo contra la pared cuando me pongo mal"),
    ("en", "wish_dead", "honestly hoping my bus crashes"),
    ("es", "wish_dead", "me da igual morir"),
    ("en", "burden_hopelessness", "nobody would even notice if i disappeared"),
    ("es", "burden_hopelessness", "perdi toda la esperanza"),
]
THIRD_PASS_NEAR_MISSES = [
    "my nose is bleeding a lot lol",
    "sangrando mucho de la nariz",
    "stepped past the yellow line to grab my kids hat on the platform",
    "sitting with my dad at the gun range",
    "bought razor blades for shaving",
    "make sure someone takes care of my dog while im on vacation",
    "gave my old bike to my cousin",
    "passwords for the wifi for my brother",
    "whats the easiest way to get to the airport",
    "ive tried twice before to quit smoking",
    "checking out of the hotel tomorrow",
    "me da igual si vamos al cine o no",
    "hoy me mato estudiando",
    "third attempt at my driving test tomorrow",
    "mi tercer intento del examen de manejo",
    "this is my last text to you, ur rude and im blocking u",
    "our train got stuck on the tracks again",
    "my therapist asked if i had thoughts of suicide and i said no",
    # everyday chat: the statistical layer keeps quiet under four words and on ordinary talk
    "whats up",
    "de nada",
    "stop it please",
    "is anyone there",
    "and then what happened after",
]


# Session 7 rules (after the third held-out set and the second writer's development messages
# showed scenes, questions, dates and preparations without a farewell word), checked on fresh
# wording; near misses for games, jokes after a laugh, questions about words and everyday scenes.
# English, then Spanish, for each category (a mapping, so every category has both).
FOURTH_PASS_BY_CATEGORY = {
    "attempt": (
        "shot all of my insulin about an hour ago",
        "me puse toda la insulina que me quedaba",
    ),
    "danger_place": (
        "waters up to my neck now, i keep walking further out",
        "estoy parada en la orilla de la azotea",
    ),
    "means": (
        "got charcoal and the tape, im locked in my room",
        "la escopeta esta en el closet y no hay nadie en la casa",
    ),
    "preparation": (
        "she didnt know it was goodbye when i hugged her",
        "le dije a la senora de la tienda que el veneno era para las ratas",
    ),
    "plan": (
        "nobody will be home to stop me on friday",
        "el domingo cuando mis papas se vayan a misa lo hago",
    ),
    "intent": (
        "i feel calm, im ending it soon",
        "ya me canse, voy a hacer una locura",
    ),
    "method": (
        "how many of my sleeping pills would it take to not wake up",
        "lo he pensado con la soga del garaje",
    ),
    "active_thoughts": (
        "my head keeps telling me to die",
        "me dan ganas de cometer una locura conmigo misma",
    ),
    "past_attempt": (
        "i attempted to take my life last march",
        "el ano pasado intente quitarme la vida",
    ),
    "self_harm": (
        "bit my wrist so hard it bled",
        "me golpeo la cabeza contra la pared",
    ),
    "wish_dead": (
        "i envy people who died young",
        "la verdad no me importa si me muero",
    ),
    "burden_hopelessness": (
        "all i ever do is bring my family problems",
        "estarian mejor sin una hija como yo",
    ),
}
FOURTH_PASS = [
    (language, category, text)
    for category, texts in FOURTH_PASS_BY_CATEGORY.items()
    for language, text in zip(("en", "es"), texts, strict=True)
]
# Later rounds: method questions, plans by a day, preparations for whoever finds them, hidden
# self-harm (one a line: language, category, text).
FOURTH_PASS_LATER = """
en method which is less messy, pills or the bridge
en method how much insulin would it take, asking for me
es method cuantas pastillas para dormir hacen falta pa no despertar
en plan saturday night is when
es plan ya lo decidi, el viernes cuando se vaya mi mama
en preparation emptied my closet so its easier for whoever has to do it
es preparation programe unos mensajes para mis amigos y mi mama
es preparation regale mi bici y la compu, ya no las necesito
en self_harm wear long sleeves so nobody sees my arms
es self_harm uso manga larga para que nadie vea mis cortes
es plan compre un boleto de ida, no vuelvo
en plan i circled it on my calendar weeks ago, the 3rd
"""
FOURTH_PASS += [
    (language, category, text)
    for language, category, text in (
        line.split(" ", 2) for line in FOURTH_PASS_LATER.strip().splitlines()
    )
]
FOURTH_PASS_NEAR_MISSES = [
    "died again in elden ring, im going to kill myself lol",
    "me mate otra vez jugando al fortnite",
    "goodbye cruel world 😂 my phone is at 1%",
    "adios mundo cruel jajaja me quede sin datos",
    "if my boss calls one more time im jumping off a bridge",
    "what does suicidal ideation mean",
    "que significa ideacion suicida",
    "parked on the top floor of the parking garage, no spots anywhere",
    "el carro esta prendido en el garaje calentandose, la puerta esta abierta",
    "went to the gun range with my brother, first time holding a gun",
    "sitting on the edge of the pool with my feet in the water",
    "theres a knife in my hand im slicing bread",
    "what floor is high enough to see the parade",
    "how many tylenol can i take a day for a fever",
    "i keep thinking about jumping into the pool lol",
    "ya lo decidi, no mas azucar desde el lunes",
    "scheduled a text to my mom for next week for her birthday",
    "regale la ropa que ya no me queda",
    # Session 11: a negation inside the phrase's free word, and 'sin' (without) before it.
    "i havent self harmed in 2 years!!! just wanted to tell someone",
    "ya llevo un año sin autolesionarme!! quería contarle a alguien",
    "ultimo dia de clases!! lo marque en el calendario",
    "me toca a mi lavar los platos",
    "finish this shift and then thats it lol",
]


@pytest.mark.parametrize(("language", "category", "text"), SECOND_PASS + THIRD_PASS + FOURTH_PASS)
def test_pass_families(detector: CrisisDetector, language: str, category: str, text: str) -> None:
    detection = detector.detect_phrases(text)  # the phrases alone find these
    assert detection.matched, text
    assert detection.language == language


@pytest.mark.parametrize(
    "text", SECOND_PASS_NEAR_MISSES + THIRD_PASS_NEAR_MISSES + FOURTH_PASS_NEAR_MISSES
)
def test_pass_near_misses(detector: CrisisDetector, text: str) -> None:
    assert not detector.detect(text).matched, detector.detect(text)


@pytest.mark.parametrize("table", [SECOND_PASS, THIRD_PASS, FOURTH_PASS])
def test_each_pass_table_covers_every_category_in_both_languages(
    table: list[tuple[str, str, str]],
) -> None:
    assert {(language, category) for language, category, _ in table} == {
        (language, category) for language in ("en", "es") for category in CATEGORIES
    }


def test_a_phrase_its_context_dropped_keeps_the_model_quiet_short_of_its_bar(
    detector: CrisisDetector, examples: list[Example]
) -> None:
    model = detector.model
    assert model is not None
    assert detector.dropped_by("I do not want to die") == DROPPED_BY_GRAMMAR  # negated
    assert detector.dropped_by("im not gonna kill myself") == DROPPED_BY_GRAMMAR
    assert detector.dropped_by("bought a rope to tie down the tent") == DROPPED_BY_SENSE
    assert detector.dropped_by("this homework is killing me lol") is None  # no phrase at all
    dropped = [
        (e.text, detector.dropped_by(e.text))
        for e in examples[::2]  # every other message: hundreds of each kind
        if model.alarms(e.text)
        and detector.dropped(e.text)
        and not detector.detect_phrases(e.text).matched
    ]
    # The model alone would alarm on these: over a negation or someone else it stays quiet;
    # over an everyday sense it is heard only from its own, higher bar.
    grammar = [text for text, why in dropped if why == DROPPED_BY_GRAMMAR]
    sense = [text for text, why in dropped if why == DROPPED_BY_SENSE]
    assert grammar and sense
    assert not any(detector.detect(text).matched for text in grammar)
    for text in sense:
        assert detector.detect(text).matched == (model.probability(text) >= model.overrule), text


def test_laughing_emoji_read_as_lol() -> None:
    assert normalise("goodbye cruel world 😂") == "goodbye cruel world | lol |"
    assert normalise("im dead 💀💀 that meme") == "im dead | lol | that meme"


def test_the_model_alone_needs_four_words() -> None:
    model = crisis_model.load()
    assert model is not None
    assert crisis_model.word_count(normalise("whats up | lol")) == 3
    assert not model.alarms("kms")  # two letters of evidence: the phrases' ground
    # three words are too few too (session 8's model read this one as crisis)
    assert crisis_model.MIN_WORDS == 4 and not model.alarms("i'm not suicidal")


def test_the_threshold_steps_down_while_a_step_finds_enough_crisis_messages_per_alarm() -> None:
    # Probabilities of a model that never saw these writers; two crisis messages only a phrase
    # finds. From 0.95, asking two crisis messages an alarm: the step to 0.90 finds 2 for 1 alarm
    # (taken), to 0.85 2 for 0 (taken), to 0.80 1 for 1 (not taken).
    probabilities = [0.97, 0.92, 0.91, 0.93, 0.86, 0.87, 0.82, 0.81, 0.10, 0.20, 0.30]
    labels = [True, True, True, False, True, True, True, False, True, True, False]
    phrases = [False] * 8 + [True, True, False]
    assert crisis_train.pick_threshold_by_margin(probabilities, labels, phrases, 2.0) == 0.85
    # Asking less of a step lets it go lower; asking more stops it sooner.
    assert crisis_train.pick_threshold_by_margin(probabilities, labels, phrases, 1.0) < 0.85
    assert crisis_train.pick_threshold_by_margin(probabilities, labels, phrases, 3.0) == 0.95
    # The line's rule asks 2.5: the first step's 2 for 1 is not enough.
    assert crisis_train.MARGIN == 2.5
    assert crisis_train.pick_threshold_by_margin(probabilities, labels, phrases) == 0.95


def test_the_overrule_steps_down_from_higher_by_hundredths() -> None:
    # Session 15: from 0.99 by hundredths to 0.95, then by STEP. Ten for one: 0.99 -> 0.98
    # finds 10 for none (taken), 0.98 -> 0.97 finds 1 for 1 (not taken).
    probabilities = [0.985] * 10 + [0.975, 0.972]
    labels = [True] * 10 + [True, False]
    no_phrases = [False] * 12
    assert crisis_train.pick_threshold_by_margin(probabilities, labels, no_phrases, 10.0, 0.99) == (
        0.98
    )
    # From 0.95, as the threshold starts, it could never stop above it.
    assert crisis_train.pick_threshold_by_margin(probabilities, labels, no_phrases, 10.0) <= 0.95
    assert crisis_train.OVERRULE_START == 0.99


def test_the_gate_steps_up_while_a_step_spares_enough_alarms_per_crisis_message() -> None:
    # Phrase hits with the probabilities a model that never saw their writers gave them. From 0,
    # asking two false alarms spared a crisis message lost: the step to 0.05 spares 2 for none
    # (taken), to 0.10 spares 2 for 1 (taken), to 0.15 spares 1 for 1 (not taken).
    probabilities = [0.01, 0.03, 0.06, 0.07, 0.08, 0.11, 0.12, 0.60, 0.02, 0.9]
    labels = [False, False, False, False, True, False, True, True, True, False]
    phrases = [True] * 9 + [False]  # the last is no phrase hit: the gate says nothing of it
    asked = [True] * 8 + [False, True]  # a hit it does not ask about (short, urgent) stands
    assert crisis_train.pick_gate_by_margin(probabilities, labels, phrases, asked, 2.0) == 0.10
    assert crisis_train.pick_gate_by_margin(probabilities, labels, phrases, asked, 1.0) > 0.10
    assert crisis_train.pick_gate_by_margin(probabilities, labels, phrases, asked, 3.0) == 0.05
    # The line asks ten false alarms spared for a crisis message lost.
    assert crisis_train.PHRASE_MARGIN == 10
    assert crisis_train.pick_gate_by_margin(probabilities, labels, phrases, asked) == 0.05
    # It never rises to where it would meet a threshold.
    assert crisis_train.pick_gate_by_margin([0.9] * 3, [False] * 3, [True] * 3, [True] * 3) == (
        crisis_train.GATE_MAX
    )


def test_the_gate_asks_about_long_messages_outside_an_attempt() -> None:
    long = normalise("me quiero morir, ya no aguanto mas esta vida de mierda")
    assert crisis_model.gate_asks(long, "wish_dead")
    # Session 15: of places and means too ("on the ledge of a breakdown lol finals week" is a
    # figure of speech the model reads).
    assert crisis_model.gate_asks(long, "danger_place") and crisis_model.gate_asks(long, "means")
    # Too few words for the model to judge, and an attempt under way, stand on their words.
    assert not crisis_model.gate_asks(normalise("quiero dormir para siempre"), "wish_dead")
    assert not crisis_model.gate_asks(normalise("thank you i want to die"), "wish_dead")
    assert not crisis_model.gate_asks(long, "attempt")


def test_the_model_ships_with_the_gate_and_threshold_chosen_on_fresh_writing() -> None:
    # Session 15 (crisis_train.FRESH_*): the development rules only report.
    model = crisis_model.load()
    assert model is not None
    assert (model.threshold, model.gate) == (
        crisis_train.FRESH_THRESHOLD,
        crisis_train.FRESH_GATE,
    )
    # A place in a figure of speech, long enough for the model to read, is gated away now;
    # an attempt told plainly is not asked about.
    detector = CrisisDetector.load()
    assert not detector.detect("on the ledge of a breakdown lol finals week").matched
    assert detector.detect("the bath water is red. i'm so tired").matched


def test_a_writer_is_named_by_the_note_of_their_set() -> None:
    def note(text: str) -> Example:
        return Example(text="x", label=True, language="en", category="plan", note=text)

    assert crisis_train.writer_of(note("ninth held-out, read in session 11: plan")) == (
        "ninth held-out"
    )
    assert crisis_train.writer_of(note("dev writer g, session 11: long")) == "dev writer g"
    assert crisis_train.writer_of(note("second writer, session 7: emoji")) == "second writer"
    # The first held-out set and the early rounds came from many hands: random folds score them.
    assert crisis_train.writer_of(note("old held-out, read during tuning")) is None
    assert crisis_train.writer_of(note("round 14 crisis, scored once")) is None


# Session 15: someone else at risk, told by a worried texter (written afresh).
SOMEONE_ELSE_AT_RISK = (
    "my best friend just told me she took a whole bottle of pills",
    "my sister is on the bridge right now and wont answer",
    "my boyfriend said he wants to kill himself",
    "my friend is suicidal what do i do",
    "im worried about my son, he has been cutting himself",
    "my roommate left a goodbye note on the fridge",
    "mi amigo se tomo todas las pastillas",
    "mi hermano dice que se quiere matar",
    "mi hermana esta en el puente y no me contesta",
    "mi amiga se corta los brazos y no se que hacer",
    "mi novio dice que ya no quiere vivir",
    # the review's: a past or a calm aside elsewhere in the text does not make it past
    "my sister just swallowed a bottle of pills, she is back in her room",
    "my friend is on the bridge right now and wont answer, she survived an attempt last year",
    "when i was in the shower my friend texted that she wants to kill herself",
    "mi amigo se quiere matar, sobrevivio un intento hace dos anos",
    "my son is self harming",
    # Session 16: shut in with a means, or holding one and saying goodbye (and the review's).
    "my roommate shut herself in the garage with a rope",
    "my roommate locked herself in the bathroom and wont answer, she has a razor",
    "my friend has a gun and says goodbye",
    "my brother locked himself in his room and wont answer, he took the pills from the cabinet",
    "mi amiga se encerro en el bano con una navaja",
    "mi hermano tiene una pistola y se despidio de todos",
    "shes holding a gun and said goodbye",
    "my daughter's locked herself in her room with a knife",
    "my 16 year old locked herself in her room with a knife",
    "my mom shut herself in the car in the garage and the engine is running",
    "my husband is holding a gun to his head",
    "my son has a knife to his wrist",
    "mi hermana de 15 anos se encerro en el bano con pastillas",
    "mi papa esta en el garage con el carro prendido y no contesta",
    "mi amigo tiene un arma y me escribio despidiendose",
    # the second review's
    "my friend said shes going to kill herself tonight",
    "my friend just told me he's gonna kill himself",
    "mi tio se encerro en el garage con una soga",
)
NOT_SOMEONE_ELSE = (
    "i took all my pills",  # the writer's own
    "i want to kill myself",
    "he would never kill himself",  # negated
    "ella no se quiere matar, solo esta triste",
    "my uncle attempted years ago and now he runs a support group",  # a past told as past
    "mi hermano intento suicidarse hace anos, hoy esta bien",
    "my friend says this homework is killing him",  # everyday
    "my mom keeps her pills in the cabinet",
    "se corto el dedo cocinando",
    "wrote a goodbye letter to my old job lol",
    # the review's: the writer's own crisis, or a question, with another word before it
    "tio me he tomado todo el blister de lorazepam y media botella de whisky",
    "mi esposo dice que soy un peso",
    "my mom says im a burden",
    "people like me should just kill themselves",
    "do people who hang themselves feel pain",
    "como suicidarse sin dolor",
    "colgarse duele mucho?",
    # ...and everyday senses of the same words
    "he cut himself shaving",
    "my son hurt himself playing soccer",
    "she is taking her life back",
    "my mom took her meds this morning",
    "my mom took all my pills away so im safe",
    "my gf wants to end things",
    "my girlfriend doesnt want to live with me anymore",
    "my grandma is going to die soon, she has cancer",
    "my dad is on the roof right now fixing the gutters",
    "my coworker sent a farewell message to the team",
    "el internet se corta otra vez",
    "no vale la pena matarse estudiando",
    "se tomo un ibuprofeno para el dolor",
    "mi novio no quiere vivir conmigo",
    "mi papa esta en el techo ahorita arreglando la antena",
    "me mando un mensaje de despedida porque se muda",
    "my roommate locked herself in the bathroom to cry after the breakup",
    "my dad has a gun for hunting season",
    "my sister locked herself out of the car lol",
    "mi hermano se encerro en su cuarto a jugar play",
    "mi papa tiene una escopeta para cazar",
    # the review's: shut in and not answering is a teenager; a means in an everyday use; a
    # means told in another clause; a goodbye to a job
    "my son locked himself in his room playing video games and wont answer me",
    "my daughter locked herself in her room and wont come out, teenagers lol",
    "my roommate shut herself in her room to study for her europe exam",
    "my kid locked himself in the car with the keys, not answering the window lol",
    "my mom shut herself in her room with a razor to shave her legs",
    "my bf has a gun license now, he said goodbye to his old job today",
    "my son locked himself in his room. lol anyway im out of pills",
    "my husband is holding a knife to cut the turkey",
    "my dad is in the car in the garage, the engine is running to warm it up before work",
    "mi hijo se encerro en su cuarto a jugar y no me contesta",
    "mi hija se encerro en su cuarto y no sale ni para comer",
    "mi hermana se metio en el cuarto con su novio y no abre jaja",
    "mi novio compro un cuchillo nuevo para la cocina y no me contesta",
    "mi abuelo tiene una escopeta y no contesta el telefono, estara en el campo",
    # the second review's
    "my 16 year old locked herself in her room with her phone charger cord again",
    "my sister locked herself in the bathroom with her razor, shes shaving her legs for prom",
    "my son shut himself in his room with a knife and fork and a whole pizza lol",
    "my dad grabbed his rifle and said goodbye, hes going hunting all weekend",
    "my sister grabbed a knife and said goodbye to the onions lol",
    "my dad is on the roof cleaning the gutters and isnt answering his phone",
    "my grandma is at the bridge club and wont answer her phone",
    "my daughter took all her medicine today like a champ",
    "my mom took all my pills and flushed them",
    "my son is cutting himself a slice of cake",
    "my mom is going to kill herself laughing when she sees this",
    "la llamada se esta cortando, te marco al rato",
    "mi hermano se esta cortando el pelo",
    "mi hermano se va a matar con esa moto",
    "mi abuelo se tomo todas las pastillas del dia",
    "mi abuela no quiere vivir sola",
    "mi mama esta en la azotea tendiendo ropa y no me contesta",
    "mi papa esta en el garage con el carro prendido esperandonos",
)


# Session 16 (the review's): words that tell of someone else at risk AND of the writer's own.
# When only the model alarmed, the line gives the someone-else text in place of the crisis
# resources only if the rest of the words, cut of the other person's, say no crisis.
OWN_CRISIS_BESIDE_SOMEONE_ELSE = (
    "he locked himself in the garage with a rope. i have one too. im done",
    "my mom locked herself in her room with pills, i have my own stash and im thinking of taking"
    " them too",
)


@pytest.mark.parametrize("text", OWN_CRISIS_BESIDE_SOMEONE_ELSE)
def test_own_crisis_beside_someone_else_is_not_only_someone_else(
    detector: CrisisDetector, text: str
) -> None:
    assert detector.someone_else(text)
    assert detector.answer(text, detector.detect(text)) == (detector.detect(text), False)


# The second review's: the writer's own risk told by joining the other person's ("ill jump
# too", "me too", "yo tambien tengo una"), or in words the grammar dropped with the other's.
OWN_RISK_JOINED_TO_SOMEONE_ELSES = (
    ("she is on the bridge right now and wont answer. ill jump too", "ill jump too"),
    ("my sister took all her pills and me too", "me too"),
    ("mi hermana se encerro en el bano con una navaja. yo tambien tengo una", "yo tambien"),
    ("my sister took all her pills. i took the rest of the bottle", MODEL_CATEGORY),
    # Session 17: following the other person into it.
    (
        "she is on the bridge right now and wont answer. im going to jump after her",
        "im going to jump after her",
    ),
    (
        "my sister is on the bridge and not answering, im on the way there and ill jump with her",
        "ill jump with her",
    ),
    (
        "mi hermana esta en el puente y no me contesta, me voy a tirar con ella",
        "me voy a tirar con ella",
    ),
    # The second review's: a time after the pronoun, "me mato".
    # The writer's words alone, once the other person's are cut out, are read first: session
    # 24's model reads "im going to jump after her tonight" as a crisis (p 0.82), which stands
    # before the words joining the writer to the other person.
    (
        "she is on the bridge right now and wont answer. im going to jump after her tonight",
        MODEL_CATEGORY,
    ),
    (
        "mi hermana esta en el puente y no me contesta, me voy a tirar con ella esta noche",
        "me voy a tirar con ella esta noche",
    ),
    ("mi hermano esta en el puente y no contesta, me mato con el", "me mato con el"),
)


@pytest.mark.parametrize(("text", "phrase"), OWN_RISK_JOINED_TO_SOMEONE_ELSES)
def test_own_risk_joined_to_someone_elses_is_the_writers_crisis(
    detector: CrisisDetector, text: str, phrase: str
) -> None:
    beside = detector.beside_someone_else(text)
    assert beside is not None and beside.matched and beside.phrase == phrase
    found, worried = detector.answer(text, detector.detect(text))
    assert found.matched and not worried


def test_a_phrase_inside_someone_elses_words_is_theirs(detector: CrisisDetector) -> None:
    # Session 17: the phrase has no person of its own; the words around it name another.
    for text in (
        "mi papa esta en el carro en la cochera con el motor prendido",
        "my mom is in the car in the garage with the engine on and wont answer",
        # The second review's: another's past verb without its accent ("dejo"), the writer
        # as an object ("sent me"), the writer hedging ("yo creo que", "pienso que").
        "mi hermana dejó una carta de suicidio y no contesta",
        "my sister just sent me a goodbye note and wont answer",
        "mi papa yo creo que esta en la cochera con el motor prendido",
        "mi papa pienso que esta en el carro en la cochera con el motor prendido",
    ):
        found = detector.detect(text)
        assert found.matched and found.phrase != MODEL_CATEGORY, text  # as it stands
        assert detector.answer(text, found) == (found, True), text  # raised, worried
        assert detector.beside_someone_else(text) == NO_MATCH, text
    own = "im in the car in the garage with the engine on"
    assert detector.answer(own, detector.detect(own)) == (detector.detect(own), False)
    mixed = "mi papa esta en el puente y no contesta. yo tengo las pastillas en la mano"
    found = detector.detect(mixed)
    assert found.matched and detector.answer(mixed, found) == (found, False)


def test_after_crisis_words_an_everyday_sense_yields_to_the_model(
    detector: CrisisDetector,
) -> None:
    # Session 17: a roof at work is an everyday sense, unless the writer's crisis was just
    # raised; then the model's ordinary threshold decides. Grammar still drops what it drops.
    place = "estoy arriba del edificio de mi trabajo"
    assert detector.dropped_by(place) == "sense"
    assert not detector.detect(place).matched
    assert detector.detect(place, after_crisis=True).category == "danger_place"
    other = "my friend says she wants to kill herself"
    assert not detector.detect(other, after_crisis=True).matched
    assert not detector.detect("hola como estas", after_crisis=True).matched


# Session 17's review: a worried texter's everyday words after someone else's risk that the
# first echo forms took for following them (no first person, the pronoun not the clause's end).
NOT_AN_ECHO = (
    "my boyfriend keeps saying he wants to kill himself if i end it with him",
    "my sister says she wants to kill herself because her boyfriend wants to end it with her",
    "my friend says she wants to kill herself, im going to go over with her mom tonight",
    "my sister said she wants to kill herself. im going to go over after her shift",
    "my friend says he wants to kill himself, his girlfriend says she would die with him",
    "mi hermana dice que se quiere matar, me lanzo con ella ahorita",
    "mi amigo se tomo todas las pastillas, me voy a lanzar con el al hospital",
    "mi mama se tomo todas las pastillas, me aviento con ella a urgencias",
    "mi amigo dice que se quiere matar, yo me tiro con el a ver peliculas toda la noche",
    "mi hermana dice que se quiere matar, me muero con ella si le pasa algo",
)


@pytest.mark.parametrize("text", NOT_AN_ECHO)
def test_a_worried_texters_everyday_words_are_no_echo(detector: CrisisDetector, text: str) -> None:
    beside = detector.beside_someone_else(text)
    assert beside is None or not beside.matched, beside


# Session 17's review: the texter's own crisis words inside an unpunctuated span that tells of
# someone else ("... and i took 30 pills he wont answer") are theirs.
OWN_WORDS_INSIDE_SOMEONE_ELSES = (
    "mi hermano esta en el puente y yo me quiero morir no me contesta",
    "my sister is on the bridge and i want to kill myself she wont answer",
    "my dad has a gun and i want to die he keeps saying goodbye",
    "mi hermana esta en el puente y ya no quiero vivir no me contesta",
    "mi mama esta en la azotea y yo ya me tome todas las pastillas no me contesta",
    "my brother is on the bridge right now and i took 30 pills he wont answer",
    "my friend has a gun and im going to shoot myself he said goodbye",
    "mi amigo tiene una pistola y yo me voy a suicidar se despidio",
    "my mom is on the roof and im going to kill myself too she wont answer",
)


@pytest.mark.parametrize("text", OWN_WORDS_INSIDE_SOMEONE_ELSES)
def test_own_words_inside_someone_elses_stay_the_writers(
    detector: CrisisDetector, text: str
) -> None:
    found = detector.detect(text)
    assert found.matched and found.phrase != MODEL_CATEGORY
    assert detector.answer(text, found) == (found, False)


def test_after_crisis_words_a_named_near_miss_stays_one(detector: CrisisDetector) -> None:
    # Session 17's review: "no" to a supporter's question, after the texter's own crisis.
    answer = "no, no tengo ningun plan de hacerme dano, solo me siento vacia"
    assert not detector.detect(answer, after_crisis=True).matched


def test_a_worried_texters_love_is_no_echo(detector: CrisisDetector) -> None:
    text = "my sister is on the bridge and wont answer, i love her too much"
    assert detector.beside_someone_else(text) == NO_MATCH
    # Going to them, to help, is no echo either (session 17's forms are about following).
    for text in (
        "my sister is on the bridge right now and wont answer, im going up there after her",
        "my best friend just told me she took a whole bottle of pills, im going with her to the er",
    ):
        assert detector.someone_else(text), text
        assert detector.beside_someone_else(text) == NO_MATCH, text
    assert detector.beside_someone_else("i want to die") is None  # nobody else named


def test_only_someone_else_at_risk(detector: CrisisDetector) -> None:
    for text in (
        "my sister is on the bridge right now and wont answer",
        "mi amiga se encerro en el bano con una navaja",
    ):
        assert detector.answer(text, detector.detect(text))[1], text
    mine = "i want to kill myself"  # nobody else named
    assert detector.answer(mine, detector.detect(mine)) == (detector.detect(mine), False)
    assert detector.answer("", NO_MATCH) == (NO_MATCH, False)


@pytest.mark.parametrize("text", SOMEONE_ELSE_AT_RISK)
def test_someone_else_at_risk_is_told_apart(detector: CrisisDetector, text: str) -> None:
    assert detector.someone_else(text)
    assert not detector.detect_phrases(text).matched  # no crisis of the writer's


@pytest.mark.parametrize("text", NOT_SOMEONE_ELSE)
def test_own_words_negations_pasts_and_everyday_senses_are_not_someone_else(
    detector: CrisisDetector, text: str
) -> None:
    assert not detector.someone_else(text)


def test_someone_else_on_the_labelled_sets(
    detector: CrisisDetector, examples: list[Example]
) -> None:
    # Development near misses that tell of someone else at risk ("mi amiga dice q se quiere
    # morir y no se q decirle") are the texts it is for (session 15: 93 of 18,074 safe
    # messages, all of them worried texters); the everyday texts to the line and from ordinary
    # chats never say so, and a crisis message of the writer's own hardly ever (1 of 15,502, a
    # question "para una companera" about someone who thinks of it every day).
    safe = [e for e in examples if not e.label]
    told = [e for e in safe if detector.someone_else(e.text)]
    everyday = [e for e in safe if e.note.startswith(crisis_train.EVERYDAY_NOTES)]
    assert len(told) >= 80 and len(everyday) >= 400
    assert not any(detector.someone_else(e.text) for e in everyday)
    own = [e for e in examples if e.label and detector.someone_else(e.text)]
    assert len(own) <= 3
