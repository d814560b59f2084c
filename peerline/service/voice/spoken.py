"""What a caller says at a <Gather> that takes speech, read as the key it names (pure).

Speech recognition gives a number said alone as a digit ("3") or a word ("three", "tres");
either is the key it names, as if pressed. Only an answer that is the number and little else
("three", "number three", "tres por favor") counts: a number inside a sentence ("I need
someone") is words, for the menu to read. "nine eight eight" and "nueve ocho ocho" name the
crisis line, as "988" does.
"""

from __future__ import annotations

import re

from peerline.flows.menu import negated, unaccented

# Number words, English and Spanish, and the key each names.
NUMBER_WORDS = {
    "one": "1",
    "uno": "1",
    "una": "1",
    "two": "2",
    "dos": "2",
    "three": "3",
    "tres": "3",
    "four": "4",
    "cuatro": "4",
    "eight": "8",
    "ocho": "8",
    "nine": "9",
    "nueve": "9",
}
# Words said around a number that do not change it ("press three", "el número tres, por favor").
FILLER = frozenset(
    {"press", "number", "option", "the", "please", "key", "i", "want", "ok", "okay"}
    | {"oprima", "oprimo", "marco", "marcar", "numero", "opcion", "el", "la", "por", "favor"}
    | {"quiero", "tecla"}
)
# The crisis line said as its three digits.
CRISIS_LINE = re.compile(r"\b(nine\s+eight\s+eight|nueve\s+ocho\s+ocho|9\s+8\s+8)\b", re.I)
# 911 said as its three digits.
EMERGENCY_LINE = re.compile(r"\b(nine\s+one\s+one|nueve\s+uno\s+uno|9\s+1\s+1)\b", re.I)
# Words asking for the crisis line again, after a transfer that did not connect.
AGAIN = ("again", "retry", "otra vez", "de nuevo", "intentar", "reintentar", "intentarlo")
# Whole answers that ask to hear what was just said again ("sorry, what?", "¿qué dijo?",
# "repita por favor"), by the language of what was said: the menu or the offer said again.
ASKS_REPEAT = {
    "en": frozenset(
        {"what", "sorry what", "what was that", "what did you say", "sorry", "pardon", "huh"}
        | {"pardon me", "come again", "say that again", "say again", "repeat that"}
        | {"can you repeat that", "could you repeat that", "what was that again", "excuse me"}
        # Hello said to a line that answered: is anyone there? The menu again.
        | {"hello", "hello hello", "hi", "hey", "anyone there", "is anyone there"}
        | {"hello is anyone there", "is someone there", "hello anyone there"}
    ),
    "es": frozenset(
        {"que", "que dijo", "que dice", "como", "como dijo", "perdon", "mande", "repita"}
        | {"repitalo", "repite", "repitame", "repitamelo", "no le entendi", "no escuche"}
        | {"no le escuche", "puede repetir", "me lo repite", "disculpe", "perdon que dijo"}
    ),
}
# Said before or after such an answer without changing it ("sorry, what?", "repita por favor").
COURTESY_BEFORE = ("sorry", "um", "uh", "oh", "perdon", "disculpe", "eh", "este")
COURTESY_AFTER = ("please", "por favor", "again")


def plain(text: str) -> str:
    """Return words lower-cased, without accents or punctuation, one space between them."""
    bare = unaccented(text).replace("'", "").replace("\u2019", "")
    return " ".join(re.findall(r"[a-z0-9]+", bare))


def spoken_key(speech: str) -> str | None:
    """Return the key a spoken answer names when it is a number said alone, else None."""
    words = [w for w in plain(speech).split() if w not in FILLER]
    if len(words) != 1:
        return None
    word = words[0]
    if len(word) == 1 and word.isdigit():
        return word
    return NUMBER_WORDS.get(word)


def heard(digits: str, speech: str) -> tuple[str, str]:
    """Return the keys and words of an answer as the menu reads them: a number said alone
    as its key, and the crisis line's digits said one by one as "988", 911's as "911"."""
    if digits or not speech:
        return digits, speech
    key = spoken_key(speech)
    if key is not None:
        return key, ""
    # In the words as said: their punctuation keeps a negation in its own clause.
    return digits, EMERGENCY_LINE.sub("911", CRISIS_LINE.sub("988", speech))


def says_again(speech: str) -> bool:
    """Say whether words ask to try again ("try again", "otra vez"), not negated."""
    words = plain(speech).split()
    for keyword in AGAIN:
        parts = keyword.split()
        for i in range(len(words) - len(parts) + 1):
            if words[i : i + len(parts)] == parts and not negated(words, i):
                return True
    return False


def asks_repeat(speech: str, language: str) -> bool:
    """Say whether words, the whole answer, ask to hear again what was said ("sorry what",
    "what?", "repita por favor", "¿qué dijo?"), in the language the caller was spoken to."""
    said = plain(speech)
    asks = ASKS_REPEAT.get(language, frozenset())
    for _ in range(3):
        if said in asks:
            return True
        trimmed = said
        for word in COURTESY_AFTER:
            if trimmed.endswith(" " + word):
                trimmed = trimmed[: -len(word) - 1]
        for word in COURTESY_BEFORE:
            if trimmed.startswith(word + " "):
                trimmed = trimmed[len(word) + 1 :]
        if trimmed == said:
            return False
        said = trimmed
    return said in asks
