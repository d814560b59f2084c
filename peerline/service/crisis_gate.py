"""The gate before the crisis phrases: strings any match of a phrase must contain.

A message runs only the phrases whose needed strings it holds, so the check stays far under a
millisecond with hundreds of phrases.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain
from sys import intern
from typing import Any

_MAX_STRINGS = 256  # a pattern with more alternatives than this is not worth spelling out
_GATE_WIDTH = 3
# Below this many characters, listing a message's pairs of characters costs less than trying
# each loose string on it (about 4 us for a hundred strings).
_SHORT = 20

# --- a small parser for the regular expressions phrases are written in -----------------------
#
# A node is (op, value): LITERAL a character; IN a set of characters; SUBPATTERN a list of
# nodes; BRANCH a list of alternatives, each a list of nodes; REPEAT (low, high, nodes);
# ZERO a zero-width assertion (lookaround, anchor, word boundary); ANY anything else (\w, ".",
# a character range or a negated class). Only what a needed string depends on is kept.
LITERAL, IN, SUBPATTERN, BRANCH, REPEAT, ZERO, ANY = (
    "literal",
    "in",
    "subpattern",
    "branch",
    "repeat",
    "zero",
    "any",
)
_Node = tuple[str, Any]
_ESCAPED_CHARS = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v"}
_CLASS_ESCAPES = frozenset("wWsSdD")
_ZERO_ESCAPES = frozenset("bBAZ")


@dataclass
class _Reader:
    text: str
    at: int = 0
    groups: list[int] = field(default_factory=list)

    def peek(self, n: int = 1) -> str:
        return self.text[self.at : self.at + n]

    def take(self, n: int = 1) -> str:
        out = self.text[self.at : self.at + n]
        self.at += n
        return out


def parse(body: str, *, checked: bool = False) -> list[_Node]:
    """Parse a pattern into nodes; raise ValueError on what this small parser cannot read.

    `checked` says Python has compiled the pattern already (the detector compiles each phrase
    before its gate is built), which spares compiling it a second time here.
    """
    if not checked:
        re.compile(body)  # a pattern Python refuses is refused here too
    reader = _Reader(body)
    nodes = _alternation(reader)
    if reader.at != len(body):
        raise ValueError(f"unbalanced ')' at {reader.at}")
    return nodes


def _alternation(reader: _Reader) -> list[_Node]:
    branches = [_sequence(reader)]
    while reader.peek() == "|":
        reader.take()
        branches.append(_sequence(reader))
    return branches[0] if len(branches) == 1 else [(BRANCH, branches)]


def _sequence(reader: _Reader) -> list[_Node]:
    nodes: list[_Node] = []
    while reader.at < len(reader.text) and reader.peek() not in "|)":
        atom = _atom(reader)
        bounds = _quantifier(reader)
        if bounds is not None:
            if atom[0] == ZERO:
                continue
            # A repeated group repeats its items (as Python's own parser has it).
            items = atom[1] if atom[0] == SUBPATTERN else [atom]
            atom = (REPEAT, (bounds[0], bounds[1], items))
        nodes.append(atom)
    return nodes


def _quantifier(reader: _Reader) -> tuple[int, int] | None:
    char = reader.peek()
    bounds: tuple[int, int] | None = None
    if char in ("?", "*", "+"):
        reader.take()
        bounds = {"?": (0, 1), "*": (0, -1), "+": (1, -1)}[char]
    elif char == "{":
        match = re.match(r"\{(\d*)(,?)(\d*)\}", reader.text[reader.at :])
        if match is None:
            return None  # a literal brace
        reader.take(match.end())
        low = int(match.group(1) or 0)
        high = low if not match.group(2) else int(match.group(3)) if match.group(3) else -1
        bounds = (low, high)
    if bounds is not None and reader.peek() in ("?", "+"):
        reader.take()  # lazy or possessive: the same strings
    return bounds


def _atom(reader: _Reader) -> _Node:
    char = reader.take()
    if char == "(":
        return _group(reader)
    if char == "[":
        return _class(reader)
    if char == "\\":
        escaped = reader.take()
        if escaped in _ZERO_ESCAPES:
            return (ZERO, None)
        if escaped in _CLASS_ESCAPES or escaped.isdigit():
            return (ANY, None)
        return (LITERAL, _ESCAPED_CHARS.get(escaped, escaped))
    if char in "^$":
        return (ZERO, None)
    if char == ".":
        return (ANY, None)
    return (LITERAL, char)


def _group(reader: _Reader) -> _Node:
    zero = False
    if reader.peek() == "?":
        reader.take()
        kind = reader.take()
        if kind == ":":
            pass
        elif kind in "=!":
            zero = True
        elif kind == "<" and reader.peek() in "=!":
            reader.take()
            zero = True
        elif kind == "P" and reader.peek() == "<":
            reader.at = reader.text.index(">", reader.at) + 1
        else:
            raise ValueError(f"unsupported group (?{kind} at {reader.at}")
    inner = _alternation(reader)
    if reader.take() != ")":
        raise ValueError("missing ')'")
    return (ZERO, None) if zero else (SUBPATTERN, inner)


def _class(reader: _Reader) -> _Node:
    chars: set[str] = set()
    plain = reader.peek() != "^"
    first = True
    while True:
        char = reader.take()
        if char == "":
            raise ValueError("missing ']'")
        if char == "]" and not first:
            break
        first = False
        if char == "\\":
            escaped = reader.take()
            if escaped in _CLASS_ESCAPES or escaped.isdigit():
                plain = False
            else:
                chars.add(_ESCAPED_CHARS.get(escaped, escaped))
        elif char == "-" and reader.peek() != "]" and chars:
            plain = False  # a range: not worth spelling out
        else:
            chars.add(char)
    return (IN, frozenset(chars)) if plain and chars else (ANY, None)


def required_strings(body: str, *, checked: bool = False) -> tuple[frozenset[str], bool] | None:
    """Return strings one of which every match of `body` contains, or None if none is known.

    The flag says whether each of them begins a word in the match (a match starts a word).
    """
    try:
        parsed = parse(body, checked=checked)
    except (ValueError, re.error):
        return None
    found = _required(parsed, True)
    return (frozenset(found[0]), found[1]) if found else None


_Need = tuple[set[str], bool]


def _exact(op: str, av: Any) -> set[str] | None:
    """Return every string a node can match, if it is a small finite set of literals."""
    if op == LITERAL:
        return {av}
    if op == SUBPATTERN:
        return _exact_sequence(av)
    if op == BRANCH:
        out: set[str] = set()
        for branch in av:
            strings = _exact_sequence(branch)
            if strings is None:
                return None
            out |= strings
        return out if len(out) <= _MAX_STRINGS else None
    if op == REPEAT:
        low, high, item = av
        if (low, high) == (0, 1):
            strings = _exact_sequence(item)
            return None if strings is None else strings | {""}
        return None
    if op == IN:
        return set(av)
    return None


def _exact_sequence(items: list[_Node]) -> set[str] | None:
    out = {""}
    for op, av in items:
        if op == ZERO:
            return None  # a lookaround inside an alternative: not a plain literal any more
        strings = _exact(op, av)
        if strings is None:
            return None
        out = {a + b for a in out for b in strings}
        if len(out) > _MAX_STRINGS:
            return None
    return out


# Words too common to pick a phrase out by.
_COMMON = frozenset(
    "the a an i im my me to of on at in and is it you this that for with be was just so "
    "que de la el en mi a y lo los las no se un una por con es ya".split()
)


def _score(need: _Need) -> tuple[int, int, bool]:
    """Rank a candidate set: its rarest-looking word in the worst string, then fewer strings."""
    strings, aligned = need
    worst = min(max((len(w) for w in x.split() if w not in _COMMON), default=0) for x in strings)
    return worst, -len(strings), aligned


def _ends_in_space(items: list[_Node]) -> bool:
    return bool(items) and items[-1] == (LITERAL, " ")


def _required(items: list[_Node], aligned: bool) -> _Need | None:
    """Return strings one of which any match of the sequence contains (the most selective).

    `aligned` says whether the sequence starts a word; each candidate carries the same flag.
    """
    candidates: list[_Need] = []
    run: set[str] = {""}
    run_aligned = aligned

    def close() -> None:
        if "" not in run:
            candidates.append((run, run_aligned))

    for op, av in items:
        if op == ZERO:
            continue
        strings = _exact(op, av)
        if strings is not None:
            joined = {a + b for a in run for b in strings}
            if len(joined) <= _MAX_STRINGS:
                run = joined
            else:
                close()
                run, run_aligned = strings, aligned
            taken = [x for x in strings if x]
            ends = bool(taken) and all(x.endswith(" ") for x in taken)
            aligned = ends and (aligned if "" in strings else True)
            continue
        close()
        inner = _required_node(op, av, aligned)
        if inner:
            candidates.append(inner)
        if op == REPEAT and _ends_in_space(av[2]):
            aligned = aligned if av[0] == 0 else True
        else:
            aligned = False
        run, run_aligned = {""}, aligned
    close()
    if not candidates:
        return None
    return max(candidates, key=_score)


def _required_node(op: str, av: Any, aligned: bool) -> _Need | None:
    if op == SUBPATTERN:
        return _required(av, aligned)
    if op == BRANCH:
        out: set[str] = set()
        all_aligned = True
        for branch in av:
            inner = _required(branch, aligned)
            if not inner:
                return None
            out |= inner[0]
            all_aligned = all_aligned and inner[1]
        return out, all_aligned
    if op == REPEAT and av[0] >= 1:
        return _required(av[2], aligned)
    return None


class Gate:
    """Find which phrases a message could match, by the strings each phrase needs.

    A needed string is filed under the first letters of a word it holds whole: its own start
    when a match starts with it, else the word after its first space. When that word is
    followed by others in the string, it is filed under the first letters of the first two
    words, or three (a message holding it holds the words side by side): common first words
    ("me", "i", "no", and pairs such as "no one" or "me voy") would otherwise send each message
    through hundreds of strings. A message is looked up by the first letters of each of its
    words and of each run of two and three neighbouring words, and the string then searched in
    full.
    """

    def __init__(self, needs: Sequence[tuple[frozenset[str], bool] | None]) -> None:
        self.always: set[int] = set()
        self.loose: list[tuple[str, int]] = []
        # The loose strings by their first two characters: a message holds a string only if it
        # holds those two, so a short message ("hi", "yes") looks at none of them.
        self.loose_by_start: dict[str, list[tuple[str, int]]] = {}
        by_word: dict[str, list[tuple[str, int]]] = {}
        by_pair: dict[tuple[str, str], list[tuple[str, int]]] = {}
        by_triple: dict[tuple[str, str, str], list[tuple[str, int]]] = {}
        for index, need in enumerate(needs):
            if need is None or not all(len(x.strip()) >= 2 for x in need[0]):
                self.always.add(index)
                continue
            strings, at_word_start = need
            for string in strings:
                words = string.lstrip() if at_word_start else string.partition(" ")[2]
                first, space, rest = words.partition(" ")
                # Interned: a few thousand first letters make the keys of some 40,000 strings.
                key = intern(first[:_GATE_WIDTH])
                if not key or not (at_word_start or " " in string):
                    self.loose.append((string, index))
                    self.loose_by_start.setdefault(string[:2], []).append((string, index))
                    continue
                second, after, rest = rest.partition(" ")
                third, beyond, _ = rest.partition(" ")
                # A word's first letters are the message word's only when the string holds
                # that many of them or the whole word.
                if after and third and (len(third) >= _GATE_WIDTH or beyond):
                    triple = (key, intern(second[:_GATE_WIDTH]), intern(third[:_GATE_WIDTH]))
                    by_triple.setdefault(triple, []).append((string, index))
                elif space and second and (len(second) >= _GATE_WIDTH or after):
                    pair = (key, intern(second[:_GATE_WIDTH]))
                    by_pair.setdefault(pair, []).append((string, index))
                else:
                    by_word.setdefault(key, []).append((string, index))
        # Kept flat, string then index, string then index: a pair of each would cost the web
        # worker a megabyte and a half.
        self.by_word = {key: _flat(pairs) for key, pairs in by_word.items()}
        self.by_pair = {key: _flat(pairs) for key, pairs in by_pair.items()}
        self.by_triple = {key: _flat(pairs) for key, pairs in by_triple.items()}
        # Loose strings by what they are (phrases share lists of means), and by their first
        # three characters when they hold three: looking for those costs less than trying a
        # hundred strings on a message.
        self._loose_strings: dict[str, list[int]] = {}
        for string, index in self.loose:
            self._loose_strings.setdefault(string, []).append(index)
        self._loose_by_three: dict[str, list[str]] = {}
        self._loose_short: list[str] = []
        for string in self._loose_strings:
            if len(string) >= 3:
                self._loose_by_three.setdefault(string[:3], []).append(string)
            else:
                self._loose_short.append(string)
        # The last message's answer: a phrase hit the model does not confirm sends the check
        # back to the sure phrases of the same message (one tuple, swapped whole: thread-safe).
        self._last: tuple[str | None, set[int]] = (None, set())

    def candidates(self, text: str) -> set[int]:
        """Return the indexes of the phrases `text` holds a needed string of (not to be changed:
        the last message's set is kept)."""
        last = self._last
        if last[0] == text:
            return last[1]
        found = self._candidates(text)
        self._last = (text, found)
        return found

    def _candidates(self, text: str) -> set[int]:
        found = set(self.always)
        triples, pairs, words = _keys(text)
        for triple in triples & self.by_triple.keys():
            _add_found(self.by_triple[triple], text, found)
        for pair in pairs & self.by_pair.keys():
            _add_found(self.by_pair[pair], text, found)
        for key in words & self.by_word.keys():
            _add_found(self.by_word[key], text, found)
        if not self._loose_strings:
            return found
        loose: Iterable[str]
        if len(text) < _SHORT:
            starts = {text[i : i + 2] for i in range(len(text) - 1)}
            by_start = self.loose_by_start
            loose = {string for start in starts & by_start.keys() for string, _ in by_start[start]}
        else:
            # Some 80 first threes to look for cost less than listing a long message's pieces of
            # three (8-15 us against 8-21 up to 160 characters, 25 against 48 up to 400).
            loose = chain(
                self._loose_short,
                chain.from_iterable(
                    strings for three, strings in self._loose_by_three.items() if three in text
                ),
            )
        for string in loose:
            if string in text:
                found.update(self._loose_strings[string])
        return found


_Keys = tuple[frozenset[tuple[str, str, str]], frozenset[tuple[str, str]], frozenset[str]]


# The phrases' gate, the someone-else gate and the near misses' gates look up the same message
# in turn: its keys are worked out once.
@lru_cache(maxsize=8)
def _keys(text: str) -> _Keys:
    """Return the first letters of a message's runs of three words, of two, and of each word
    (`Gate`)."""
    words = [word[:_GATE_WIDTH] for word in text.split()]
    return (
        frozenset(zip(words, words[1:], words[2:], strict=False)),
        frozenset(zip(words, words[1:], strict=False)),
        frozenset(words),
    )


def _flat(pairs: list[tuple[str, int]]) -> tuple[str | int, ...]:
    """Return (string, index) pairs as one tuple: string, index, string, index..."""
    return tuple(chain.from_iterable(pairs))


def _add_found(flat: tuple[str | int, ...], text: str, found: set[int]) -> None:
    """Add to `found` the index of each string in `flat` (`_flat`) that `text` holds."""
    items = iter(flat)
    for string, index in zip(items, items, strict=True):
        if index not in found and string in text:  # type: ignore[operator]
            found.add(index)  # type: ignore[arg-type]


class GatedAlternation:
    """One language's list of patterns searched as one alternation (first listed first), each
    pattern only where a message holds a string it needs.

    A pattern that can match nowhere in a message never decides which alternative the whole
    alternation matches at a position, so the matches are the ones the whole list gives; a
    long text holding none of them costs a dictionary lookup instead of a try at every
    position (a 15,000-character list: some 240 us on a long text).
    """

    def __init__(
        self, bodies: Sequence[str], compile_any: Callable[[Sequence[str]], re.Pattern[str]]
    ):
        self._bodies = tuple(bodies)
        self._compile = compile_any
        self._gate = Gate([required_strings(body, checked=True) for body in self._bodies])
        #: The whole list, for callers that want one pattern (and a check that it compiles).
        self.regex = compile_any(self._bodies)
        # Each pattern alone, compiled when a message first needs it: one alternation compiled
        # for each set of patterns messages pick cost 1-2 ms at its first message.
        self._each: list[re.Pattern[str] | None] = [None] * len(self._bodies)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        """Return the whole list's matches in `text`, as `re.finditer` gives them."""
        picked = sorted(self._gate.candidates(text))
        if not picked:
            return iter(())
        if len(picked) == 1:
            return self._alone(picked[0]).finditer(text)
        return self._merged([self._alone(i) for i in picked], text)

    def search(self, text: str) -> re.Match[str] | None:
        """Return the whole list's first match in `text`, as `re.search` gives it."""
        return next(self.finditer(text), None)

    def _alone(self, index: int) -> re.Pattern[str]:
        pattern = self._each[index]
        if pattern is None:
            pattern = self._each[index] = self._compile([self._bodies[index]])
        return pattern

    @staticmethod
    def _merged(patterns: Sequence[re.Pattern[str]], text: str) -> Iterator[re.Match[str]]:
        """Yield the matches of the alternation of `patterns` (in their order) as `finditer`
        does: from where the last match ended, the earliest place any of them matches, by the
        first of those that match there."""
        ahead = [pattern.search(text) for pattern in patterns]  # each one's next match
        while True:
            found: re.Match[str] | None = None
            for match in ahead:
                if match is not None and (found is None or match.start() < found.start()):
                    found = match
            if found is None:
                return
            yield found
            # A phrase pattern never matches nothing; were one to, the search moves on a place.
            at = found.end() + (found.end() == found.start())
            for k, match in enumerate(ahead):
                if match is not None and match.start() < at:
                    ahead[k] = patterns[k].search(text, at)
