"""The statistical layer beside the crisis phrases: TF-IDF of words and letter n-grams, regression.

Trained with scikit-learn on the development set and the spent later sets, never the held-out
set (``python -m peerline.service.crisis_train``), and shipped as ``crisis_model.json.gz`` next
to this module: for each letter n-gram its inverse document frequency and its weight, a bias and
the threshold chosen on fresh writing, and a second, multinomial regression over the same terms
that names the category of a message only this layer flags. Inference here is the same arithmetic
in plain Python, so nothing is downloaded or imported beyond the standard library at run time.

Features are the two- to five-letter pieces of each word of the normalised message, a word
padded by a space each side, so a misspelling still shares most of its pieces with the word
it misspells, and the words and pairs of neighbouring words of each clause (chosen over letter
pieces alone on the second held-out set, docs/crisis.md).
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import re
import sys
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial, reduce
from importlib import resources
from itertools import compress, repeat
from operator import add, itemgetter, lt, mul, sub
from pathlib import Path

from peerline.service.crisis_text import BOUNDARY, normalise

MODEL_FILE = "crisis_model.json.gz"
PIECES = (2, 5)
#: The model alone does not alarm on fewer words: two words hold too few features to judge
#: ("whats up", "de nada" read as crisis), and short crisis messages are the phrases' ground.
#: Three were too few as well once trained on session 8's set ("im not suicidal" scored 0.90);
#: at four, out of fold, 2 of 4,352 crisis messages fewer and the same false alarms.
MIN_WORDS = 4


# The gate (`Model.gate`) asks the model about a phrase hit in a message of at least
# GATE_MIN_WORDS words outside an attempt under way. On writers the model never saw (session
# 12), the crisis messages a gate lost were mostly short ("quiero dormir para siempre", "thank
# you i want to die": a few words hold too few features for the model to overrule them) or an
# attempt told plainly ("car is running in the garage with the door shut", p 0.14). Session 15
# read it on writing neither the phrases nor the model had seen (docs/crisis.md): places and
# means asked about too spared 12 false alarms of a place in a figure of speech ("on the ledge
# of a breakdown lol finals week") for 2 crisis messages lost; an attempt asked about lost "the
# bath water is red. i'm so tired" for one false alarm spared, so an attempt is never asked.
GATE_MIN_WORDS = 8
UNGATED = frozenset({"attempt"})


# A request for a person says nothing of a crisis either way, yet near misses ask it so often
# ("can i talk to someone about my exam stress") that the model reads it as everyday: "can i
# talk to someone, i want to kill myself" scored 0.23 and the gate dropped the phrase (found by
# hand, session 25). The gate asks about the message without it (`without_request`).
_PERSON = (
    r" (?:someone|somebody|anyone|anybody|a person|a real person|a human|a peer|alguien"
    r"|una persona|un humano)"
)
_REQUEST = re.compile(
    r"(?:"
    # A question asking for one, wherever it stands ("i feel like killing myself can i talk
    # to somebody"): "can i talk to someone", "can someone talk to me", "is anyone there".
    r"\b(?:(?:can|could|may) i (?:please |pls )?(?:talk|speak|chat|text) (?:to|with)"
    r"|(?:puedo|podria) hablar con)" + _PERSON + r"|\b(?:can|could|will|would)"
    r" (?:someone|somebody|anyone|anybody) (?:please |pls )?(?:talk|speak|text|chat) (?:to|with)"
    r" me|\b(?:is|are) (?:anyone|someone|anybody|somebody) (?:there|here|out there|available)"
    r"|\bhay alguien(?: (?:ahi|alli|disponible))?|\balguien (?:me )?puede (?:ayudarme|ayudar"
    r"|hablar conmigo)"
    # A plea for help put as a question (session 26, set 56: "me pueden ayudar, no le veo
    # salida a esto" 0.28): "me pueden ayudar", "can you help me", "can someone help".
    r"|\b(?:me )?(?:pueden|puedes|podrian|podrias|puede) ayudar(?:me)?"
    r"|\b(?:can|could|will|would) (?:you|u|someone|somebody|anyone|anybody) (?:please |pls )?help"
    r"(?: me)?"
    # ...or for a talk, with nobody named (the 57th set: "me ayudan? no le veo salida a nada",
    # "can we talk? i keep thinking about killing myself" 0.14): "me ayudan", "can we talk",
    # "podemos hablar", "are you there".
    r"|\bme (?:ayudan|ayudas|ayuda alguien)"
    r"|\b(?:are you|r u|you|u) (?:there|here|real)|\b(?:estas|estan|esta alguien) (?:ahi|alli)"
    # A need, only where a clause starts ("my mom said i need someone to watch me" is none):
    # "i need to talk to someone", "i need someone to talk to", "necesito hablar con alguien".
    r"|(?:^|\| )\s*(?:(?:hi|hey|hello|hola|please|pls|plz|porfa|por favor|so|um) )*"
    r"(?:(?:i )?(?:really |just )?(?:need|want|wanna|would like|d like) to (?:talk|speak|chat)"
    r" (?:to|with)|(?:i )?(?:really |just )?need|is there|(?:necesito|quiero) hablar con)"
    + _PERSON
    # ...and a plain plea where a clause starts: "i need help", "please help me", "ayudenme".
    + r"|(?:^|\| )\s*(?:(?:hi|hey|hello|hola|please|pls|plz|porfa|por favor|so|um) )*"
    r"(?:(?:i )?(?:really )?need (?:some )?help|help me|help|necesito (?:una )?ayuda|ayuda"
    r"|ayudame|ayudenme|auxilio"
    # ...or a need or a question to talk, nobody named: "i need to talk", "necesito hablar",
    # "can we talk", "podemos hablar" ("...or can i text about stress" is no request).
    # Each ends its clause ("can i text the line from abroad" asks about the line).
    r"|(?:(?:i )?(?:really |just )?need to (?:talk|vent|speak)|(?:necesito|quiero) (?:hablar"
    r"|desahogarme)|(?:can|could) (?:we|i|u) (?:please |pls )?(?:talk|chat|text)"
    r"(?: (?:to|with) (?:you|u))?|(?:podemos|puedo|podriamos) hablar)"
    r"(?=(?: (?:now|rn|please|pls|plz|porfa|ahora|ya))* ?(?:\||$)))"
    + r")(?: (?:to talk to|to speak to|con quien hablar|para hablar|right now|now|ahora|ya"
    r"|please|pls|plz|porfa|por favor))*\b"
)


# One of these is in every request `_REQUEST` finds: most texts are spared the search.
_REQUEST_WORDS = (
    "alguien", "some", "any", "person", "help", "ayud", "auxilio", "talk", "chat", "text",
    "hablar", "desahog", "there", "here", "real", "ahi", "alli", "vent", "speak",
)


def without_request(norm: str) -> str:
    """Return a normalised message without its request for a person to talk to, in its first
    two clauses: a question asking for one anywhere there ("...killing myself can i talk to
    somebody"), a need for one where a clause starts ("i need someone to talk to | ..."; "my
    mom said i need someone to watch me" is none); since session 26 also a plea for help
    ("me pueden ayudar", "ayuda") and a talk asked for with nobody named, ending its clause
    ("can we talk |", "necesito hablar |"). One asked at the end of a story ("...they got him
    down | im shaken | can i talk to someone") is left for the model to read."""
    if not any(word in norm for word in _REQUEST_WORDS):
        return norm
    found = _REQUEST.search(norm)
    if found is None or norm.count(BOUNDARY, 0, found.start()) > 1:
        return norm
    return f"{norm[: found.start()]} {norm[found.end() :]}"


# A short answer opening a message ("creo que no | quiero dormir y no despertar", a reply in a
# chat) says nothing of a crisis either, yet the model reads a denial in it: 0.27, and the gate
# dropped the phrase (a tester, session 27; "no se | creo que no | solo quiero dormir y no
# despertar a veces" 0.22). The gate asks again without such clauses (`without_reply`).
_REPLY = re.compile(
    r"^(?:\s*(?:(?:no|nah|nope|naw|not really|idk|i dont know|dunno|i dont think so|i guess"
    r"|i guess so|maybe|yes|yeah|yea|yep|ok|okay|well|um+|hm+|honestly|tbh|si|pues|bueno"
    r"|la verdad|creo que no|creo que si|no se|no lo se|nose|no sé|tal vez|quizas|quiza)"
    r"(?: (?:so|then|pues|idk|tbh|honestly|la verdad))*)\s*\|)+"
)


def without_reply(norm: str) -> str:
    """Return a normalised message without the short answers that open it ("no se | creo que
    no | ..."), or the message itself when nothing follows them."""
    found = _REPLY.match(norm)
    if found is None or not norm[found.end() :].strip(" |"):
        return norm
    return norm[found.end() :].strip()


def gate_asks(norm: str, category: str | None) -> bool:
    """Say whether a phrase hit of `category` in a normalised message waits on the model."""
    return category not in UNGATED and word_count(norm) >= GATE_MIN_WORDS


def word_count(norm: str) -> int:
    """Return how many words a normalised message holds (boundaries not counted)."""
    return sum(1 for word in norm.split() if word != BOUNDARY)


def letter_words(norm: str) -> int:
    """Return how many words of letters only a normalised message holds (a burst's measure
    for `MIN_WORDS`: "t0-22" is no word there)."""
    return sum(1 for word in norm.split() if word.isalpha())


def _pieces(word: str) -> tuple[str, ...]:
    """Return one word's letter n-grams (padded by a space each side) and the word itself."""
    low, high = PIECES
    padded = f" {word} "
    found = [
        padded[i : i + n] for n in range(low, high + 1) for i in range(max(1, len(padded) - n + 1))
    ]
    found.append(f"w:{word}")
    return tuple(found)


# Words repeat (a few thousand make most texts); each cached word holds its letter pieces, about
# 2 kB, so 50,000 (the size before) let a long-running process grow by some 95 MB. A model
# scores words through its own cache of rows (`Model._word_rows`), a tenth of the size.
_word_features = lru_cache(maxsize=4096)(_pieces)
#: Words whose known rows a model keeps (each about 200 bytes: references to the index's ints;
#: the most common thousand words make most texts, and the web worker has little room under 120 MB).
WORD_ROWS_CACHED = 1024
#: In the worker, where every text's check runs (`Model.spend_memory_on_speed`).
WORKER_WORD_ROWS_CACHED = 4096
#: Longer words are not kept: a made-up word of a thousand letters holds over a thousand rows.
CACHED_WORD_LETTERS = 24
# A packed row (`Model.spend_memory_on_speed`) holds each category's weight, plus an offset
# that makes it positive (under 2**16: the weights are shorts), in a field of this many bits;
# the sum over a message's rows of weight x packed row holds each category's sum in its own
# field. The weights are non-negative, in 2**-24ths of a term's sublinear count times its idf
# (an idf under 16): a 1,600-character text's some 10,000 terms keep a field under 2**58, and a
# sum that could reach 2**63 is not used (`Model._clear_lead`).
_FIELD_BITS = 64
_QUANTUM = float(1 << 24)


def _words_and_pairs(norm: str) -> Iterator[tuple[str, str | None]]:
    """Yield each word of a normalised message with the feature of the pair it ends (none
    after a clause boundary): the one reading `features` and the model's scoring share."""
    previous = ""
    for word in norm.split():
        if word == BOUNDARY:
            previous = ""
            continue
        yield word, (f"b:{previous}_{word}" if previous else None)
        previous = word


def features(norm: str) -> list[str]:
    """Return the letter n-grams, words and word pairs of a normalised message (repeats kept)."""
    found: list[str] = []
    for word, pair in _words_and_pairs(norm):
        found.extend(_word_features(word))
        if pair is not None:
            found.append(pair)
    return found


@dataclass(frozen=True)
class Model:
    """A logistic regression over sublinear, L2-normalised TF-IDF of `features`."""

    # feature -> its row in the arrays below (one int per term, no float objects: see `load`)
    index: Mapping[str, int]
    idf: Sequence[float]  # inverse document frequency per row, C doubles
    weight: Sequence[float]  # the alarm regression's weight per row, C doubles
    bias: float
    threshold: float
    # The category regression: category names, their biases, and per category one column of
    # weights in hundredths (C shorts, row by row; the weights are rounded to two decimals).
    categories: tuple[str, ...] = ()
    category_bias: tuple[float, ...] = ()
    category_cents: tuple[Sequence[int], ...] = ()
    # A phrase hit the gate asks about (`gate_asks`) stands where the probability is at least
    # this: `crisis_train.FRESH_GATE` since session 15; 0 keeps every hit.
    gate: float = 0.0
    # Where a phrase matched and an everyday sense dropped it (an idiom, a kitchen knife; never
    # a negation or someone else), the model is heard only from this probability
    # (`crisis_train`); 1 never.
    overrule: float = 1.0
    # Worked out from the fields above (`__post_init__`): per row, the squared idf and the idf
    # times the weight, which are the very products a term seen once adds to the sums; and a
    # bounded cache of each word's known rows.
    _once: tuple[Sequence[float], Sequence[float]] = field(init=False, repr=False, compare=False)
    _word_rows: Callable[[str], tuple[int, ...]] = field(init=False, repr=False, compare=False)
    # Once `spend_memory_on_speed` is asked: each row's category weights packed in one integer,
    # what was added to each weight to make it positive, the largest weight's size and each
    # row's idf in quanta (rounded, and not); and a bounded cache of the packed sums of a word's
    # rows (`_packed_rows`).
    _packed: tuple[Sequence[int], int, int, float, Sequence[int], Sequence[float]] | None = field(
        init=False, repr=False, compare=False, default=None
    )
    _word_packed: Callable[[str], tuple[int, int]] | None = field(
        init=False, repr=False, compare=False, default=None
    )
    # The last message's terms and sums (`_scored`): the check asks the gate, then the verdict,
    # of the same message. One tuple, swapped whole, so threads never see half of one.
    _last: tuple[str | None, tuple[Counter[int], int, float, float]] = field(
        init=False, repr=False, compare=False, default=(None, (Counter(), 0, 0.0, 0.0))
    )

    def __post_init__(self) -> None:
        """Precompute the products of a term seen once and start the word cache."""
        idf = self.idf
        once = (array("d", map(mul, idf, idf)), array("d", map(mul, idf, self.weight)))
        object.__setattr__(self, "_once", once)
        # Over the index, not the model: no reference cycle keeps a replaced model alive.
        rows = lru_cache(maxsize=WORD_ROWS_CACHED)(partial(_rows_of_word, self.index))
        object.__setattr__(self, "_word_rows", rows)

    def spend_memory_on_speed(self) -> None:
        """Keep more words' rows, and pack each row's category weights into one integer so
        that naming a category adds up all twelve at once (`_clear_lead`): about 5 MB, worth
        it where every text is read (the worker), not in the web worker (no category is used
        there, and its memory is short)."""
        if self._word_rows.cache_info().maxsize != WORKER_WORD_ROWS_CACHED:  # type: ignore[attr-defined]
            rows = lru_cache(maxsize=WORKER_WORD_ROWS_CACHED)(partial(_rows_of_word, self.index))
            object.__setattr__(self, "_word_rows", rows)
        columns = self.category_cents
        if self._packed is not None or len(columns) < 2 or not len(columns[0]) or min(self.idf) < 0:
            return  # (a negative idf would make a value negative, and a field borrow)
        offset = -min(0, *(min(column) for column in columns))
        most = max(offset, *(max(column) for column in columns))
        # Row by row, each category's weight in a 64-bit field: the fields laid out in C, then
        # each row read as one integer.
        fields = array("Q", bytes(8 * len(columns) * len(columns[0])))
        for k, column in enumerate(columns):
            fields[k :: len(columns)] = array("Q", (cents + offset for cents in column))
        if sys.byteorder == "big":
            fields.byteswap()  # each row is read as little-endian fields
        raw, width = memoryview(fields).cast("B"), 8 * len(columns)
        packed = [
            int.from_bytes(raw[at : at + width], "little") for at in range(0, len(raw), width)
        ]
        largest_bias = max(map(abs, self.category_bias))
        # Each row's idf in quanta: a term seen once adds that many times its packed weights.
        idf_quanta = array("d", (value * _QUANTUM for value in self.idf))
        quanta = array("q", map(round, idf_quanta))  # C longs: a list of ints is 1 MB more
        object.__setattr__(
            self, "_packed", (packed, offset, most, largest_bias, quanta, idf_quanta)
        )
        # A word's rows added up once (its packed sum and its quanta): most of a message's rows
        # are its words' letter pieces, and people use the same few thousand words.
        object.__setattr__(
            self,
            "_word_packed",
            lru_cache(maxsize=WORKER_WORD_ROWS_CACHED)(
                partial(_packed_word, packed, quanta, self._word_rows)
            ),
        )

    def probability(self, text: str) -> float:
        """Return the modelled probability that a message is a crisis message."""
        return self.probability_of_norm(normalise(text))

    def probability_of_norm(self, norm: str) -> float:
        """Return `probability` of a message already normalised (`crisis_text.normalise`)."""
        _, _, dot, squares = self._scored(norm)
        return self._probability(dot, squares)

    def _scored(self, norm: str) -> tuple[Counter[int], int, float, float]:
        """Return `_terms` and `_sums` of a message (the last one's kept)."""
        last = self._last
        if last[0] == norm:
            return last[1]
        counts, occurrences = self._terms(norm)
        scored = (counts, occurrences, *self._sums(counts, occurrences))
        object.__setattr__(self, "_last", (norm, scored))
        return scored

    def _terms(self, norm: str) -> tuple[Counter[int], int]:
        """Return the rows of a message's known features with their counts, in the order
        `features` first gives them, and how many known features it holds in all."""
        index, word_rows = self.index, self._word_rows
        rows: list[int] = []
        # `_words_and_pairs` written out: this runs on every text, and a generator's step
        # costs as much as a lookup.
        previous = ""
        for word in norm.split():
            if word == BOUNDARY:
                previous = ""
                continue
            if len(word) <= CACHED_WORD_LETTERS:
                rows += word_rows(word)
            else:
                rows += _rows_of_word(index, word)
            if previous:
                row = index.get(f"b:{previous}_{word}")
                if row is not None:
                    rows.append(row)
            previous = word
        return Counter(rows), len(rows)

    def _sums(self, counts: Counter[int], occurrences: int) -> tuple[float, float]:
        """Return the dot product with the weights and the squared length of a message's TF-IDF.

        The check runs on every text, so this is the hot path: the products come from
        `_once` and are added up in C (`_add_up`), one by one in the order of the terms, so the
        sums are the very doubles a loop adding ``value * weight`` and ``value * value`` gives
        (`tests/test_crisis.py` keeps them equal). A term seen n > 1 times has the value
        ``_tf(n) * idf``, worked out as a loop would.
        """
        rows = list(counts)
        if not rows:
            return 0.0, 0.0
        pick = _getter(rows)
        dots, squares = pick(self._once[1]), pick(self._once[0])
        if occurrences > len(rows):
            dots, squares = list(dots), list(squares)
            idf, weight, log = self.idf, self.weight, math.log
            seen = list(counts.values())
            # The places of the terms seen more than once, picked out in C (most are seen once).
            for i in compress(range(len(seen)), map(lt, repeat(1), seen)):  # seen n > 1
                row, n = rows[i], seen[i]
                value = (1.0 + log(n)) * idf[row]  # `_tf`, inlined: a call costs more
                dots[i], squares[i] = value * weight[row], value * value
        return _add_up(dots), _add_up(squares)

    def _probability(self, dot: float, squares: float) -> float:
        z = self.bias + (dot / math.sqrt(squares) if squares else 0.0)
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    def alarms(self, text: str) -> bool:
        """Say whether the model alone would raise the alarm (never under `MIN_WORDS` words)."""
        return self.alarms_on_norm(normalise(text))

    def alarms_on_norm(self, norm: str) -> bool:
        """Say `alarms` of a message already normalised."""
        return word_count(norm) >= MIN_WORDS and self.probability_of_norm(norm) >= self.threshold

    def confirms_norm(self, norm: str, category: str | None, *, request_aside: bool = True) -> bool:
        """Say whether a phrase hit of `category` in a normalised message stands: the gate does
        not ask about it, or its probability is at least `gate`, with or without the message's
        request for a person to talk to (`request_aside`; `without_request`) and the short
        answers that open it (`without_reply`), which say nothing either way."""
        if not gate_asks(norm, category) or self.probability_of_norm(norm) >= self.gate:
            return True
        # Only a phrase the gate would drop is read again (the check stays fast).
        aside = without_reply(without_request(norm) if request_aside else norm)
        if aside == norm:
            return False
        return not gate_asks(aside, category) or self.probability_of_norm(aside) >= self.gate

    def category(self, text: str) -> str | None:
        """Return the category the category regression finds likeliest, or None without one."""
        return self.category_of_norm(normalise(text))

    def category_of_norm(self, norm: str) -> str | None:
        """Return `category` of a message already normalised."""
        if not self.categories:
            return None
        counts, _, _, squares = self._scored(norm)
        return self._category_of(counts, squares, norm)

    def verdict_of_norm(self, norm: str, threshold: float | None = None) -> tuple[bool, str | None]:
        """Return `alarms_on_norm` (at `threshold`, if given) and, on an alarm,
        `category_of_norm`, from one pass."""
        if word_count(norm) < MIN_WORDS:
            return False, None
        counts, _, dot, squares = self._scored(norm)
        if self._probability(dot, squares) < (self.threshold if threshold is None else threshold):
            return False, None
        if not self.categories:
            return True, None
        return True, self._category_of(counts, squares, norm)

    def _category_of(self, counts: Counter[int], squares: float, norm: str | None = None) -> str:
        """Return the likeliest category for a message's known rows (`_terms` of `norm`: the
        counts must be that message's, as `_scored` gives them)."""
        rows = list(counts)
        length = math.sqrt(squares)
        if self._packed is not None and norm is not None and rows and length:
            named = self._clear_lead(norm, counts, length)
            if named is not None:
                return named
        idf = self.idf
        values = [idf[row] if n == 1 else _tf(n) * idf[row] for row, n in counts.items()]
        if not length:
            rows, values = [], []
        values = [v / length for v in values]
        # One column of weights per category, gathered and summed in C (a loop per weight in
        # Python took most of a millisecond for a long message; dividing each weight by 100 in
        # its own pass, a third of the time), then the hundredths made whole once.
        gather = _getter(rows)
        scores = [
            bias + sum(map(mul, values, gather(cents))) / 100.0
            for bias, cents in zip(self.category_bias, self.category_cents, strict=True)
        ]
        return self.categories[max(range(len(scores)), key=scores.__getitem__)]

    def _clear_lead(self, norm: str, counts: Counter[int], length: float) -> str | None:
        """Return the category `_category_of` names when one leads by more than rounding could
        move it, else None (it is then worked out column by column).

        All categories are added up at once, in integers: each term's weight (its sublinear
        count times its idf) rounded to a quantum, times the row's packed weights. A term seen
        once adds its row's idf in quanta, so a word's rows are added up once and kept
        (`_packed_rows`); a term seen n > 1 times is brought from n times that to its own
        rounded weight. These sums, divided by the message's length, differ from the exact
        scores by at most a quantum per row times the largest weight over the length, and those
        by the last bits of their float additions: a lead wider than twice both is the lead the
        exact scores give.
        """
        if self._packed is None or self._word_packed is None:
            return None
        packed, offset, most, largest_bias, quanta, idf_quanta = self._packed
        word_packed, index = self._word_packed, self.index
        total = weights = 0
        for word, pair in _words_and_pairs(norm):  # the rows `_terms` reads
            if len(word) <= CACHED_WORD_LETTERS:
                part, part_weights = word_packed(word)
            else:
                part, part_weights = _packed_rows(packed, quanta, _rows_of_word(index, word))
            total += part
            weights += part_weights
            row = None if pair is None else index.get(pair)
            if row is not None:
                total += quanta[row] * packed[row]
                weights += quanta[row]
        # The terms seen more than once, picked out and brought to their weight in C (a loop
        # over them in Python took most of this method's time).
        seen = list(counts.values())
        repeated = list(map(lt, repeat(1), seen))  # seen n > 1
        rows, times = list(compress(counts, repeated)), list(compress(seen, repeated))
        tf = map(add, repeat(1.0), map(math.log, times))  # `_tf`, in C
        own = map(round, map(mul, tf, map(idf_quanta.__getitem__, rows)))
        extras = list(map(sub, own, map(mul, times, map(quanta.__getitem__, rows))))
        total += sum(map(mul, extras, map(packed.__getitem__, rows)))
        weights += sum(extras)
        n = len(seen)
        base, mask = offset * weights, (1 << _FIELD_BITS) - 1
        if weights * most >= 1 << (_FIELD_BITS - 1):
            return None  # a field could overflow into the next (never on a text of 1,600 chars)
        scale = _QUANTUM * 100.0 * length
        scores = [
            bias + (((total >> (k * _FIELD_BITS)) & mask) - base) / scale
            for k, bias in enumerate(self.category_bias)
        ]
        reach = most * (math.sqrt(n) + 1) / 100.0 + largest_bias + 1.0
        slack = n * most / _QUANTUM / 100.0 / length + (n + 4) * reach * 2.0**-50
        first, second = sorted(range(len(scores)), key=scores.__getitem__, reverse=True)[:2]
        if scores[first] - scores[second] > 2 * slack:
            return self.categories[first]
        return None


# Python 3.11's `sum` adds floats one by one in C as a loop would; from 3.12 it compensates for
# rounding (exact here: 2.0), which would move the last bits of a score, so `reduce` adds there.
_SUM_IS_A_LOOP = sum((1.0, 1e100, 1.0, -1e100), 0.0) == 0.0


def _add_up(values: Sequence[float]) -> float:
    """Return ``0.0 + values[0] + values[1] + ...``, added left to right."""
    return sum(values, 0.0) if _SUM_IS_A_LOOP else reduce(add, values, 0.0)


def _packed_rows(
    packed: Sequence[int], quanta: Sequence[int], rows: Sequence[int]
) -> tuple[int, int]:
    """Return the sum over `rows` (repeats counted) of each row's idf in quanta times its packed
    category weights, and the sum of those quanta."""
    picked = [quanta[row] for row in rows]
    return sum(map(mul, picked, map(packed.__getitem__, rows))), sum(picked)


def _packed_word(
    packed: Sequence[int],
    quanta: Sequence[int],
    rows_of: Callable[[str], tuple[int, ...]],
    word: str,
) -> tuple[int, int]:
    """Return `_packed_rows` of a word's rows."""
    return _packed_rows(packed, quanta, rows_of(word))


def _rows_of_word(index: Mapping[str, int], word: str) -> tuple[int, ...]:
    """Return the rows of a word's known features (`_pieces`), in order, repeats kept."""
    return tuple(row for row in map(index.get, _pieces(word)) if row is not None)


def _tf(count: int) -> float:
    """Return the sublinear term frequency of a term seen `count` times."""
    return 1.0 + math.log(count)


def _getter(rows: Sequence[int]) -> Callable[[Sequence[float]], Sequence[float]]:
    """Return `itemgetter` of the rows, always giving a tuple (`itemgetter` of one item gives
    the item, and of none is an error)."""
    if len(rows) > 1:
        return itemgetter(*rows)
    if rows:
        row = rows[0]
        return lambda values: (values[row],)
    return lambda values: ()


def from_json(data: Mapping[str, object]) -> Model:
    """Build a model from the trainer's data (`crisis_train.export`: numbers as floats)."""
    raw = data["terms"]
    if not isinstance(raw, dict):
        raise ValueError("crisis model: terms must be a mapping")
    index = {str(f): row for row, f in enumerate(raw)}
    named = data.get("categories") or {}
    if not isinstance(named, dict):
        raise ValueError("crisis model: categories must be a mapping")
    names = tuple(str(c) for c in named.get("names", ()))
    weights = named.get("terms") or {}
    columns = tuple(array("h", bytes(2 * len(index))) for _ in names)
    for feature, row_weights in weights.items():
        row = index[str(feature)]
        for column, w in zip(columns, row_weights, strict=True):
            column[row] = round(float(w) * 100)
    return Model(
        index,
        array("d", (float(v[0]) for v in raw.values())),
        array("d", (float(v[1]) for v in raw.values())),
        float(data["bias"]),  # type: ignore[arg-type]
        float(data["threshold"]),  # type: ignore[arg-type]
        names,
        tuple(float(b) for b in named.get("bias", ())),
        columns,
        float(data.get("gate", 0.0)),  # type: ignore[arg-type]
        float(data.get("overrule", 1.0)),  # type: ignore[arg-type]
    )


# The shipped file is gzipped JSON with a few values only: the terms as one string, one per
# line, and the numbers as little-endian integers in base64 (idf and weights in ten-thousandths,
# category weights in hundredths, as rounded by the trainer). A JSON number per weight made a
# float object each: 9 MB held by every process and a 17 MB peak while it was parsed.
FORMAT = "peerline-crisis-model/2"
SCALE = 10_000


def dumps(model: Model) -> bytes:
    """Return the shipped file's bytes (gzipped) for a model."""
    terms = sorted(model.index, key=model.index.__getitem__)
    if any("\n" in term for term in terms):
        raise ValueError("crisis model: a term holds a line break")
    data = {
        "format": FORMAT,
        # What it was fitted on is the trainer's to say (its `--spent` sets), not the file's.
        "about": "TF-IDF of words and letter n-grams + logistic regression (crisis_train)",
        "threshold": model.threshold,
        "gate": model.gate,
        "overrule": model.overrule,
        "bias": model.bias,
        "terms": "\n".join(terms),
        "idf": _b64("i", (round(v * SCALE) for v in model.idf)),
        "weight": _b64("i", (round(v * SCALE) for v in model.weight)),
        "categories": {
            "names": list(model.categories),
            "bias": list(model.category_bias),
            "cents": [_b64("h", column) for column in model.category_cents],
        },
    }
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return gzip.compress(payload, mtime=0)


def loads(raw: bytes) -> Model:
    """Return the model in a shipped file's bytes (`dumps`)."""
    data = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"crisis model: not a {FORMAT} file")
    terms = str(data.pop("terms")).split("\n")
    index = dict(zip(terms, range(len(terms)), strict=True))
    del terms
    named = data.get("categories") or {}
    columns = tuple(_array("h", str(c), len(index)) for c in named.get("cents", ()))
    return Model(
        index,
        # k / 10,000 is the double the trainer's four decimals read back as (exact division).
        array("d", map(SCALE.__rtruediv__, _array("i", str(data["idf"]), len(index)))),
        array("d", map(SCALE.__rtruediv__, _array("i", str(data["weight"]), len(index)))),
        float(data["bias"]),
        float(data["threshold"]),
        tuple(str(c) for c in named.get("names", ())),
        tuple(float(b) for b in named.get("bias", ())),
        columns,
        float(data.get("gate", 0.0)),
        float(data.get("overrule", 1.0)),
    )


def _b64(code: str, values: Iterable[int]) -> str:
    """Return integers as little-endian C integers of type `code`, in base64."""
    packed = array(code, values)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def _array(code: str, text: str, length: int) -> array[int]:
    """Return the C integers `_b64` wrote, checking there are `length` of them."""
    packed = array(code)
    packed.frombytes(base64.b64decode(text))
    if sys.byteorder != "little":
        packed.byteswap()
    if len(packed) != length:
        raise ValueError("crisis model: an array does not match the terms")
    return packed


def load(path: str | None = None) -> Model | None:
    """Return the packaged model (or the one at `path`), or None if there is none."""
    if path is not None:
        return loads(Path(path).read_bytes())
    packaged = resources.files("peerline.service").joinpath(MODEL_FILE)
    if not packaged.is_file():
        return None
    return loads(packaged.read_bytes())
