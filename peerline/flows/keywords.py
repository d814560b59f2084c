"""Recognise the keywords people text, the way carriers and Twilio match them."""

from __future__ import annotations

import unicodedata
from enum import StrEnum


class Keyword(StrEnum):
    """What a whole message means, when it is one of the line's words."""

    STOP = "stop"
    START = "start"
    HELP = "help"
    YES = "yes"
    BYE = "bye"
    GROUPS = "groups"
    ENGLISH = "english"
    SPANISH = "spanish"
    SAME = "same"
    NOTIFY = "notify"
    DELETE = "delete"
    REMIND = "remind"
    REMIND_OFF = "remind_off"
    CHECKIN = "checkin"
    RATING = "rating"
    NONE = "none"


# Twilio matches these against the whole body, trimmed and case-insensitive. END and CANCEL
# belong to the opt-out family and must never mean anything else here.
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
START_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO", "AYUDA"})
YES_WORDS = frozenset({"YES", "Y", "SI", "SÍ", "YEAH", "YEP", "OK TALK"})
BYE_WORDS = frozenset({"BYE", "GOODBYE", "ADIOS", "ADIÓS", "CHAO", "CIAO"})
GROUP_WORDS = frozenset({"GROUPS", "GROUP", "GRUPOS", "GRUPO"})
SAME_WORDS = frozenset({"SAME", "MISMO", "MISMA"})
NOTIFY_WORDS = frozenset({"NOTIFY", "AVISAME", "AVÍSAME", "AVISAR"})
DELETE_WORDS = frozenset({"DELETE", "BORRAR"})
# REMIND OFF, never STOP: a carrier would take STOP as leaving the whole line.
REMIND_WORDS = frozenset({"REMIND", "REMIND ME", "RECORDAR", "RECUERDAME", "RECUÉRDAME"})
REMIND_OFF_WORDS = frozenset({"REMIND OFF", "NO REMIND", "RECORDAR NO", "NO RECORDAR"})
CHECKIN_WORDS = frozenset({"CHECKIN", "CHECK IN", "CHECK-IN", "SEGUIMIENTO"})
ENGLISH_WORDS = frozenset({"ENGLISH", "INGLES", "INGLÉS"})
SPANISH_WORDS = frozenset({"ESPAÑOL", "ESPANOL", "SPANISH"})
SPANISH_GREETINGS = frozenset({"HOLA", "BUENAS", "BUENOS DIAS", "BUENOS DÍAS", "AYUDA", "SI", "SÍ"})

TABLE: tuple[tuple[frozenset[str], Keyword], ...] = (
    (STOP_WORDS, Keyword.STOP),
    (START_WORDS, Keyword.START),
    (HELP_WORDS, Keyword.HELP),
    (YES_WORDS, Keyword.YES),
    (BYE_WORDS, Keyword.BYE),
    (GROUP_WORDS, Keyword.GROUPS),
    (SAME_WORDS, Keyword.SAME),
    (NOTIFY_WORDS, Keyword.NOTIFY),
    (DELETE_WORDS, Keyword.DELETE),
    (REMIND_WORDS, Keyword.REMIND),
    (REMIND_OFF_WORDS, Keyword.REMIND_OFF),
    (CHECKIN_WORDS, Keyword.CHECKIN),
    (ENGLISH_WORDS, Keyword.ENGLISH),
    (SPANISH_WORDS, Keyword.SPANISH),
)


def normalise(text: str) -> str:
    """Return the body as keywords are compared: trimmed, upper case, trailing stops dropped."""
    folded = unicodedata.normalize("NFC", text).strip().upper()
    return " ".join(folded.rstrip(".!?¡¿ ").split())


def classify(text: str) -> Keyword:
    """Return the keyword a whole message is, or NONE."""
    word = normalise(text)
    for words, keyword in TABLE:
        if word in words:
            return keyword
    if word in {"1", "2", "3", "4", "5"}:
        return Keyword.RATING
    return Keyword.NONE


def looks_spanish(text: str) -> bool:
    """Say whether a first message suggests the texter wants Spanish."""
    word = normalise(text)
    return word in SPANISH_WORDS or word in SPANISH_GREETINGS or word.startswith("HOLA")
