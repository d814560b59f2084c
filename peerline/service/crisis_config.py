"""Read the crisis phrase files: their keys, macros and patterns, checked as they are read.

`crisis.CrisisDetector` builds its phrases, contexts and lists from what these return; a
coordinator's extra file is merged into the packaged one (`merge_configs`) and marked sure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

import yaml

from peerline.service.crisis_gate import BRANCH, GatedAlternation, parse
from peerline.service.crisis_text import APOSTROPHES, basic, normalise, strip_accents

#: The keys a phrase file may hold.
KEYS = frozenset(
    {
        "macros",
        "negation",
        "third_person",
        "near_misses",
        "model_near_misses",
        "escalation",
        "someone_else",
        "someone_else_past",
        "someone_else_echo",
        "phrases",
    }
)
_MACRO = re.compile(r"\{([A-Za-z][A-Za-z_]*)\}")
_PLAIN_PHRASE = re.compile(r"^[\w\s']+$")
_REGEX_PIECES = re.compile(r"\\.|[^\\]+")
# A match ends at the end of a word, or after a space or boundary a pattern ended with.
WORD_END = r"(?:(?<=\W)|(?!\w))"


def merge_configs(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a coordinator's extra configuration into the packaged one.

    Lists are appended to, mappings merged key by key, and single values (a macro, a window,
    an escalation pattern) replaced.
    """
    merged: dict[str, Any] = dict(base)
    for key, value in extra.items():
        if key in merged and isinstance(merged[key], Mapping) and isinstance(value, Mapping):
            merged[key] = merge_configs(merged[key], value)
        elif key in merged and isinstance(merged[key], list) and isinstance(value, list):
            merged[key] = [*merged[key], *value]
        else:
            merged[key] = value
    return merged


def load_yaml(text: str, where: str) -> dict[str, Any]:
    data = yaml.safe_load(text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"crisis phrases: {where} must hold a mapping at the top")
    unknown = set(data) - KEYS
    if unknown:
        raise ValueError(f"crisis phrases: {where} has unknown keys {sorted(unknown)}")
    return data


def mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"crisis phrases: {where} must be a mapping")
    return value


def strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        # YAML reads a bare no, on, yes as booleans: quote them.
        raise ValueError(f"crisis phrases: {where} must be a list of (quoted) strings")
    return value


def entries(value: Any, where: str) -> list[dict[str, Any]]:
    """Read a category's list: each item a pattern, or {phrase, with, unless, sure}."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"crisis phrases: {where} must be a list")
    entries: list[dict[str, Any]] = []
    for item in value:
        if isinstance(item, str):
            entries.append({"phrase": item})
        elif (
            isinstance(item, Mapping)
            and isinstance(item.get("phrase"), str)
            and set(item) <= {"phrase", "with", "unless", "sure"}
            and all(isinstance(v, str) for k, v in item.items() if k != "sure")
            and isinstance(item.get("sure", False), bool)
        ):
            entries.append({str(k): v for k, v in item.items()})
        else:
            raise ValueError(
                f"crisis phrases: {where} must list (quoted) strings or "
                "{phrase: ..., with: ..., unless: ..., sure: true} mappings of strings"
            )
    return entries


def all_sure(extra: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Return a coordinator's configuration with every phrase marked sure: the line's own
    misses, added on purpose, stand whatever the model says."""
    phrases = mapping(extra.get("phrases") or {}, f"{where}: phrases")
    marked = {
        language: {
            category: [
                {**entry, "sure": True}
                for entry in entries(patterns, f"{where}: phrases.{language}.{category}")
            ]
            for category, patterns in mapping(by_category, f"{where}: phrases.{language}").items()
        }
        for language, by_category in phrases.items()
    }
    return {**extra, "phrases": marked} if phrases else dict(extra)


def macros_of(config: Any) -> dict[str, str]:
    macros: dict[str, str] = {}
    for name, value in mapping(config, "macros").items():
        if isinstance(value, str):
            # A macro may use one written above it ({FREE} in {W}), so a list is spelt once;
            # so may each item of a list macro.
            macros[str(name).upper()] = substitute(value, macros)
        else:
            items = strings(value, f"macros.{name}")
            choices = sorted(
                (substitute(pattern_text(item), macros) for item in items), key=len, reverse=True
            )
            macros[str(name).upper()] = "(?:" + "|".join(choices) + ")"
    return macros


def word_sets(section: Any, key: str) -> dict[str, frozenset[str]]:
    """Return a third-person section's word list `key`, a set a language."""
    lists = mapping(section.get(key) or {}, key)
    return {
        str(lang): frozenset(word_list(strings(listed, f"third_person.{key}.{lang}")))
        for lang, listed in lists.items()
    }


def word_list(items: Iterable[str]) -> Iterable[str]:
    for item in items:
        yield from basic(item).split()


def pattern_text(source: str) -> str:
    """Bring a pattern to the normalised form: a plain phrase fully, a regex as far as safe."""
    if _PLAIN_PHRASE.match(source):
        return normalise(source)
    for mark in APOSTROPHES:
        source = source.replace(mark, "")
    # Casefold the literal text only: "\\S" must not become "\\s".
    return _REGEX_PIECES.sub(_casefold_literal, strip_accents(source))


def _casefold_literal(piece: re.Match[str]) -> str:
    text = piece.group(0)
    return text if text.startswith("\\") else text.casefold()


def expand(source: str, macros: Mapping[str, str]) -> str:
    return substitute(pattern_text(source), macros)


def substitute(source: str, macros: Mapping[str, str]) -> str:
    """Replace each {NAME} in `source` with its macro."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1).upper()
        if name not in macros:
            raise ValueError(f"crisis phrases: unknown macro {{{name}}} in {source!r}")
        return macros[name]

    return _MACRO.sub(replace, source)


def alternatives(
    config: Mapping[str, Any], key: str, macros: Mapping[str, str]
) -> dict[str, re.Pattern[str]]:
    """Return one pattern a language matching any of the lists under `key`."""
    return {
        language: compile_any(expanded, f"{key}.{language}")
        for language, expanded in expanded_lists(config, key, macros).items()
    }


def gated_alternatives(
    config: Mapping[str, Any], key: str, macros: Mapping[str, str]
) -> dict[str, GatedAlternation]:
    """Return `alternatives` of `key` each searched only for the patterns a message could
    match (`crisis_gate.GatedAlternation`)."""
    return {
        language: GatedAlternation(expanded, partial(compile_any, where=f"{key}.{language}"))
        for language, expanded in expanded_lists(config, key, macros).items()
    }


def expanded_lists(
    config: Mapping[str, Any], key: str, macros: Mapping[str, str]
) -> dict[str, list[str]]:
    """Return each language's patterns under `key`, macros expanded (languages with none left
    out)."""
    lists: dict[str, list[str]] = {}
    for language, patterns in mapping(config.get(key) or {}, key).items():
        sources = strings(patterns, f"{key}.{language}")
        if sources:
            lists[str(language)] = [expand(source, macros) for source in sources]
    return lists


def compile_words(body: str, where: str) -> re.Pattern[str]:
    """Compile an expanded pattern to match whole words only."""
    return compile_any([body], where)


def compile_any(bodies: Sequence[str], where: str) -> re.Pattern[str]:
    """Compile expanded patterns, tried in turn, as one that matches whole words only."""
    # Patterns for the whole message ("^took pills"): the anchor leads them all, so a search
    # stops at the first position instead of trying every one (43 us against 0.6 us on 1,500
    # letters; the model near misses took 80 us a long text with each anchor in its group).
    lifted = all(body.startswith("^") and _one_branch(body) for body in bodies)
    inner = [body[1:] for body in bodies] if lifted else list(bodies)
    joined = inner[0] if len(inner) == 1 else "|".join(f"(?:{body})" for body in inner)
    try:
        if lifted:
            return re.compile(rf"^(?:{joined}){WORD_END}")
        return re.compile(rf"(?<!\w)(?:{joined}){WORD_END}")
    except re.error as exc:
        raise ValueError(f"crisis phrases: bad pattern {where!r}: {exc}") from exc


def _one_branch(body: str) -> bool:
    """Say whether `body` has no `|` outside its groups (so a leading `^` leads every branch)."""
    try:
        nodes = parse(body)
    except ValueError:
        return False  # what the gate's parser cannot read keeps the plain form
    return not (len(nodes) == 1 and nodes[0][0] == BRANCH)
