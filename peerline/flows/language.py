"""Guess the language of a texter's first message from its words, so the welcome is theirs."""

from __future__ import annotations

import re
import unicodedata

# Words that are common in a first text and almost never English (or the other way round).
# Compared without accents, so "está" and "esta" count alike; short words both languages
# share ("a", "no", "me", "ok", "y") are left out on purpose ("me" was counted English until
# session 13, so "me siento rara" read as English); short words only Spanish writes ("la", "de",
# "se") are in.
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


def guess(text: str) -> str | None:
    """Return "es" or "en" when the words say which, or None when they do not."""
    lowered = text.lower()
    words = _WORD.findall(fold(text))
    spanish = sum(1 for w in words if w in SPANISH or "ñ" in w)
    english = sum(1 for w in words if w in ENGLISH)
    if any(ch in SPANISH_MARKS for ch in lowered):
        spanish += 2
    if spanish > english:
        return "es"
    if english > spanish:
        return "en"
    return None
