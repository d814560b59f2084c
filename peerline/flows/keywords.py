"""Recognise the keywords people text, the way carriers and Twilio match them."""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from peerline.flows.language import fold, guess


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
    # Words that look like an opt-out but are none to carriers (PARAR, "stop pls"): the texter
    # hears how to stop, and nothing else happens.
    STOP_LIKE = "stop_like"
    NONE = "none"


# Twilio matches these against the whole body, trimmed and case-insensitive. END and CANCEL
# belong to the opt-out family and must never mean anything else here.
STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
START_WORDS = frozenset({"START", "UNSTOP"})
# Twilio's default opt-in words: only these, alone, re-subscribe a number that sent STOP.
CARRIER_OPT_IN = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO", "AYUDA"})
YES_WORDS = frozenset(
    {
        "YES", "Y", "YEAH", "YEP", "YES PLEASE", "YES PLS", "YES PLZ", "OK TALK",
        "SI", "SÍ", "SII", "SÍÍ", "SIP", "SI PORFA", "SÍ PORFA", "SI POR FAVOR", "SÍ POR FAVOR",
        "CLARO", "CLARO QUE SI", "CLARO QUE SÍ", "VALE",
    }
)  # fmt: skip
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
# Not opt-outs: carriers match STOP and its kin exactly, so these would leave the texter still
# getting texts. They are answered with how to stop (reply STOP), never taken as STOP here.
# Not BASTA or NO MAS: alone, "enough" may be someone at the end of their rope, and a first
# text of it gets the welcome (which says how to stop too), in line it is words for the peer.
STOP_LIKE_SPANISH = frozenset({"PARAR", "PARA", "ALTO", "DETENER", "CANCELAR", "BAJA"})
STOP_LIKE_WORDS = STOP_LIKE_SPANISH | frozenset(
    {
        "STOP PLS", "STOP PLZ", "STOP PLEASE", "PLS STOP", "PLZ STOP", "PLEASE STOP", "STOP IT",
        "STOP TEXTING", "STOP TEXTING ME", "STOP MESSAGING ME", "UNSUB", "UNSUBSCRIBE ME",
    }
)  # fmt: skip
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
    (STOP_LIKE_WORDS, Keyword.STOP_LIKE),
)


def normalise(text: str) -> str:
    """Return the body as keywords are compared: trimmed, upper case, the stops after it and
    the Spanish marks before it ("¡Sí!", "¿Ayuda?") dropped."""
    folded = unicodedata.normalize("NFC", text).strip().upper()
    return " ".join(folded.lstrip("¡¿ ").rstrip(".!?¡¿ ").split())


def classify(text: str) -> Keyword:
    """Return the keyword a whole message is, or NONE."""
    word = normalise(text)
    for words, keyword in TABLE:
        if word in words:
            return keyword
    if word in {"1", "2", "3", "4", "5"}:
        return Keyword.RATING
    if _YES_TYPED.fullmatch(word):
        return Keyword.YES  # "yse", "yess", "ys": thumbs in a hurry
    return Keyword.NONE


_YES_TYPED = re.compile(r"Y+E*S+E*")


def carrier_opt_in(text: str) -> bool:
    """Say whether a message is one carriers take as opting back in after STOP."""
    return unicodedata.normalize("NFC", text).strip().upper() in CARRIER_OPT_IN


def looks_spanish(text: str) -> bool:
    """Say whether a first message suggests the texter wants Spanish."""
    word = normalise(text)
    return word in SPANISH_WORDS or word in SPANISH_GREETINGS or guess(text) == "es"


# What people answer to "from 1 to 5": a digit or a number word, maybe with "/5" or a thanks.
RATING_WORDS = {
    **{str(n): n for n in range(1, 6)},
    **dict(zip(("one", "two", "three", "four", "five"), range(1, 6), strict=True)),
    **dict(zip(("uno", "dos", "tres", "cuatro", "cinco"), range(1, 6), strict=True)),
}
# Words that may stand beside the number without changing it ("5/5", "a 4, thanks").
RATING_FILLER = frozenset(
    """
    a an i it its was out of de sobre over i'd id say give would rate rating score un le doy
    thanks thank you ty thx gracias muchas great good ok okay bien buen muy very really
    stars star estrellas estrella
    """.split()
)
THANKS_WORDS = frozenset(
    """
    thanks thank you ty thx tysm cheers ok okay gracias muchas mil vale bueno great good
    appreciate appreciated it so much bye very a lot really i de nada for that this was
    helped helpful help listening talking chat everything nice kind por todo ayuda
    escucharme hablar me
    """.split()
)
# A thank-you with one of these is not only a thank-you ("thanks but I still feel awful").
NOT_ONLY_THANKS = frozenset(
    "not no but still don't dont didn't didnt pero todavia aun nada sad worse".split()
)
THANKING = frozenset({"thanks", "thank", "ty", "thx", "tysm", "gracias", "cheers"})
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def rating_of(text: str) -> int | None:
    """Return the 1 to 5 score a short answer gives ("5", "five", "cinco", "4/5 thanks")."""
    tokens = _TOKEN.findall(fold(text))
    if len(tokens) > 7:
        return None
    if tokens[:2] == ["10", "10"]:
        tokens = ["5", *tokens[2:]]  # "10/10": the top of a scale of their own
    # "4/5", "4 out of 5", "4 de 5, gracias": a 5 after another number is the scale.
    for index, token in enumerate(tokens):
        if index and token in ("5", "five", "cinco"):
            if any(t in RATING_WORDS for t in tokens[:index]):
                tokens = tokens[:index] + tokens[index + 1 :]
                break
    numbers = [RATING_WORDS[t] for t in tokens if t in RATING_WORDS]
    if len(numbers) != 1:
        return None
    if any(t not in RATING_WORDS and t not in RATING_FILLER for t in tokens):
        return None
    return numbers[0]


def is_thanks(text: str) -> bool:
    """Say whether a short message is only a thank-you ("thanks!", "thank you so much, Sam")."""
    tokens = _TOKEN.findall(fold(text))
    if not any(t in THANKING for t in tokens) or len(tokens) > 8:
        return False
    if any(t in NOT_ONLY_THANKS for t in tokens):
        return False
    others = [t for t in tokens if t not in THANKS_WORDS]
    # One other word in a short thanks is most often a name ("thanks Sam", "gracias Ana").
    return not others or (len(others) == 1 and len(tokens) <= 4)


ACK_WORDS = frozenset(
    "ok okay k kk cool sure alright fine vale claro bueno no nah thanks gracias".split()
)


def is_ack(text: str) -> bool:
    """Say whether a message only acknowledges or declines ("ok", "no thanks", "👍")."""
    tokens = _TOKEN.findall(fold(text))
    if not tokens:
        return bool(text.strip())  # an emoji or punctuation alone
    return len(tokens) <= 2 and all(t in ACK_WORDS for t in tokens)


# A texter in the queue asking the line whether anyone is there, is coming, or how long it is:
# "hello?", "is anyone coming", "how long?", "hola? hay alguien?", "cuanto falta". Compared
# without accents. A phrase counts in a question ("?") or where the message starts (after a
# greeting): "i don't have anyone there for me" is their story, not a question to the line.
_GREETING = re.compile(r"h+e+l+o+|h+i+|h+e+y+|hola+|alo+|hallo+|anyone|anybody|someone|alguien")
_ASKS = re.compile(
    r"\b(?:"
    r"(?:is|are|r) (?:there )?(?:any ?one|anybody|some ?one|somebody|you|u|ya)"
    r" (?:there|here|coming|available|around|awake|reading|listening|on)"
    r"|(?:any ?one|anybody|some ?one|somebody) (?:there|here|coming|available|around)"
    r"|(?:you|u|ya) (?:still )?there"
    r"|how (?:much )?long|how much longer|when (?:will|is|does|do|can) (?:some|any|a |i |my |it)"
    r"|(?:am i|are we|i'?m) still (?:in line|waiting|here)|still waiting"
    r"|is this (?:working|real|on)|did (?:you|u) get (?:my|this|it)"
    r"|hay alguien|alguien (?:ahi|alli|aqui|me lee|me escucha|viene|va a)|viene alguien"
    r"|(?:estas|estan|esta|sigues|siguen) (?:ahi|alli|aqui)"
    r"|cuanto (?:falta|tiempo|mas|tarda|tardan|queda|hay que)"
    r"|(?:me|nos) (?:lee|leen|escucha|escuchan)|sigo en (?:la )?fila"
    r")\b"
)


def asks_the_line(text: str) -> bool:
    """Say whether a short text asks the line if anyone is there or coming, or how long."""
    folded = fold(text)
    tokens = _TOKEN.findall(folded)
    if not tokens:
        return "?" in text  # "???" alone
    if len(tokens) > 12:
        return False  # someone telling their story, not asking the line
    if all(_GREETING.fullmatch(t) for t in tokens):
        return "?" in text or len(tokens) > 1 or text.strip().endswith("...")
    words = " ".join(tokens)
    found = _ASKS.search(words)
    if found is None:
        return False
    opening = words[: found.start()].split()
    return "?" in text or all(_GREETING.fullmatch(t) for t in opening)
