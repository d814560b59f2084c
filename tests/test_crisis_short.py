"""Short texts: one to five words, as a first text typed fast or a lone line mid-chat.

Session 20 found the line quiet on a bare "took pills" (and so on "my sister took pills"), on
"let me die", "me voy a pegar un tiro" and "decidi morir": the phrases wanted more words around
them and the model is not asked under four words. These are those kinds of words, in sentences
of this file's own (not the development or held-out texts).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from peerline.service.crisis import CrisisDetector
from peerline.service.crisis_config import compile_any, compile_words
from peerline.service.crisis_eval import load, run, score

# Short texts written in session 20 by writers told to open nothing of the project, to one
# brief (400 texts of one to five words each: 200 crisis, 200 near misses, half Spanish). The
# first writer's set was written for. The second's was scored once at the freeze baab064
# (docs/crisis_short_heldout_run.txt), the third's once at 38fd3e6
# (docs/crisis_short_heldout2_run.txt); each was spent then, its misses written for after
# its figures were read. The figures at those freezes are floors the line must keep.
SHORT_DEV = Path(__file__).with_name("crisis_short_dev.yaml")
SHORT_HELDOUT = Path(__file__).with_name("crisis_short_heldout.yaml")
# Session 21: a fifth writer's set, written at the session's start, scored once on a543f95 (the
# line as session 20 left it, docs/crisis_short_heldout4_run.txt), then spent; a sixth and a
# seventh writer's, scored once at session 21's freeze defedb4 (_heldout5_run.txt and
# _heldout6_run.txt); an eighth writer's at the second freeze 9198657 (_heldout7_run.txt); a
# ninth writer's at the third freeze c26c24d (_heldout8_run.txt); a tenth writer's at the last
# freeze 17021f6 (_heldout9_run.txt). The fourth writer's set was scored at f751f99
# (docs/crisis_short_heldout3_run.txt).
#: Each held-out set by the writer's place: its file, its SHA-256 as written, and the crisis
#: texts found and near misses alarmed (of 200 each) at its freeze.
SHORT_HELDOUT_SETS = {
    "first": (
        SHORT_HELDOUT,
        "29490537c3184698513145380bb379be52a3d23bf6f48008b1ae8821623d91fb",
        (184, 4),
    ),
    "second": (
        Path(__file__).with_name("crisis_short_heldout2.yaml"),
        "785e1ebefd909a01f085fafbfa5f43b6713d02e50cb6a15aff5ae987d303788c",
        (171, 5),
    ),
    "third": (
        Path(__file__).with_name("crisis_short_heldout3.yaml"),
        "a2e50b030f8e2949bf7199b0c1d46eb003d5b81e8f04b93efc02b40386c39aff",
        (171, 7),
    ),
    "fourth": (
        Path(__file__).with_name("crisis_short_heldout4.yaml"),
        "44d08bc3d0e710ce8b22fa8190907db6cf48fdcb204521219c15cd3c54bbdf52",
        (186, 4),
    ),
    "fifth": (
        Path(__file__).with_name("crisis_short_heldout5.yaml"),
        "78dcf5d4fd10802d258c274c79a723eab75209bd8ed3883ecfb80a80ecd3c087",
        (190, 3),
    ),
    "sixth": (
        Path(__file__).with_name("crisis_short_heldout6.yaml"),
        "708105168f73c20db51368f84e5512c731fd4e99ae4a84af7246a98cc6c0475e",
        (185, 5),
    ),
    "seventh": (
        Path(__file__).with_name("crisis_short_heldout7.yaml"),
        "33fc6ed1977e9dfa2f350dad07c094c868c4e9be711a69e390a6c903b892bed4",
        (182, 9),
    ),
    "eighth": (
        Path(__file__).with_name("crisis_short_heldout8.yaml"),
        "99a71eb3723829bce50aef1fd421e5d4072adbaacbd56b125368be6a976f92c6",
        (181, 1),
    ),
    "ninth": (
        Path(__file__).with_name("crisis_short_heldout9.yaml"),
        "00882db365ed4415595a81f007c98c325425416b339aa6364b82fc1405f339a8",
        # Session 24's model (fitted on the spent long sets): 187 -> 186 found, 4 -> 3 false
        # alarms ("un balazo y se acaba", five words, p 0.73 under 0.75).
        (186, 3),
    ),
}


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


# The spent short held-out set's misses, as families (in other words than its texts).
SPENT_SET_FAMILIES = [
    ("plan", "cdo todos duerman me tiro"),
    ("wish_dead", "wish id never woken up"),
    ("method", "which floor would kill me"),
    ("burden_hopelessness", "my family at peace without me"),
    ("danger_place", "engine on in garage, door closed"),
    ("means", "holding the pills, no one home"),
    ("intent", "ya estoy decidido a matarme"),
    ("past_attempt", "tuve un intento suicida en marzo"),
    ("intent", "i am committing suicide"),
    ("plan", "jumping off the bridge tonight"),
    ("self_harm", "selfharmed last night"),
    ("danger_place", "parado en la cornisa, 12 pisos"),
    ("means", "traigo la pistola cargada"),
    ("intent", "reached the decision to end it"),
    ("preparation", "ya tengo mi carta de despedida"),
    ("danger_place", "encerrada con el auto encendido"),
    # The review's: a greeting or a plea around a bare text, a time with minutes, a rope with
    # clothes left for someone.
    ("attempt", "hey. took pills"),
    ("attempt", "tome pastillas, ayuda por favor"),
    ("plan", "a las 3:30 me mato"),
    ("means", "the rope is up. left my clothes folded for mom"),
    ("danger_place", "garage closed, car running"),
    # The third set's misses, as families.
    ("attempt", "hung myself but the belt broke"),
    ("attempt", "swallowed antifreeze"),
    ("plan", "sunday im jumping"),
    ("preparation", "how much tylenol is lethal"),  # looking up a dose
    ("self_harm", "cut again last night"),
    ("plan", "el viernes me boto del puente"),
    ("self_harm", "me corte adrede"),
    ("wish_dead", "le ruego a dios que me lleve"),
    ("burden_hopelessness", "mi familia estaria mejor si me muero"),
]


@pytest.mark.parametrize(("category", "text"), SPENT_SET_FAMILIES)
def test_the_spent_short_sets_misses_as_families(
    detector: CrisisDetector, category: str, text: str
) -> None:
    assert detector.detect(text).category == category


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
    # Everyday senses of the spent set's families.
    "mi novia me corto por whatsapp",
    "wish i never woke up to that text",
    "what height kills a cat",
    "hace 10 anos hice un intento suicida, hoy estoy bien",
    "im committing social suicide lol",
    "car running, garage door open, warming it up",
    # The review's: everyday senses of the words the new phrases use.
    "odd",
    "ate too much",
    "took too many",
    "a las 10 me tiro a dormir",
    "solo carga el celular y vienes",
    "pills are out, need a refill",
    "the kids are fine without me tonight",
    "i made the decision to end things with my boyfriend",
    "cake or death? i choose death",
    "le dieron un tiro en la cabeza",
    "ugh mondays, just let me die",
    "me pego un tiro libre",
    "gun pointed at my head during the robbery, im shaking",
    "how many tylenol to kill this headache",
    "bleeding through the bandage after my c section",
    "me pesa vivir lejos de mi familia",
    "this is my last message for today, thanks",
    "me corte el flequillo",
    "saturday i jump on the trampoline",
    "preferiria estar muerto que ir a esa fiesta",
]


@pytest.mark.parametrize("text", SHORT_NEAR_MISSES)
def test_short_near_misses_stay_quiet(detector: CrisisDetector, text: str) -> None:
    assert not detector.detect(text).matched


def test_a_relapse_after_clean_years_still_counts(detector: CrisisDetector) -> None:
    for text in (
        "2 anos sin cortarme, hoy otra vez",
        "3 meses sin cortarme y hoy me corte",
        "2 weeks clean and self harmed again tonight",
        "jamas pense que me volveria a cortar",  # "pense" is no negation filler
    ):
        assert detector.detect(text).category == "self_harm", text


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


def test_the_short_held_out_set_is_guarded() -> None:
    path, sha, _ = SHORT_HELDOUT_SETS["first"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, (
        "tests/crisis_short_heldout.yaml changed: a held-out set that changes silently "
        "measures nothing (record the new SHA-256 and say why in docs/crisis.md)"
    )
    heldout = load(path)
    assert len(heldout) == 400 and sum(e.label for e in heldout) == 200
    assert all(1 <= len(e.text.split()) <= 5 for e in heldout)
    # Short texts repeat across writers ("hi", "ok", "me voy a matar"): 67 are written word for
    # word in both sets; docs/crisis.md gives the figures without them too. No more.
    assert len({e.text for e in heldout} & {e.text for e in load(SHORT_DEV)}) == 67


@pytest.mark.parametrize("name", [name for name in SHORT_HELDOUT_SETS if name != "first"])
def test_the_later_short_sets_are_guarded(name: str) -> None:
    path, sha, _ = SHORT_HELDOUT_SETS[name]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    heldout = load(path)
    assert len(heldout) == 400 and sum(e.label for e in heldout) == 200


@pytest.mark.parametrize("name", list(SHORT_HELDOUT_SETS))
def test_short_held_out_figures_as_recorded(detector: CrisisDetector, name: str) -> None:
    path, _, (found, false_alarms) = SHORT_HELDOUT_SETS[name]
    s = score((e, d.matched) for e, d in run(detector, load(path)))
    assert s.tp >= found
    assert s.fp <= false_alarms


def test_the_short_development_set_is_found(detector: CrisisDetector) -> None:
    s = score((e, d.matched) for e, d in run(detector, load(SHORT_DEV)))
    # Written for: every crisis text found. Its one model false alarm ("sorry to be a bother", p
    # 0.89 at five words) is quiet since session 21's model near misses (whole-message texts).
    # Session 24's model (fitted on the spent long sets, whose texts run 8-40 words) read two
    # four-word texts under its threshold ("tried hanging, rope broke" 0.68, "got the bleach
    # right here" 0.72): short phrases of their own now.
    assert (s.tp, s.fp) == (200, 0)


def test_a_pattern_for_the_whole_message_is_anchored_where_it_says() -> None:
    # The anchor is moved to lead the compiled pattern only where it leads every branch.
    assert compile_words("^took pills", "t").pattern.startswith("^")
    assert compile_words("^took pills", "t").search("so i took pills") is None
    either = compile_words("^took pills|let me die", "t")
    assert either.search("please just let me die") is not None


def test_a_list_of_whole_message_patterns_is_anchored_only_where_each_says() -> None:
    both = compile_any(["^took pills", "^im done"], "t")
    assert both.pattern.startswith("^")
    assert both.search("im done") is not None and both.search("so im done") is None
    # One listed pattern with a branch of its own: the anchor leads only its first branch.
    mixed = compile_any(["^took pills|let me die", "^im done"], "t")
    assert mixed.search("please just let me die") is not None
    assert mixed.search("so im done") is None
    assert compile_words("^(?:a|b) c", "t").search("b c") is not None
