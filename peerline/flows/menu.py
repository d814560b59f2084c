"""The voice menu's choices from pressed keys or spoken words, negations understood (pure)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from peerline.flows.language import guess

# Menu choices: keys, and words heard (accents and case ignored), most urgent first. ABOUT, a
# question about the line ("is this the helpline?"), has no key: it is answered with the
# greeting, which says what the line is and is not. EMERGENCY, help asked of 911 ("call 911",
# "I need an ambulance", "I can't breathe"), has no key either: we cannot dial 911, so the
# caller is told at once to hang up and call it, then hears the menu.
# WORRIED, a caller who tells of someone else in crisis ("my friend is in crisis, what do I
# do"), has no key: they hear the worried caller's offer.
PEER, GROUPS, CRISIS, TEXT_GROUPS, SWITCH, REPEAT, ABOUT, EMERGENCY, WORRIED = (
    "peer",
    "groups",
    "crisis",
    "text_groups",
    "language",
    "repeat",
    "about",
    "emergency",
    "worried",
)
DIGITS = {"1": PEER, "2": GROUPS, "3": CRISIS, "4": TEXT_GROUPS, "8": SWITCH, "9": REPEAT}
# Each choice's words, by the language they belong to: a Spanish word heard at the English
# menu ("hablar") switches the call to Spanish.
WORDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (EMERGENCY, "en", ("911", "ambulance", "paramedic", "cant breathe", "cannot breathe")),
    (EMERGENCY, "es", ("ambulancia", "paramedico", "no puedo respirar")),
    # A medical emergency or danger told, the caller's or someone's with them ("my son isn't
    # breathing", "I'm not safe at home"): 911 at once, as help asked of it (session 28).
    (
        EMERGENCY,
        "en",
        ("not breathing", "isnt breathing", "stopped breathing", "unconscious", "passed out")
        + ("wont wake up", "not waking up", "cant wake", "chest pain", "chest pains", "not safe")
        + ("hitting me", "beating me"),
    ),
    (
        EMERGENCY,
        "es",
        ("no respira", "dejo de respirar", "inconsciente", "no despierta", "se desmayo")
        + ("dolor de pecho", "no estoy a salvo", "me esta pegando", "me pega"),
    ),
    (CRISIS, "en", ("crisis", "emergency", "988", "nine eight eight")),
    (CRISIS, "es", ("emergencia",)),
    (PEER, "en", ("peer", "talk", "someone", "person", "supporter")),
    (PEER, "es", ("companer", "hablar", "persona", "alguien")),
    # As callers ask any phone line for a person ("operator", "representative").
    (PEER, "en", ("operator", "representative", "agent", "human")),
    (PEER, "es", ("operador", "humano")),
    (GROUPS, "en", ("group", "meeting")),
    (GROUPS, "es", ("grupo", "reunion")),
    ("es", "es", ("espanol", "spanish")),
    ("en", "en", ("english", "ingles")),
    # A plea for help ("help me", "necesito ayuda") asks for a person, when it names no other
    # choice ("help with the group times"); crisis words with it are read before the menu's.
    # Only the word in its forms (FORMS), never a longer word ("helpful", "ayudante").
    (PEER, "en", ("help",)),
    (PEER, "es", ("ayud", "auxilio", "socorro")),
    # The line named as a kind of line, one word however it was said (LINE_NAMES).
    (ABOUT, "en", ("helpline", "hotline")),
    (ABOUT, "es", ("lineadeayuda", "lineadeapoyo")),
    (REPEAT, "en", ("repeat", "again", "menu")),
    (REPEAT, "es", ("repetir", "otra vez")),
)
# Keywords heard only as whole words in these forms; every other keyword is a word's start.
# "help" is help, helps and helping ("nobody helps me", "no one is helping me"), or helpless
# (a feeling that asks for a person as much), never "helpful", "helper" or "helpline"; "ayud"
# is ayuda, ayúdame, ayúdenme, ayudar, ayudando..., never "ayudante".
FORMS = {
    "help": re.compile(r"help(?:s|ing|less)?"),
    "ayud": re.compile(r"ayud(?!ant)[a-z]*"),
}
# A line named in words ("help line", "hot line", "línea de ayuda") is one word to the menu, so
# its "help" or "ayuda" is no plea.
LINE_NAMES = (
    (re.compile(r"\b(help|hot) line\b"), r"\1line"),
    (re.compile(r"\blinea de (ayuda|apoyo)\b"), r"lineade\1"),
)
LANGUAGES = ("en", "es")
# Words that, shortly before a choice's word in the same clause, say the caller does not
# want it ("I'm not in crisis", "no es una emergencia"), as the crisis detector reads them.
NEGATORS = frozenset(
    {"not", "no", "never", "dont", "don", "isnt", "arent", "wasnt", "aint", "without"}
    | {"nunca", "ni", "sin", "tampoco"}
)
NEGATION_WINDOW = 3
# A "no" just before these negates nothing after it: it is said on its own ("no I need help",
# "no no I need help", "no please help me"), or it is the pronoun "no one" ("I have no one to
# talk to"). Before anything else it negates as before ("no help", "no necesito ayuda").
NOT_AFTER_NO = frozenset({"i", "im", "id", "ive", "ill", "we", "yo", "please", "one"})
# Spanish says "nobody" with a negator besides (negative concord): "nunca nadie me ayuda", "no
# me ayuda nadie" mean nobody helps, and negate nothing. So a negator just before "nadie", or
# before a word "nadie" follows, negates nothing; "de nadie", "con nadie" ("no necesito ayuda
# de nadie", "no quiero hablar con nadie") negate as before.
NOBODY = "nadie"
# The crisis line is chosen in words only by words that are the choice itself ("crisis", "the
# crisis line please", "988", "línea de crisis"): the crisis word and these around it. In any
# other sentence the word is not the choice (CRISIS_SAID).
CRISIS_CHOICE = frozenset(
    {"crisis", "988", "emergency", "emergencia", "line", "the", "a", "please", "i", "want"}
    | {"need", "to", "go", "get", "call", "me", "put", "through", "connect", "transfer", "give"}
    | {"number", "option", "press", "ok", "okay", "yes", "just", "now", "id", "like", "can"}
    | {"linea", "de", "la", "el", "por", "favor", "quiero", "necesito", "numero", "opcion"}
    | {"si", "ahora", "llamar", "llame", "pasar", "paseme", "conecteme", "con"}
    # Said around a choice without changing it ("no, nine eight eight", "988, no Spanish").
    | {"no", "um", "uh", "yeah", "sure", "sorry", "hi", "hello", "hola", "dont", "speak"}
    | {"hablo", "english", "ingles", "spanish", "espanol"}
)
# A question about the line ("is this the crisis line?", "is this 988", "¿es la línea de
# crisis?"): the greeting, which says what the line is and is not.
ASKS_WHAT = re.compile(r"^\s*(is|are|am i|es|esta|estoy)\b")
# A word of speech once folded (`unaccented`): letters and digits.
_WORD = re.compile(r"[a-z0-9]+")
# Someone else named ("my friend is in crisis", "mi hijo está en crisis"): a worried caller.
OTHERS = frozenset(
    {"friend", "son", "daughter", "mom", "mother", "dad", "father", "brother", "sister"}
    | {"wife", "husband", "partner", "boyfriend", "girlfriend", "kid", "kids", "child"}
    | {"cousin", "roommate", "coworker", "neighbor", "neighbour", "grandson", "granddaughter"}
    | {"amigo", "amiga", "hijo", "hija", "madre", "padre", "mama", "papa", "hermano"}
    | {"hermana", "esposo", "esposa", "pareja", "novio", "novia", "primo", "prima", "nieto"}
    | {"nieta", "vecino", "vecina"}
)

# Distress that names no choice ("I'm so lonely", "tengo miedo", "no sé qué hacer"): a person.
# Each a word's start, or words together, not negated just before.
DISTRESS = tuple(
    """
    lonely alone scared afraid terrified panic anxious anxiety depressed overwhelmed
    struggling hopeless crying upset sad sola solo miedo panico ansiedad angustia deprimid
    triste llorando desesperad
    """.split()
) + (
    "not okay",
    "not ok",
    "not doing well",
    "not doing good",
    "not fine",
    "dont know what to do",
    "hard time",
    "falling apart",
    "cant cope",
    "cant take",
    "no se que hacer",
    "no puedo mas",
    "no estoy bien",
)
# Negative words said as distress: a negator is part of them, not negating them.
_NEGATIVE_DISTRESS = tuple(k for k in DISTRESS if k.split()[0] in NEGATORS | {"cant"})
# Worry for someone else in words without a crisis word ("I think my friend might hurt
# herself", "I'm worried about my son"): with someone named (OTHERS), a worried caller.
WORRY = tuple(
    "worr concern hurt harm kill suicid unsafe danger preocup lastim dano matar peligro".split()
)


def distress(speech: str) -> str | None:
    """Return what words that name no menu choice ask for: the worried caller's offer
    (WORRIED) for worry about someone named ("I'm worried about my son"), a person (PEER) for
    distress ("I'm so lonely", "me siento muy sola", "no sé qué hacer"), else None."""
    clauses = _clauses(speech)

    def heard(keywords: Sequence[str]) -> bool:
        # The clauses once, not again for each keyword as `names` would.
        return any(_heard(clause, keyword) for clause in clauses for keyword in keywords)

    words = [w for clause in clauses for w in _WORD.findall(clause)]
    if any(w in OTHERS for w in words) and heard(WORRY):
        return WORRIED
    for clause in clauses:
        said = " ".join(_WORD.findall(clause))
        if any(f" {k} " in f" {said} " for k in _NEGATIVE_DISTRESS):
            return PEER
    if heard([keyword for keyword in DISTRESS if keyword not in _NEGATIVE_DISTRESS]):
        return PEER
    return None


def unaccented(text: str) -> str:
    """Return text lower-cased without accents, as speech recognition may or may not add them."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _negates(words: Sequence[str], at: int) -> bool:
    """Say whether the word at `at` is a negator: not one just before "nadie" ("nunca nadie"),
    nor a "no" said on its own or in "no one" (the first word after it and any more "no"s is
    one of NOT_AFTER_NO)."""
    if words[at] not in NEGATORS:
        return False
    if words[at + 1 : at + 2] == [NOBODY]:
        return False
    if words[at] != "no":
        return True
    after = next((word for word in words[at + 1 :] if word != "no"), "")
    return after not in NOT_AFTER_NO


def negated(words: Sequence[str], at: int) -> bool:
    """Say whether a negator comes within a few words before position `at`, unless "nadie"
    comes just after it ("no me ayuda nadie": nobody helps me)."""
    if words[at + 1 : at + 2] == [NOBODY]:
        return False
    return any(_negates(words, i) for i in range(max(0, at - NEGATION_WINDOW), at))


def _clauses(speech: str) -> list[str]:
    """Return words said as clauses, lower-cased without accents or apostrophes ("don't" is
    "dont"), split where speech recognition puts punctuation, so a negation never reaches past
    its clause."""
    heard = unaccented(speech).replace("'", "").replace("\u2019", "")
    for name, joined in LINE_NAMES:
        heard = name.sub(joined, heard)
    return re.split(r"[,.;:!?]|\bbut\b|\bpero\b", heard)


def _heard(clause: str, keyword: str) -> bool:
    """Say whether a clause holds a keyword (a word's start, or a word in its FORMS) not
    negated just before it."""
    words = _WORD.findall(clause)
    if " " in keyword:
        parts = keyword.split()
        return any(
            words[i : i + len(parts)] == parts and not negated(words, i) for i in range(len(words))
        )
    forms = FORMS.get(keyword)
    return any(
        (forms.fullmatch(w) if forms else w.startswith(keyword)) and not negated(words, i)
        for i, w in enumerate(words)
    )


def names(speech: str, keyword: str) -> bool:
    """Say whether words hold a keyword (a word's start, or a word in its FORMS), not negated
    just before it."""
    return any(_heard(clause, keyword) for clause in _clauses(speech))


def _crisis_said(clauses: Sequence[str]) -> str:
    """Return what words naming the crisis line mean: the crisis line when they are the
    choice itself ("the crisis line please"), the greeting for a question about the line ("is
    this the crisis line?"), the worried caller's offer for someone else's crisis ("my
    friend is in crisis"), else a person ("I had a crisis last week", "my crisis worker told
    me to call you"). An emergency named ("this is an emergency") is the crisis line, as
    before."""
    said = [_WORD.findall(clause) for clause in clauses]
    words = [word for clause in said for word in clause]
    if all(word in CRISIS_CHOICE for word in words):
        return CRISIS
    if any(ASKS_WHAT.match(" ".join(clause)) for clause in said):
        return ABOUT
    if any(word.startswith("emergenc") for word in words):
        # "This is an emergency, I need help": the crisis line, as ever.
        return CRISIS
    if any(word in OTHERS for word in words):
        return WORRIED
    return PEER


def parse_choice(digits: str, speech: str, menu_language: str = "en") -> str | None:
    """Return the menu choice from pressed keys or spoken words, or None.

    Key 8 means "the other language" (SWITCH); a spoken language name means that language,
    and so does a Spanish menu word heard at the English menu. A word negated close before
    ("I'm not in crisis, I just want to talk") does not count. The crisis line is chosen in
    words only by the choice itself ("crisis", "the crisis line please"), not by any
    sentence with the word (`_crisis_said`).
    """
    if digits:
        return DIGITS.get(digits.strip()[:1])
    clauses = _clauses(speech)
    for choice, language, keywords in WORDS:
        if any(_heard(clause, keyword) for clause in clauses for keyword in keywords):
            if choice == CRISIS:
                return _crisis_said(clauses)
            if (
                menu_language == "en"
                and language == "es"
                and choice in (PEER, GROUPS, REPEAT, ABOUT, EMERGENCY)
            ):
                return "es"
            return choice
    return None


def _refuses(speech: str, language: str) -> bool:
    """Say whether words say the caller does not speak a language: its name negated ("no
    hablo inglés", "I don't speak Spanish", "no English")."""
    names = next(keywords for choice, _, keywords in WORDS if choice == language)
    for clause in _clauses(speech):
        words = _WORD.findall(clause)
        if any(
            w.startswith(name) and negated(words, i) for i, w in enumerate(words) for name in names
        ):
            return True
    return False


def read_answer(digits: str, speech: str, menu_language: str = "en") -> tuple[str | None, str]:
    """Return the menu choice and the language to act on it in.

    Key 8 or a language's name is SWITCH to that language. At the English menu, words of the
    Spanish menu ("quiero hablar con alguien") or a choice said in Spanish ("quiero hablar con
    una persona") switch the call to Spanish and are the choice the Spanish menu reads in
    them, as if said there; its repeat word means that menu from its start (SWITCH). Words
    that name no choice but are in the other language ("no entiendo nada", "hola", "I don't
    understand" at the Spanish menu) are SWITCH to the other language: the caller is told
    its menu, not that their words are no choice.

    Words that say the caller does not speak the menu's language ("no hablo inglés", "I don't
    speak Spanish", "no English") are read first: the choice they name, in whichever language
    ("I want to talk, no Spanish" at the Spanish menu), is acted on in the other language, and
    without one, or with its repeat word, they are SWITCH to it.
    """
    other = next(language for language in LANGUAGES if language != menu_language)
    if speech and not digits and _refuses(speech, menu_language):
        # Read as the Spanish menu reads words, which takes each choice in either language
        # as that choice; never acted on in the language refused.
        chosen = parse_choice("", speech, "es")
        return (SWITCH if chosen in (None, REPEAT, *LANGUAGES) else chosen), other
    choice = parse_choice(digits, speech, menu_language)
    if choice == SWITCH:
        return SWITCH, other
    if choice is None and speech and not digits:
        if guess(speech) == other:
            return SWITCH, other
        return None, menu_language
    if choice in LANGUAGES:
        language = str(choice)
        chosen = parse_choice(digits, speech, language)
        return (SWITCH if chosen in (None, REPEAT, *LANGUAGES) else chosen), language
    if choice is not None and not digits and menu_language == "en" and guess(speech) == "es":
        return (SWITCH if choice == REPEAT else choice), "es"
    return choice, menu_language
