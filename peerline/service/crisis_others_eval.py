"""Score what the line answers to texts that name another person, by what they tell:
``python -m peerline.service.crisis_others_eval FILE.yaml [--errors]``.

Each text is read alone as the runtime reads a first text (`CrisisDetector.detect`, then
`answer`), and the answer is one of:

- ``own``: crisis resources for the writer, the flag raised;
- ``theirs+flag``: the someone-else text (what to do if they are in danger now), flag raised;
- ``theirs``: the someone-else text, no flag;
- ``nothing``: an ordinary answer.

The file is YAML, ``items: [{text, label, language}]`` with the labels ``other_now`` (another
person in danger now: ``theirs+flag`` is right, ``theirs`` half right), ``other_concern``
(another person's risk, not now: ``theirs`` or ``nothing``), ``own_and_other`` (the writer's
own crisis beside another person: ``own``) and ``everyday_other`` (everyday words: ``nothing``).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import yaml

from peerline.service.crisis import CrisisDetector

ANSWERS = ("own", "theirs+flag", "theirs", "nothing")
#: The answers each label should get (the first is the best).
RIGHT = {
    "other_now": ("theirs+flag", "theirs"),
    "other_concern": ("theirs", "nothing"),
    "own_and_other": ("own",),
    "everyday_other": ("nothing",),
}


def answer_of(detector: CrisisDetector, text: str) -> str:
    """Return what the line answers to `text` read alone (one of `ANSWERS`)."""
    found, worried = detector.answer(text, detector.detect(text))
    if found.matched:
        return "theirs+flag" if worried else "own"
    return "theirs" if worried else "nothing"


def load_items(path: Path) -> list[dict[str, str]]:
    """Read a file of texts naming another person (``items: [{text, label, language}]``)."""
    items: list[dict[str, str]] = yaml.safe_load(path.read_text(encoding="utf-8"))["items"]
    return items


def tally(
    detector: CrisisDetector, items: list[dict[str, str]]
) -> tuple[Counter[tuple[str, str, str]], list[tuple[str, str, str]]]:
    """Return how many texts of each (label, language) got each answer, and the wrong ones
    as (label, answer, text)."""
    table: Counter[tuple[str, str, str]] = Counter()
    wrong: list[tuple[str, str, str]] = []
    for item in items:
        label, language, text = item["label"], item["language"], item["text"]
        said = answer_of(detector, text)
        table[label, language, said] += 1
        if said not in RIGHT[label]:
            wrong.append((label, said, text))
    return table, wrong


def main(argv: list[str] | None = None) -> int:
    """Print a table of answers by label and language, and the wrong ones if asked."""
    parser = argparse.ArgumentParser(prog="python -m peerline.service.crisis_others_eval")
    parser.add_argument("file", type=Path)
    parser.add_argument("--errors", action="store_true", help="print each wrong answer")
    args = parser.parse_args(argv)
    table, wrong = tally(CrisisDetector.load(), load_items(args.file))
    print(f"{'label':<16}{'lang':<6}" + "".join(f"{a:>13}" for a in ANSWERS) + f"{'right':>9}")
    for label, right in RIGHT.items():
        for language in ("en", "es", "all"):
            row = [
                sum(table[label, lang, a] for lang in ("en", "es") if language in (lang, "all"))
                for a in ANSWERS
            ]
            ok = sum(n for a, n in zip(ANSWERS, row, strict=True) if a in right)
            total = sum(row)
            share = f"{ok / total:.2f}" if total else "-"
            print(f"{label:<16}{language:<6}" + "".join(f"{n:>13}" for n in row) + f"{share:>9}")
    if args.errors:
        for label, said, text in sorted(wrong):
            print(f"{label:<16}{said:<12} {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
