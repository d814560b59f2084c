"""Fresh long sets written since session 21, each scored once and then spent.

A writer told to open nothing of the project wrote each set to the brief of the sets before it
(600 messages: 300 crisis, 25 a category, and 300 near misses; half Spanish). Each was kept
read-only outside the repository, copied in byte for byte and scored once
(`python -m peerline.service.crisis --evaluate --no-dev --errors --heldout FILE`, verbatim in
docs/); its figures then are floors the line must keep. A set that changes silently measures
nothing: each file's SHA-256 is recorded here.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from peerline.service.crisis import CrisisDetector
from peerline.service.crisis_eval import load, run, score

HERE = Path(__file__).parent
# The twenty-first set, scored at a543f95 (the line as session 20 left it):
# docs/crisis_heldout_run_set21.txt.
SET21 = HERE / "crisis_heldout21.yaml"

#: Each set's SHA-256 as written, and the crisis messages found and near misses alarmed (of
#: 300 each) when it was scored.
LATER_SETS = {
    SET21: ("84e9ff335abc2985415c457827fd18e70d08061cc9a2ffa2626dcf092c3728df", (290, 16)),
}


@pytest.fixture(scope="module")
def detector() -> CrisisDetector:
    return CrisisDetector.load()


@pytest.mark.parametrize("path", list(LATER_SETS), ids=lambda p: p.stem)
def test_a_later_set_is_guarded(path: Path) -> None:
    sha, _ = LATER_SETS[path]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha, (
        f"{path.name} changed: record its new SHA-256 and say why in docs/crisis.md"
    )
    items = load(path)
    assert len(items) == 600 and sum(e.label for e in items) == 300
    assert {e.split for e in items} == {"holdout"}


@pytest.mark.parametrize("path", list(LATER_SETS), ids=lambda p: p.stem)
def test_a_later_sets_figures_as_recorded(detector: CrisisDetector, path: Path) -> None:
    _, (found, false_alarms) = LATER_SETS[path]
    s = score((e, d.matched) for e, d in run(detector, load(path)))
    print(f"\n{path.name}: found {s.tp} of {s.tp + s.fn}, false alarms {s.fp} of {s.fp + s.tn}")
    assert s.tp >= found
    assert s.fp <= false_alarms
