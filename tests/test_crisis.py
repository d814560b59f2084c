"""The crisis detector: precision and recall on the labelled examples, and focused cases.

Run with ``pytest tests/test_crisis.py -q -s`` to see the figures and every misclassified
example. The examples in ``tests/crisis_examples.yaml`` were written for this project before the
detector; the ``holdout`` split was scored only once the detector was finished.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from peerline.service.crisis import (
    CATEGORIES,
    PACKAGED_FILE,
    CrisisDetector,
    Detection,
    merge_configs,
    normalise,
)

EXAMPLES = Path(__file__).with_name("crisis_examples.yaml")
MIN_PRECISION = 0.9
MIN_RECALL = 0.9
# Generous, so a slow CI machine does not fail it; the measured figure is printed.
MAX_MEAN_SECONDS_PER_MESSAGE = 0.002


@dataclass(frozen=True)
class Example:
    text: str
    label: bool
    language: str
    split: str
    note: str


@dataclass(frozen=True)
class Score:
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def load_examples() -> list[Example]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLES.read_text(encoding="utf-8"))
    return [Example(**item) for item in data["items"]]


def score(results: Iterable[tuple[Example, Detection]]) -> Score:
    tp = fp = fn = tn = 0
    for example, detection in results:
        if detection.matched and example.label:
            tp += 1
        elif detection.matched:
            fp += 1
        elif example.label:
            fn += 1
        else:
            tn += 1
    return Score(tp, fp, fn, tn)


@pytest.fixture(scope="module")
def detector() -> CrisisDetector:
    return CrisisDetector.load()


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return load_examples()


def test_examples_are_well_formed(examples: list[Example]) -> None:
    assert sum(e.label for e in examples) >= 60
    assert sum(not e.label for e in examples) >= 60
    for language in ("en", "es"):
        assert any(e.label and e.language == language for e in examples)
        assert any(not e.label and e.language == language for e in examples)
    assert {e.split for e in examples} == {"dev", "holdout"}
    texts = [e.text for e in examples]
    assert len(texts) == len(set(texts)), "duplicate example"


def test_precision_and_recall(detector: CrisisDetector, examples: list[Example]) -> None:
    results = [(e, detector.detect(e.text)) for e in examples]
    groups: dict[str, list[tuple[Example, Detection]]] = {"all": results}
    for key in ("dev", "holdout"):
        groups[key] = [r for r in results if r[0].split == key]
    for key in ("en", "es"):
        groups[key] = [r for r in results if r[0].language == key]

    print("\ncrisis detector on tests/crisis_examples.yaml")
    header = ("set", "n", "tp", "fp", "fn", "tn", "precision", "recall")
    print(f"{header[0]:8}", *(f"{h:>4}" for h in header[1:6]), f"{header[6]:>9} {header[7]:>7}")
    scores = {}
    for key, group in groups.items():
        s = scores[key] = score(group)
        print(
            f"{key:8} {len(group):4} {s.tp:4} {s.fp:4} {s.fn:4} {s.tn:4} "
            f"{s.precision:9.3f} {s.recall:7.3f}"
        )
    wrong = [(e, d) for e, d in results if d.matched != e.label]
    print(f"misclassified: {len(wrong)}")
    for e, d in wrong:
        kind = "false positive" if d.matched else "false negative"
        found = f" (matched {d.phrase!r} as {d.category})" if d.matched else ""
        print(f"  {kind} [{e.language}/{e.split}] {e.text!r}{found}: {e.note}")

    for key in ("all", "holdout", "en", "es"):
        assert scores[key].precision >= MIN_PRECISION, key
        assert scores[key].recall >= MIN_RECALL, key


def test_time_per_message(detector: CrisisDetector, examples: list[Example]) -> None:
    texts = [e.text for e in examples]
    rounds = 20
    started = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            detector.detect(text)
    mean = (time.perf_counter() - started) / (rounds * len(texts))
    longest = ("I had a long day at work and the bus was late again. " * 40)[:1600]
    started = time.perf_counter()
    detector.detect(longest)
    long_time = time.perf_counter() - started
    print(
        f"\ncrisis detector: {mean * 1e6:.0f} us per message on average over {len(texts)} "
        f"examples; {long_time * 1e3:.2f} ms for a 1600-character message"
    )
    assert mean < MAX_MEAN_SECONDS_PER_MESSAGE


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
    assert not hits(detector, text)


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("quiero suicidarme", "suicide"),
        ("me quiero morir", "suicide"),
        ("estoy pensando en quitarme la vida", "suicide"),
        ("me estoy cortando otra vez", "self_harm"),
        ("me tomé todas las pastillas", "overdose"),
        ("me voy a tirar del puente", "imminent"),
        ("me voy a suicidar esta noche", "imminent"),
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
    assert detection.category == "overdose"
    assert detector.detect("i want to kill myself tonight").category == "imminent"
    assert detector.detect("i want to kill myself").category == "suicide"


def test_no_match_and_empty(detector: CrisisDetector) -> None:
    assert detector.detect("") == Detection(False, None, None, None)
    assert detector.detect("YES") == Detection(False, None, None, None)
    assert detector.detect("😭" * 800).matched is False


def test_packaged_phrases_are_package_data() -> None:
    packaged = resources.files("peerline.service").joinpath(PACKAGED_FILE)
    data = yaml.safe_load(packaged.read_text("utf-8"))
    assert set(data["phrases"]) >= {"en", "es"}
    for by_category in data["phrases"].values():
        assert set(by_category) <= set(CATEGORIES)


def test_extra_file_is_merged(tmp_path: Path) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(
        "macros:\n"
        "  PLACE: [the quarry, the old mill]\n"
        "negation:\n"
        "  negators:\n"
        "    en: [hardly]\n"
        "near_misses:\n"
        "  en: ['unalive myself in (?:minecraft|the game)']\n"
        "phrases:\n"
        "  en:\n"
        "    suicide: ['unalive myself', 'I\u2019m going to disappear forever']\n"
        "    imminent: ['walk(?:ing)? into {PLACE}']\n"
        "  fr:\n"
        "    suicide: ['je veux mourir']\n",
        encoding="utf-8",
    )
    base = CrisisDetector.load()
    merged = CrisisDetector.load(str(extra))
    assert merged.phrase_count == base.phrase_count + 4

    assert not base.detect("I want to unalive myself").matched
    assert merged.detect("I want to unalive myself") == Detection(
        True, "en", "unalive myself", "suicide"
    )
    assert merged.detect("im going to disappear forever").matched
    assert merged.detect("walking into the old mill").category == "imminent"
    assert merged.detect("Je veux mourir").language == "fr"
    # the coordinator's negator and near miss apply, and the packaged lists still work
    assert not merged.detect("I would hardly unalive myself").matched
    assert not merged.detect("I'll unalive myself in minecraft").matched
    assert merged.detect("quiero suicidarme").matched
    assert not merged.detect("I would never kill myself").matched


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
    ],
)
def test_bad_extra_file_is_refused(tmp_path: Path, content: str, message: str) -> None:
    extra = tmp_path / "extra.yaml"
    extra.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        CrisisDetector.load(str(extra))
