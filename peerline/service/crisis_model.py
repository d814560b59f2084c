"""The statistical layer beside the crisis phrases: TF-IDF of words and letter n-grams, regression.

Trained with scikit-learn on the development set only (``python -m
peerline.service.crisis_train``) and shipped as ``crisis_model.json.gz`` next to this module:
for each letter n-gram its inverse document frequency and its weight, a bias and the threshold
chosen by cross-validation, and a second, multinomial regression over the same terms that names
the category of a message only this layer flags. Inference here is the same arithmetic in plain
Python, so nothing is downloaded or imported beyond the standard library at run time.

Features are the two- to five-letter pieces of each word of the normalised message, a word
padded by a space each side, so a misspelling still shares most of its pieces with the word
it misspells, and the words and pairs of neighbouring words of each clause (chosen over letter
pieces alone on the second held-out set, docs/crisis.md).
"""

from __future__ import annotations

import gzip
import json
import math
import operator
from array import array
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from peerline.service.crisis_text import BOUNDARY, normalise

MODEL_FILE = "crisis_model.json.gz"
PIECES = (2, 5)
#: The model alone does not alarm on fewer words: two words hold too few features to judge
#: ("whats up", "de nada" read as crisis), and short crisis messages are the phrases' ground.
MIN_WORDS = 3


def word_count(norm: str) -> int:
    """Return how many words a normalised message holds (boundaries not counted)."""
    return sum(1 for word in norm.split() if word != BOUNDARY)


# Words repeat (a few thousand make most texts); each cached word holds its letter pieces, about
# 2 kB, so 50,000 (the size before) let a long-running process grow by some 95 MB.
@lru_cache(maxsize=4096)
def _word_features(word: str) -> tuple[str, ...]:
    """Return one word's letter n-grams (padded by a space each side) and the word itself."""
    low, high = PIECES
    padded = f" {word} "
    found = [
        padded[i : i + n] for n in range(low, high + 1) for i in range(max(1, len(padded) - n + 1))
    ]
    found.append(f"w:{word}")
    return tuple(found)


def features(norm: str) -> list[str]:
    """Return the letter n-grams, words and word pairs of a normalised message (repeats kept)."""
    found: list[str] = []
    previous = ""
    for word in norm.split():
        if word == BOUNDARY:
            previous = ""
            continue
        found.extend(_word_features(word))
        if previous:
            found.append(f"b:{previous}_{word}")
        previous = word
    return found


@dataclass(frozen=True)
class Model:
    """A logistic regression over sublinear, L2-normalised TF-IDF of `features`."""

    # feature -> (inverse document frequency, weight)
    terms: dict[str, tuple[float, float]]
    bias: float
    threshold: float
    # The category regression: category names, their biases, and feature -> one weight each.
    categories: tuple[str, ...] = ()
    category_bias: tuple[float, ...] = ()
    # feature -> one weight per category, as C doubles: a tuple of float objects per feature
    # held some 10 MB more in every web worker and job.
    category_terms: Mapping[str, Sequence[float]] = field(default_factory=dict)

    def probability(self, text: str) -> float:
        """Return the modelled probability that a message is a crisis message."""
        return self.probability_of_norm(normalise(text))

    def probability_of_norm(self, norm: str) -> float:
        """Return `probability` of a message already normalised (`crisis_text.normalise`)."""
        dot, squares, _ = self._pass(norm)
        return self._probability(dot, squares)

    def _pass(self, norm: str) -> tuple[float, float, list[tuple[str, float]]]:
        """Return the dot product with the weights, the squared length and each known term's
        value, of a message's TF-IDF before it is normalised."""
        # One pass: the dot product and the vector's length together (the check runs on every
        # text, so this is the hot loop).
        terms = self.terms
        known: list[tuple[str, float]] = []
        squares = dot = 0.0
        for feature, count in Counter(features(norm)).items():
            term = terms.get(feature)
            if term is None:
                continue
            value = term[0] if count == 1 else (1.0 + math.log(count)) * term[0]
            squares += value * value
            dot += value * term[1]
            known.append((feature, value))
        return dot, squares, known

    def _probability(self, dot: float, squares: float) -> float:
        z = self.bias + (dot / math.sqrt(squares) if squares else 0.0)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def alarms(self, text: str) -> bool:
        """Say whether the model alone would raise the alarm (never under `MIN_WORDS` words)."""
        return self.alarms_on_norm(normalise(text))

    def alarms_on_norm(self, norm: str) -> bool:
        """Say `alarms` of a message already normalised."""
        return word_count(norm) >= MIN_WORDS and self.probability_of_norm(norm) >= self.threshold

    def category(self, text: str) -> str | None:
        """Return the category the category regression finds likeliest, or None without one."""
        return self.category_of_norm(normalise(text))

    def category_of_norm(self, norm: str) -> str | None:
        """Return `category` of a message already normalised."""
        if not self.categories:
            return None
        _, squares, known = self._pass(norm)
        return self._category_of(self._normalised(known, squares))

    def verdict_of_norm(self, norm: str) -> tuple[bool, str | None]:
        """Return `alarms_on_norm` and, on an alarm, `category_of_norm`, from one pass."""
        if word_count(norm) < MIN_WORDS:
            return False, None
        dot, squares, known = self._pass(norm)
        if self._probability(dot, squares) < self.threshold:
            return False, None
        if not self.categories:
            return True, None
        return True, self._category_of(self._normalised(known, squares))

    @staticmethod
    def _normalised(
        known: list[tuple[str, float]], squares: float
    ) -> Iterable[tuple[str, float]]:
        """Return the known terms' values divided by the vector's length (L2)."""
        length = math.sqrt(squares)
        return ((f, v / length) for f, v in known) if length else ()

    def _category_of(self, vector: Iterable[tuple[str, float]]) -> str:
        """Return the likeliest category for an L2-normalised TF-IDF vector."""
        values: list[float] = []
        rows: list[Sequence[float]] = []
        for feature, value in vector:
            row = self.category_terms.get(feature)
            if row:
                values.append(value)
                rows.append(row)
        # One column of weights per category, summed in C (a loop per weight in Python took
        # most of a millisecond for a long message), in the same order from the same bias.
        columns = zip(*rows, strict=True) if rows else ((),) * len(self.category_bias)
        scores = [
            sum(map(operator.mul, values, column), bias)
            for bias, column in zip(self.category_bias, columns, strict=False)
        ]
        return self.categories[max(range(len(scores)), key=scores.__getitem__)]


def from_json(data: dict[str, object]) -> Model:
    """Build a model from the shipped file's data."""
    raw = data["terms"]
    if not isinstance(raw, dict):
        raise ValueError("crisis model: terms must be a mapping")
    terms = {str(f): (float(v[0]), float(v[1])) for f, v in raw.items()}
    named = data.get("categories") or {}
    if not isinstance(named, dict):
        raise ValueError("crisis model: categories must be a mapping")
    weights = named.get("terms") or {}
    return Model(
        terms,
        float(data["bias"]),  # type: ignore[arg-type]
        float(data["threshold"]),  # type: ignore[arg-type]
        tuple(str(c) for c in named.get("names", ())),
        tuple(float(b) for b in named.get("bias", ())),
        {str(f): array("d", (float(w) for w in v)) for f, v in weights.items()},
    )


def read(path: Path) -> dict[str, object]:
    """Read a model file, gzipped or plain JSON."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    data = _parse(raw)
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
    data = _parse(gzip.decompress(packaged.read_bytes()))
    if not isinstance(data, dict):
        raise ValueError(f"crisis model: {MODEL_FILE} must hold a mapping")
    return from_json(data)


def _parse(raw: bytes) -> object:
    """Parse a model file's JSON, one float object per distinct number written."""
    # The weights are rounded, so most repeat: a float object for each of some 300,000 numbers
    # left every process about 10 MB larger, scattered where it could not be given back.
    seen: dict[str, float] = {}
    return json.loads(raw.decode("utf-8"), parse_float=lambda s: seen.setdefault(s, float(s)))
