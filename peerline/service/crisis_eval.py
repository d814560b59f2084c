"""Score the crisis detector on labelled sets: ``python -m peerline.service.crisis --evaluate``.

A labelled set is a YAML file with an ``items`` list of ``{text, label, language, category}``
(see ``tests/crisis_examples.yaml``). Recall is given per category (how many of the crisis
messages of that category raised the alarm, whatever category the detector named) and false
alarms per category of near miss, then overall and per language.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from peerline.service import crisis_model
from peerline.service.crisis import (
    BURST_TEXTS,
    CATEGORIES,
    MODEL_CATEGORY,
    NO_MATCH,
    CrisisDetector,
    Detection,
)

# The category of a message that borrows none of the twelve (everyday texts, bare near misses).
GENERAL = "general"
# Category names the held-out set's author used for the same categories.
LABEL_ALIASES = {
    "attempt_underway": "attempt",
    "place_of_danger": "danger_place",
    "means_at_hand": "means",
    "preparatory": "preparation",
    "burden_hopeless": "burden_hopelessness",
    "near_miss": GENERAL,
}
DEV_FILE = Path("tests/crisis_examples.yaml")
HELDOUT_FILE = Path("tests/crisis_heldout.yaml")
# Bursts: a texter's texts sent one after another, labelled as a whole (session 14).
BURSTS_FILE = Path("tests/crisis_bursts.yaml")
BURSTS_HELDOUT_FILE = Path("tests/crisis_bursts_heldout.yaml")


@dataclass(frozen=True)
class Example:
    """One labelled message."""

    text: str
    label: bool
    language: str
    category: str
    split: str = "dev"
    note: str = ""


@dataclass(frozen=True)
class Score:
    """Counts of one group's outcomes."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def false_alarm_rate(self) -> float:
        """Return the share of near misses that raised the alarm."""
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    @property
    def n(self) -> int:
        return self.tp + self.fp + self.fn + self.tn


def load(path: Path) -> list[Example]:
    """Read a labelled set."""
    return [_example(item, str(item["text"])) for item in _items(path)]


def _items(path: Path) -> list[dict[str, Any]]:
    """Return a labelled file's items."""
    # libyaml's safe loader when PyYAML has it: the same data (checked on both sets), and the
    # 24,072-message development set loads in about a second rather than sixteen.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data: Any = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    items: list[dict[str, Any]] = data["items"] if isinstance(data, dict) else data
    return items


def _example(item: dict[str, Any], text: str) -> Example:
    """Return one labelled item as an example of `text`."""
    return Example(
        text=text,
        label=bool(item["label"]),
        language=str(item.get("language", "en")),
        category=LABEL_ALIASES.get(str(item.get("category")), str(item.get("category") or GENERAL)),
        split=str(item.get("split", "dev")),
        note=str(item.get("note", "")),
    )


@dataclass(frozen=True)
class Burst:
    """One labelled burst: a texter's texts, oldest first, and its label as a whole."""

    texts: tuple[str, ...]
    example: Example  # its text is the texts joined by " / ", for the reports


def load_bursts(path: Path) -> list[Burst]:
    """Read a labelled set of bursts (items of ``{texts, label, language, category}``)."""
    bursts = []
    for item in _items(path):
        texts = tuple(str(text) for text in item["texts"])
        bursts.append(Burst(texts, _example(item, " / ".join(texts))))
    return bursts


def burst_windows(texts: Sequence[str]) -> Iterator[Sequence[str]]:
    """Yield what the line reads as each text of a burst arrives: it and the ones before it
    (`BURST_TEXTS` at most)."""
    for end in range(1, len(texts) + 1):
        yield texts[max(0, end - BURST_TEXTS) : end]


def each_alone(detector: CrisisDetector, texts: Sequence[str]) -> Detection:
    """Return the first detection of the texts read one by one (as before session 14)."""
    for text in texts:
        found = detector.detect(text)
        if found.matched:
            return found
    return NO_MATCH


def as_the_line_reads(detector: CrisisDetector, texts: Sequence[str]) -> Detection:
    """Return the first alarm as the texts arrive, each read with the ones before it
    (`BURST_TEXTS` at most, none from before an alarm), as the line reads a burst."""
    for window in burst_windows(texts):
        found = detector.detect_burst(window)
        if found.matched:
            return found
    return NO_MATCH


def sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def score(results: Iterable[tuple[Example, bool]]) -> Score:
    """Count true and false positives and negatives."""
    tp = fp = fn = tn = 0
    for example, matched in results:
        if matched and example.label:
            tp += 1
        elif matched:
            fp += 1
        elif example.label:
            fn += 1
        else:
            tn += 1
    return Score(tp, fp, fn, tn)


def run(detector: CrisisDetector, examples: Sequence[Example]) -> list[tuple[Example, Detection]]:
    """Detect every example."""
    return [(e, detector.detect(e.text)) for e in examples]


def report(name: str, results: Sequence[tuple[Example, Detection]], show_errors: bool) -> str:
    """Return a table of one set's figures, by category, language and overall."""
    pairs = [(e, d.matched) for e, d in results]
    rows = [
        f"== {name}: {len(pairs)} messages, {sum(e.label for e, _ in pairs)} crisis, "
        f"{sum(not e.label for e, _ in pairs)} near misses",
        f"{'group':22} {'crisis':>6} {'recall':>7} {'near':>5} {'alarms':>6} {'precision':>9}",
    ]
    groups: list[tuple[str, list[tuple[Example, bool]]]] = [
        (category, [p for p in pairs if p[0].category == category]) for category in CATEGORIES
    ]
    groups.append((GENERAL, [p for p in pairs if p[0].category not in CATEGORIES]))
    groups += [
        (f"language {lang}", [p for p in pairs if p[0].language == lang]) for lang in ("en", "es")
    ]
    groups.append(("ALL", pairs))
    for label, group in groups:
        if not group:
            continue
        s = score(group)
        crisis = s.tp + s.fn
        near = s.fp + s.tn
        recall = f"{s.recall:7.3f}" if crisis else f"{'-':>7}"
        alarms = f"{s.fp:>6}" if near else f"{'-':>6}"
        precision = f"{s.precision:9.3f}" if s.tp + s.fp else f"{'-':>9}"
        rows.append(f"{label:22} {crisis:6} {recall} {near:5} {alarms} {precision}")
    overall = score(pairs)
    rows.append(
        f"overall: recall {overall.recall:.3f}, false alarms {overall.fp} of "
        f"{overall.fp + overall.tn} near misses ({overall.false_alarm_rate:.1%}), "
        f"precision {overall.precision:.3f}"
    )
    agreed = [d.category == e.category for e, d in results if e.label and d.matched]
    if agreed:
        rows.append(f"category named as labelled: {sum(agreed)} of {len(agreed)} found")
    if show_errors:
        for e, d in results:
            if d.matched != e.label:
                kind = "false alarm" if d.matched else "missed"
                found = f" (matched {d.phrase!r} as {d.category})" if d.matched else ""
                rows.append(f"  {kind:11} [{e.language}/{e.category}] {e.text!r}{found}")
    return "\n".join(rows)


def layers(
    detector: CrisisDetector, model: crisis_model.Model | None, examples: Sequence[Example]
) -> dict[str, list[tuple[Example, Detection]]]:
    """Return each layer's results: the phrases alone, the model alone, and both."""
    phrases = [(e, detector.detect_phrases(e.text)) for e in examples]
    out = {"phrases alone": phrases}
    if model is not None:
        alone = [
            (
                e,
                Detection(True, None, MODEL_CATEGORY, model.category(e.text) or MODEL_CATEGORY)
                if model.alarms(e.text)
                else Detection(False),
            )
            for e in examples
        ]
        out["model alone"] = alone
        combined = copy.copy(detector)
        combined.model = model
        out["phrases + model"] = [(e, combined.detect(e.text)) for e in examples]
    return out


def main(argv: list[str] | None = None) -> int:
    """Print the detector's figures on the development and held-out sets."""
    parser = argparse.ArgumentParser(
        prog="python -m peerline.service.crisis", description="Score the crisis detector."
    )
    parser.add_argument("--evaluate", action="store_true", help="score the labelled sets")
    parser.add_argument("--dev", type=Path, default=DEV_FILE, help="development set")
    parser.add_argument("--heldout", type=Path, default=HELDOUT_FILE, help="held-out set")
    parser.add_argument("--phrases", help="a coordinator's extra phrase file to include")
    parser.add_argument("--errors", action="store_true", help="list every message scored wrong")
    parser.add_argument("--model", type=Path, help="a model file (default: the packaged one)")
    parser.add_argument("--no-dev", action="store_true", help="score the held-out set only")
    parser.add_argument(
        "--bursts", action="store_true", help="score the bursts: texts alone, then read together"
    )
    args = parser.parse_args(argv)
    if not args.evaluate:
        parser.print_help()
        return 2
    if args.bursts:
        return score_bursts(args.phrases, args.model, args.no_dev, args.errors)
    detector = CrisisDetector.load(args.phrases, model=False)
    model = crisis_model.load(str(args.model) if args.model else None)
    in_use = "phrases + model" if CrisisDetector.load().model is not None else "phrases alone"
    print(f"the line runs: {in_use}")
    sets = (
        [("held-out", args.heldout)]
        if args.no_dev
        else [
            ("development", args.dev),
            ("held-out", args.heldout),
        ]
    )
    for name, path in sets:
        if not path.exists():
            print(f"== {name}: {path} not found (run from the repository root)")
            continue
        examples = load(path)
        for layer, results in layers(detector, model, examples).items():
            title = f"{name} ({path}, sha256 {sha256(path)[:12]}), {layer}"
            print(report(title, results, args.errors and layer == in_use))
            print()
    return 0


def score_bursts(phrases: str | None, model: Path | None, no_dev: bool, errors: bool) -> int:
    """Print the burst sets' figures: each text read alone, and the texts as the line reads
    them."""
    detector = CrisisDetector.load(phrases, model=False)
    detector.model = crisis_model.load(str(model) if model else None)
    paths = [("held-out bursts", BURSTS_HELDOUT_FILE)]
    if not no_dev:
        paths.insert(0, ("development bursts", BURSTS_FILE))
    for name, path in paths:
        if not path.exists():
            print(f"== {name}: {path} not found (run from the repository root)")
            continue
        bursts = load_bursts(path)
        for way, read in (("each text alone", each_alone), ("read together", as_the_line_reads)):
            results = [(b.example, read(detector, b.texts)) for b in bursts]
            title = f"{name} ({path}, sha256 {sha256(path)[:12]}), {way}"
            print(report(title, results, errors and way == "read together"))
            print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
