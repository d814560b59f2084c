"""Guess the language of a texter's words, so the welcome is theirs, and say when words are
clear enough to change the language a texter already writes in."""

from __future__ import annotations

import re
import unicodedata

# Words that are common in a first text and almost never English (or the other way round).
# Compared without accents, so "está" and "esta" count alike; short words both languages
# share ("a", "no", "me", "ok", "y") are left out on purpose ("me" was counted English until
# session 13, so "me siento rara" read as English); short words only Spanish writes ("la", "de",
# "se") are in; so are words said first on a phone call ("bueno?", "no entiendo", "aló").
SPANISH = frozenset(
    """
    hola buenas buenos buen dia dias tardes noches ayuda ayudame ayudenme necesito necesita
    quiero queria puedo puede alguien hablar hablo habla con por favor gracias estoy esta
    estas siento mal muy triste solo sola tengo tiene mi mis que porque nadie nada donde
    como cuando para pero tambien ahora hoy aqui alli mucho mucha miedo ansiedad vida
    familia amigo amiga novio novia madre padre hijo hija trabajo casa cansado cansada
    llorar lloro dolor vez algo ella ellos nosotros usted ustedes el los las una unos unas
    del es soy fue hay si espanol senor senora saludos oye disculpa perdon problema
    problemas cosa cosas la lo le se te de en al
    entiendo entiende entendi bueno buena oiga alo digame diga quien llamo llamando
    escucho escucha ayudeme
    """.split()
)
ENGLISH = frozenset(
    """
    hi hello hey help i im i'm my need want talk someone anyone please thanks thank
    you the is are am feel feeling sad alone lonely scared anxious can could would
    just really so what how why when where today now here there about with have has
    had not dont don't cant can't it its it's this that and or but good morning evening
    night afternoon anybody somebody life family friend work home tired cry pain
    """.split()
)
# Letters and marks only Spanish uses among the two; one of them is a strong sign.
SPANISH_MARKS = frozenset("ñ¿¡áéíóú")
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def fold(text: str) -> str:
    """Return the text in lower case with accents taken off (ñ kept: it is a letter)."""
    decomposed = unicodedata.normalize("NFD", text.lower().replace("ñ", "\0"))
    bare = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return unicodedata.normalize("NFC", bare).replace("\0", "ñ")


def _counts(text: str) -> tuple[int, int, int]:
    """Return how many words a text has, and how many of them read Spanish and English."""
    words = _WORD.findall(fold(text))
    spanish = sum(1 for w in words if w in SPANISH or "ñ" in w)
    english = sum(1 for w in words if w in ENGLISH)
    if any(ch in SPANISH_MARKS for ch in text.lower()):
        spanish += 2
    return len(words), spanish, english


def guess(text: str) -> str | None:
    """Return "es" or "en" when the words say which, or None when they do not."""
    _, spanish, english = _counts(text)
    if spanish > english:
        return "es"
    if english > spanish:
        return "en"
    return None


# Naming a language is saying which one they read ("no hablo ingles", "do you speak spanish").
LANGUAGE_NAMES = frozenset({"ingles", "english", "espanol", "español", "spanish", "castellano"})
# A text of this many words, this many of them in one language, says it on its own.
CLEAR_WORDS, CLEAR_OF_ONE = 5, 3


def names_language(text: str) -> bool:
    """Say whether a text names a language ("perdon, no hablo ingles")."""
    return any(word in LANGUAGE_NAMES for word in _WORD.findall(fold(text)))


def plainly(text: str) -> str | None:
    """Return the language a text is plainly written in (three words or more, or naming a
    language): enough for a texter whose words have not yet said their language."""
    found = guess(text)
    if found is None:
        return None
    return found if len(text.split()) >= 3 or names_language(text) else None


def clearly(text: str) -> str | None:
    """Return the language a text says on its own, however the texter wrote before: one that
    names a language, or several words (five, three of them that language's): "hola? hay
    alguien?" is not enough to change a texter's language, "hola, hay alguien? necesito
    hablar" is."""
    found = guess(text)
    if found is None:
        return None
    if names_language(text):
        return found
    words, spanish, english = _counts(text)
    return found if words >= CLEAR_WORDS and max(spanish, english) >= CLEAR_OF_ONE else None
