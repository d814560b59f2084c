"""A supporter's `#note` after a chat, read forgivingly: how it went, topic words, a few words."""

from __future__ import annotations

import re
from dataclasses import dataclass

from peerline.flows.language import fold

# Longest few words kept with a note: an SMS or two, not a case file.
NOTE_WORDS_MAX = 320
# Number words a phone's dictation or a tired thumb may send for the 1-5.
NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "uno": 1,
    "dos": 2,
    "tres": 3,
    "cuatro": 4,
    "cinco": 5,
}
_SCORE = re.compile(r"^(\d{1,3})(?:/(?:5|10))?$")
_SPLIT = re.compile(r"[\s,;+&|]+")


@dataclass(frozen=True)
class Note:
    """What a #note said: the 1-5 (if given), topic words from the line's list, and words."""

    score: int | None
    topics: tuple[str, ...]
    words: str


def score_alone(note: Note) -> bool:
    """Say whether a note gives a 1-5 and nothing more ("#note 3")."""
    return note.score is not None and not note.topics and not note.words


@dataclass(frozen=True)
class NoteProblem:
    """Why a #note could not be read: `empty` (nothing after it) or `score` (not 1 to 5)."""

    reason: str


def edits(a: str, b: str) -> int:
    """Return the edit distance between two words, a swap of neighbours counting as one."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            cost = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, previous2[j - 2] + 1)
            current.append(cost)
        previous2, previous = previous, current
    return previous[-1]


# Spanish words for the default topics (accents folded): a Spanish-speaking supporter may
# write either, and the record keeps the one topic, so reports count both together.
SPANISH_TOPICS: dict[str, tuple[str, ...]] = {
    "lonely": ("soledad",),
    "family": ("familia",),
    "partner": ("pareja",),
    "work": ("trabajo",),
    "money": ("dinero",),
    "health": ("salud",),
    "grief": ("duelo",),
    "anxiety": ("ansiedad",),
    "housing": ("vivienda",),
    "substance": ("sustancias", "consumo"),
    "selfharm": ("autolesion", "autolesiones"),
    "other": ("otro", "otros"),
}


def _names(topic: str) -> tuple[str, ...]:
    """Return the words that name a topic: itself, and its Spanish words."""
    return (topic, *SPANISH_TOPICS.get(topic, ()))


def topic_of(word: str, topics: tuple[str, ...]) -> str | None:
    """Return the topic a word names ("Lonley", "families", "#grief", "soledad"), if close
    enough."""
    bare = fold(word).strip(".,!?;:#'\"()[]-")
    if len(bare) < 3:
        return None
    for topic in topics:
        for name in _names(topic):
            if bare in (name, name + "s", name + "es") or bare.replace("-", "") == name:
                return topic
    # One slip in a word of five letters or more; shorter words are too easily another word.
    close = [
        t for t in topics if len(bare) >= 5 and any(edits(bare, n) <= 1 for n in _names(t))
    ]
    return close[0] if len(close) == 1 else None


def _bare(token: str) -> str:
    """Return a token as it is compared with the words above: accents folded, marks off."""
    return fold(token).strip(".,!?;:()")


def _score(token: str) -> int | None:
    """Return the number a token gives ("4", "4/5", "four", "4."), or None for a word."""
    bare = _bare(token)
    if bare in NUMBER_WORDS:
        return NUMBER_WORDS[bare]
    match = _SCORE.match(bare)
    if match is None:
        return None
    value = int(match.group(1))
    # "8/10" is a score out of ten: halved and rounded up, it lands on the 1-5 scale.
    return (value + 1) // 2 if bare.endswith("/10") else value


# Words that say a score follows ("score 4", "rating: two", "puntuacion cuatro").
SCORE_NAMES = frozenset({"score", "rating", "rated", "scored", "puntuacion", "puntaje", "nota"})
_TOKEN = re.compile(r"[^\s,;+&|]+")


def _is_number_word(token: str) -> bool:
    """Say whether a token is a number written as a word ("one", "cuatro")."""
    return _bare(token) in NUMBER_WORDS


# "one" is also a pronoun ("a heavy one", "fue uno de esos"): last in a note it is a score
# only where a score plainly stands. The other number words are not pronouns.
PRONOUN_NUMBERS = frozenset({"one", "uno"})
# A number word after these is a time or a count ("ended at five", "the two of them", "her
# two", "a las cinco"), not how the chat went.
COUNTED_AFTER = frozenset(
    {
        *("at", "by", "for", "of", "till", "until", "after", "before", "past"),
        *("the", "those", "these", "both", "all", "my", "his", "her", "their", "our"),
        *("las", "los", "de", "por", "hasta", "desde", "sus", "mis", "unos", "unas"),
    }
)


def _closes_a_note(token: str, before: str) -> bool:
    """Say whether a number word last in a note ("good chat four") is its score: any but
    "one", unless a time or a count reads it ("ended at five")."""
    return _bare(token) not in PRONOUN_NUMBERS and _bare(before) not in COUNTED_AFTER


def _score_span(text: str, topics: tuple[str, ...]) -> tuple[int, int, int] | None:
    """Return the score a note gives and where it stands in the text (start, end), if any.

    The score is the first word ("#note 4 lonely"), the word after "score" or "rating", or
    the last ("#note lonely 4"); a number inside the words ("talked 45 min") is the
    supporter's words. A number word last is a score ("good chat four", "buena charla
    cuatro") unless it is "one", a pronoun too ("lonely, heavy one"), or a time or a count
    ("ended at five"); those are a score only set apart ("lonely, family, one", "lonely -
    four") or after topic words alone ("lonely one").
    """
    found = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(text)]
    for (start, _, name), (_, end, token) in zip(found, found[1:], strict=False):
        if _bare(name) in SCORE_NAMES and (value := _score(token)) is not None:
            return value, start, end
    for at in dict.fromkeys((0, len(found) - 1)):
        start, end, token = found[at]
        value = _score(token)
        if value is None:
            continue
        if at > 0 and _is_number_word(token):
            before = found[at - 1]
            gap = text[before[1] : start]
            others = [p for _, _, t in found[:at] for p in t.split("/") if p]
            set_apart = any(c in gap for c in ",;") or not before[2].strip("-:.")
            if not (
                set_apart
                or all(topic_of(p, topics) for p in others)
                or _closes_a_note(token, before[2])
            ):
                continue
        return value, start, end
    return None


def parse_note(text: str, topics: tuple[str, ...]) -> Note | NoteProblem:
    """Read what follows `#note`: the 1-5 (first, last or after "score"), topic words
    anywhere, the rest."""
    stripped = " ".join(text.split())
    if not stripped:
        return NoteProblem("empty")
    tokens = [t for t in _SPLIT.split(stripped) if t]
    scored = _score_span(stripped, topics)
    score = scored[0] if scored is not None else None
    if score is not None and not 1 <= score <= 5:
        return NoteProblem("score")
    found: list[str] = []
    for part in (p for token in tokens for p in token.split("/")):
        topic = topic_of(part, topics)
        if topic is not None and topic not in found:
            found.append(topic)
    words = stripped
    if scored is not None:
        before = stripped[: scored[1]].rstrip(" ,;:-.")
        after = stripped[scored[2] :].lstrip(" ,;:-.")
        words = f"{before}, {after}" if before and after else before + after
    words = words.strip(" ,;:-.")
    if all(topic_of(p, topics) for t in _SPLIT.split(words) for p in t.split("/") if p):
        words = ""  # only topic words: nothing more to keep
    return Note(score, tuple(found), words[:NOTE_WORDS_MAX])
