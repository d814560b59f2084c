"""The gate before the crisis phrases: strings any match of a phrase must contain.

A message runs only the phrases whose needed strings it holds, so the check stays far under a
millisecond with hundreds of phrases.
"""

from __future__ import annotations

import re
import re._constants as _sre  # type: ignore[import-not-found]  # a parsed pattern: its words
import re._parser as _sre_parser  # type: ignore[import-not-found]
from collections.abc import Sequence
from typing import Any

_MAX_STRINGS = 256  # a pattern with more alternatives than this is not worth spelling out
_GATE_WIDTH = 3


def required_strings(body: str) -> tuple[frozenset[str], bool] | None:
    """Return strings one of which every match of `body` contains, or None if none is known.

    The flag says whether each of them begins a word in the match (a match starts a word).
    """
    try:
        parsed = list(_sre_parser.parse(body))
    except re.error:
        return None
    found = _required(parsed, True)
    return (frozenset(found[0]), found[1]) if found else None


_ZERO_WIDTH = (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT)
_REPEATS = (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT)
_Need = tuple[set[str], bool]


def _exact(op: Any, av: Any) -> set[str] | None:
    """Return every string a node can match, if it is a small finite set of literals."""
    if op is _sre.LITERAL:
        return {chr(av)}
    if op is _sre.SUBPATTERN:
        return _exact_sequence(list(av[-1]))
    if op is _sre.BRANCH:
        out: set[str] = set()
        for branch in av[1]:
            strings = _exact_sequence(list(branch))
            if strings is None:
                return None
            out |= strings
        return out if len(out) <= _MAX_STRINGS else None
    if op in _REPEATS:
        low, high, item = av
        if (low, high) == (0, 1):
            strings = _exact_sequence(list(item))
            return None if strings is None else strings | {""}
        return None
    if op is _sre.IN and all(kind is _sre.LITERAL for kind, _ in av):
        return {chr(value) for _, value in av}
    return None


def _exact_sequence(items: list[tuple[Any, Any]]) -> set[str] | None:
    out = {""}
    for op, av in items:
        if op in _ZERO_WIDTH:
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


def _ends_in_space(items: list[tuple[Any, Any]]) -> bool:
    return bool(items) and items[-1] == (_sre.LITERAL, ord(" "))


def _required(items: list[tuple[Any, Any]], aligned: bool) -> _Need | None:
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
        if op in _ZERO_WIDTH:
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
        if op in _REPEATS and _ends_in_space(list(av[2])):
            aligned = aligned if av[0] == 0 else True
        else:
            aligned = False
        run, run_aligned = {""}, aligned
    close()
    if not candidates:
        return None
    return max(candidates, key=_score)


def _required_node(op: Any, av: Any, aligned: bool) -> _Need | None:
    if op is _sre.SUBPATTERN:
        return _required(list(av[-1]), aligned)
    if op is _sre.BRANCH:
        out: set[str] = set()
        all_aligned = True
        for branch in av[1]:
            inner = _required(list(branch), aligned)
            if not inner:
                return None
            out |= inner[0]
            all_aligned = all_aligned and inner[1]
        return out, all_aligned
    if op in _REPEATS and av[0] >= 1:
        return _required(list(av[2]), aligned)
    return None


class Gate:
    """Find which phrases a message could match, by the strings each phrase needs.

    A needed string is filed under the first letters of a word it holds whole: its own start
    when a match starts with it, else the word after its first space. A message is looked up
    by the first letters of each of its words, and the string then searched in full.
    """

    def __init__(self, needs: Sequence[tuple[frozenset[str], bool] | None]) -> None:
        self.always: set[int] = set()
        self.loose: list[tuple[str, int]] = []
        self.by_word: dict[str, list[tuple[str, int]]] = {}
        for index, need in enumerate(needs):
            if need is None or not all(len(x.strip()) >= 2 for x in need[0]):
                self.always.add(index)
                continue
            strings, at_word_start = need
            for string in strings:
                words = string.lstrip() if at_word_start else string.partition(" ")[2]
                key = words.partition(" ")[0][:_GATE_WIDTH]
                if key and (at_word_start or " " in string):
                    self.by_word.setdefault(key, []).append((string, index))
                else:
                    self.loose.append((string, index))

    def candidates(self, text: str) -> set[int]:
        """Return the indexes of the phrases `text` holds a needed string of."""
        found = set(self.always)
        keys = {word[:_GATE_WIDTH] for word in text.split()}
        for key in keys & self.by_word.keys():
            for string, index in self.by_word[key]:
                if index not in found and string in text:
                    found.add(index)
        for string, index in self.loose:
            if index not in found and string in text:
                found.add(index)
        return found
