"""Print the crisis check's figures on labelled files at each gate and threshold.

Run it against the detector of any commit to see how that detector would have done on writing
it never saw (session 15 chose the gate and the threshold this way, docs/crisis.md):

    git worktree add /tmp/wt 49ab2dd
    PYTHONPATH=/tmp/wt python scripts/crisis_grid.py FILE.yaml ... [--asks all|words:8|now]

Only the detector's public parts it has had since session 12 are used (`CrisisDetector.load`,
`detect`, the model's `gate` and `threshold`, `crisis_model.gate_asks`), so an older package
on PYTHONPATH answers as it stood then.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from peerline.service import crisis_model
from peerline.service.crisis import CrisisDetector
from peerline.service.crisis_eval import load


def main(argv: list[str] | None = None) -> int:
    """Print recall and false alarms for each gate and threshold on the files given."""
    parser = argparse.ArgumentParser(prog="python scripts/crisis_grid.py")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--gates", default="0.05,0.1,0.2,0.3,0.4")
    parser.add_argument("--thresholds", default="0.6,0.65,0.7,0.75,0.8")
    parser.add_argument(
        "--asks",
        default="now",
        help="which phrase hits the gate asks: now (the package's rule), all, words:N, "
        "or words:N:cat,cat (those categories never)",
    )
    args = parser.parse_args(argv)
    examples = [e for path in args.files for e in load(path)]
    detector = CrisisDetector.load()
    model = detector.model
    if model is None:
        print("no model in this package", file=sys.stderr)
        return 1
    if args.asks == "all":
        crisis_model.gate_asks = lambda norm, category: True
    elif args.asks.startswith("words:"):
        # words:N or words:N:category,category (those never asked about)
        _, least_text, *never = args.asks.split(":")
        least, spared = int(least_text), set(",".join(never).split(",")) - {""}
        crisis_model.gate_asks = lambda norm, category: (
            category not in spared and crisis_model.word_count(norm) >= least
        )
    crisis = sum(e.label for e in examples)
    safe = len(examples) - crisis
    print(
        f"{len(examples)} messages ({crisis} crisis, {safe} safe); the package ships threshold "
        f"{model.threshold:.2f}, gate {model.gate:.2f}; the gate asks: {args.asks}"
    )
    for gate in (float(g) for g in args.gates.split(",")):
        cells = []
        for threshold in (float(t) for t in args.thresholds.split(",")):
            # The model is a frozen dataclass; the grid tries values it was not written with.
            object.__setattr__(model, "gate", gate)
            object.__setattr__(model, "threshold", threshold)
            found = alarms = 0
            for example in examples:
                hit = detector.detect(example.text).matched
                found += hit and example.label
                alarms += hit and not example.label
            rates = f"{found / crisis:.3f} / {alarms / safe:5.1%}"
            cells.append(f"t {threshold:.2f}: {rates} ({found}, {alarms})")
        print(f"gate {gate:.2f}  " + "  ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
