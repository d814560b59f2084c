"""The statistical layer beside the crisis phrases: TF-IDF of letter n-grams, logistic regression.

Trained with scikit-learn on the development set only (``python -m
peerline.service.crisis_train``) and shipped as ``crisis_model.json.gz`` next to this module:
for each letter n-gram its inverse document frequency and its weight, a bias and the threshold
chosen by cross-validation. Inference here is the same arithmetic in plain Python, so nothing
is downloaded or imported beyond the standard library at run time.

Features are the two- to five-letter pieces of each word of the normalised message, a word
padded by a space each side, so a misspelling still shares most of its pieces with the word
it misspells.
"""

from __future__ import annotations

import gzip
import json
import math
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from peerline.service.crisis_text import BOUNDARY, normalise

MODEL_FILE = "crisis_model.json.gz"
PIECES = (2, 5)


def features(norm: str) -> list[str]:
    """Return the letter n-grams of a normalised message (repeats kept: they are counted)."""
    low, high = PIECES
    found: list[str] = []
    for word in norm.split():
        if word == BOUNDARY:
            continue
        padded = f" {word} "
        for n in range(low, high + 1):
            found.extend(padded[i : i + n] for i in range(max(1, len(padded) - n + 1)))
    return found


@dataclass(frozen=True)
class Model:
    """A logistic regression over sublinear, L2-normalised TF-IDF of `features`."""

    # feature -> (inverse document frequency, weight)
    terms: dict[str, tuple[float, float]]
    bias: float
    threshold: float

    def probability(self, text: str) -> float:
        """Return the modelled probability that a message is a crisis message."""
        squares = 0.0
        dot = 0.0
        for feature, count in Counter(features(normalise(text))).items():
            term = self.terms.get(feature)
            if term is None:
                continue
            value = (1.0 + math.log(count)) * term[0]
            squares += value * value
            dot += value * term[1]
        z = self.bias + (dot / math.sqrt(squares) if squares else 0.0)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def alarms(self, text: str) -> bool:
        """Say whether the model alone would raise the alarm."""
        return self.probability(text) >= self.threshold


def from_json(data: dict[str, object]) -> Model:
    """Build a model from the shipped file's data."""
    raw = data["terms"]
    if not isinstance(raw, dict):
        raise ValueError("crisis model: terms must be a mapping")
    terms = {str(f): (float(v[0]), float(v[1])) for f, v in raw.items()}
    return Model(terms, float(data["bias"]), float(data["threshold"]))  # type: ignore[arg-type]


def read(path: Path) -> dict[str, object]:
    """Read a model file, gzipped or plain JSON."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    data = json.loads(raw.decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"crisis model: {path} must hold a mapping")
    return data


def load(path: str | None = None) -> Model | None:
    """Return the packaged model (or the one at `path`), or None if there is none."""
    if path is not None:
        return from_json(read(Path(path)))
    packaged = resources.files("peerline.service").joinpath(MODEL_FILE)
    if not packaged.is_file():
        return None
    data = json.loads(gzip.decompress(packaged.read_bytes()).decode("utf-8"))
    return from_json(data)
