"""Bring an inbound text to the one form the crisis phrases are matched against.

Lower case, accents removed, apostrophes dropped, common SMS spellings and contractions written
one way, a letter typed three times or more counted once, and clause-ending punctuation (emoji
too) turned into a ``|`` boundary token. See :func:`normalise`.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from importlib import resources

BOUNDARY = "|"

APOSTROPHES = "'\u2019\u2018`\u00b4\u02bc\u2032"
_SOFT_SEPARATORS = re.compile(r"[-_/\\\"\u201c\u201d\u00ab\u00bb*~+=#@()\[\]{}<>^]")
_HARD_PUNCTUATION = re.compile(r"[^\w\s]+")
# Laughing emoji read as "lol" (a clause of its own): "goodbye cruel world 😂" is a joke, and the
# near misses and phrase contexts already know "lol"; otherwise an emoji is only a boundary.
_LAUGHING = re.compile("[\U0001f602\U0001f923\U0001f480\U0001f639\U0001f606\U0001f605]+")
_REPEATED_BOUNDARY = re.compile(r"\|(?: \|)+")
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_STRETCHED = re.compile(r"([a-z])\1\1+")

# One token to its usual spelling. Applied token by token, before the multi-word rewrites.
_TOKEN_MAP: dict[str, str] = {
    # English SMS spellings
    "wanna": "want to",
    "wana": "want to",
    "wnt": "want",
    "gonna": "going to",
    "gona": "going to",
    "gunna": "going to",
    "ima": "im going to",
    "imma": "im going to",
    "gotta": "got to",
    "tryna": "trying to",
    "kinda": "kind of",
    # "took a buncha my moms pills" was only welcomed (a tester, session 27)
    "buncha": "bunch of",
    "bunchof": "bunch of",
    "lotta": "lot of",
    "alotta": "a lot of",
    "tooka": "took a",
    "u": "you",
    "ur": "your",
    "rn": "right now",
    "nobody": "nobody",
    "noone": "no one",
    "kil": "kill",
    "killin": "killing",
    "myslef": "myself",
    "mysef": "myself",
    "mself": "myself",
    "meself": "myself",
    "sucidal": "suicidal",
    "suicdal": "suicidal",
    "suicidle": "suicidal",
    "suicidel": "suicidal",
    "sucidle": "suicidal",
    "sucide": "suicide",
    "suicde": "suicide",
    "suiside": "suicide",
    "cannot": "cant",
    "anymore": "anymore",
    # Spanish SMS spellings
    "kiero": "quiero",
    "qiero": "quiero",
    "kisiera": "quisiera",
    "q": "que",
    "k": "que",
    "xq": "porque",
    "pq": "porque",
    "sucidarme": "suicidarme",
    "suisidarme": "suicidarme",
    "suicidarm": "suicidarme",
    # more SMS spellings and common typos, English
    "iam": "im",
    "r": "are",
    "w": "with",
    "2nite": "tonight",
    "tonite": "tonight",
    "2night": "tonight",
    "2day": "today",
    "2morrow": "tomorrow",
    "tmrw": "tomorrow",
    "tmr": "tomorrow",
    "b4": "before",
    "jus": "just",
    "myslf": "myself",
    "mysel": "myself",
    "selfharm": "self harm",
    "pils": "pills",
    "pillz": "pills",
    "ibuprofin": "ibuprofen",
    "ibuprophen": "ibuprofen",
    "ibuprofren": "ibuprofen",
    "tylenols": "tylenol",
    "paracetemol": "paracetamol",
    "acetominophen": "acetaminophen",
    "overdoze": "overdose",
    "bridg": "bridge",
    # more SMS spellings and common typos, Spanish
    "toy": "estoy",
    "stoy": "estoy",
    "sta": "esta",
    "aki": "aqui",
    "pastiyas": "pastillas",
    "pastyas": "pastillas",
    "matarm": "matarme",
    "morirm": "morirme",
    "nadamas": "nada mas",
    "d": "de",
    "pa": "para",
    "chingo": "monton",
    "korte": "corte",
    "kortarme": "cortarme",
    "kortando": "cortando",
    "voi": "voy",
    "mui": "muy",
    # more English typos and spellings
    "tok": "took",
    "tuk": "took",
    "swallowd": "swallowed",
    "swalowed": "swallowed",
    "brige": "bridge",
    "brigde": "bridge",
    "infront": "in front",
    "hav": "have",
    "lettr": "letter",
    "leter": "letter",
    "attemted": "attempted",
    "atempted": "attempted",
    "attemped": "attempted",
    "tryed": "tried",
    "wuz": "was",
    "wud": "would",
    "evry1": "everyone",
    "every1": "everyone",
    "everyl": "everyone",
    "some1": "someone",
    "no1": "no one",
    "burdn": "burden",
    "dieing": "dying",
    "yr": "year",
    "yrs": "years",
    "bout": "about",
    "abt": "about",
    "cuz": "because",
    "bc": "because",
    "b": "be",
    "ded": "dead",
    # more SMS spellings, English
    "dnt": "dont",
    "cnt": "cant",
    "thru": "through",
    "ppl": "people",
    "luv": "love",
    "nite": "night",
    "sry": "sorry",
    "srry": "sorry",
    "sory": "sorry",
    "gbye": "goodbye",
    "goodby": "goodbye",
    "gudbye": "goodbye",
    "evry": "every",
    "evryone": "everyone",
    "everyon": "everyone",
    "evryting": "everything",
    "evrything": "everything",
    "rly": "really",
    "bridgee": "bridge",
    "wanted2": "wanted to",
    "plz": "please",
    "pls": "please",
    # more SMS spellings, Spanish
    "ke": "que",
    "keria": "queria",
    "kien": "quien",
    "nd": "nada",
    "dnd": "donde",
    "cdo": "cuando",
    "cnd": "cuando",
    "cmo": "como",
    "kmo": "como",
    "xk": "porque",
    "aora": "ahora",
    "tmb": "tambien",
    "tb": "tambien",
    "bn": "bien",
    "mnn": "manana",
    "weno": "bueno",
    "nadien": "nadie",
    "sbs": "sabes",
    # session 6: more Spanish and English SMS forms
    "pal": "para el",
    "nunk": "nunca",
    "nunka": "nunca",
    "nunc": "nunca",
    "xfa": "por favor",
    "xfavor": "por favor",
    "dsp": "despues",
    "dps": "despues",
    "dspues": "despues",
    "tdo": "todo",
    "tdos": "todos",
    "kosas": "cosas",
    "pastis": "pastillas",
    "pasti": "pastilla",
    "idc": "i dont care",
    "any1": "anyone",
    "bcuz": "because",
    "becuz": "because",
    "tho": "though",
    "wat": "what",
    "wen": "when",
    "2mrw": "tomorrow",
    "2moro": "tomorrow",
    "tmrrw": "tomorrow",
}

# Dropped g's: "cuttin", "givin", "standin".
_DROPPED_G = frozenset(
    "givin cuttin standin killin doin thinkin goin tryin feelin takin sayin hurtin cryin "
    "jumpin hangin sittin walkin drivin headin plannin writin leavin savin burnin endin dyin "
    "livin wantin gettin bleedin overdosin harmin stockpilin collectin lookin starin holdin "
    "swallowin poppin".split()
)

# Multi-word spellings, rewritten after the token map: (regex, replacement).
_PHRASE_MAP: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (pattern, re.compile(rf"(?<!\w){pattern}(?!\w)"), replacement)
    for pattern, replacement in (
        (r"do not", "dont"),
        (r"does not", "doesnt"),
        (r"did not", "didnt"),
        (r"can not", "cant"),
        (r"will not", "wont"),
        (r"would not", "wouldnt"),
        (r"is not", "isnt"),
        (r"i am", "im"),
        (r"i have", "ive"),
        (r"i would", "id"),
        (r"my self", "myself"),
        (r"any more", "anymore"),
        (r"kill me self", "kill myself"),
        (r"with o", "without"),
        # "more than ever" is no negation: "hoy mas que nunca pienso en ponerle fin" (session 14).
        (r"mas que nunca", "mas que antes"),
    )
)

# "kms" means "kill myself", except as kilometres: "ran 5 kms", "a few kms away".
_KMS_NUMBER_BEFORE = frozenset(
    "few many several couple the some of hundred hundreds thousand thousands mil cien dos tres "
    "cuatro cinco diez two three four five six seven eight nine ten twenty fifty".split()
)
_KMS_UNIT_AFTER = frozenset("away per from de por an a of to left more".split())

# "2" means "to" ("i want 2 die"), except as a count: "took 2 boxes", "2 hrs ago".
_TWO_COUNT_BEFORE = frozenset(
    "took taken swallowed popped ate downed had take taking swallow pop like about around only "
    "just another than bought got have ive".split()
)
_TWO_TOO_AFTER = frozenset("many much late far".split())
_TWO_COUNT_AFTER = frozenset(
    "pills pill boxes box bottles bottle packs pack strips strip tablets tablet caps hours hrs hr "
    "mins min minutes days weeks years times more of mg cajas caja frascos frasco pastillas "
    "pastilla tabletas horas minutos dias semanas veces".split()
)


def strip_accents(text: str) -> str:
    if text.isascii():
        return text
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text))


def basic(text: str) -> str:
    """Lower case, no accents, no apostrophes, punctuation as boundaries; tokens unchanged."""
    for mark in APOSTROPHES:
        text = text.replace(mark, "")
    text = strip_accents(text).casefold()
    # "dieeee", "byeee", "ayudaaa": a letter typed three times or more counts once. (Most
    # texts hold none: looked for first, which is cheaper than a substitution finding none.)
    if _STRETCHED.search(text):
        text = _STRETCHED.sub(r"\1", text)
    text = _SOFT_SEPARATORS.sub(" ", text)
    if not text.isascii():  # the laughing emoji are not ASCII
        text = _LAUGHING.sub(f" {BOUNDARY} lol {BOUNDARY} ", text)
    text = _HARD_PUNCTUATION.sub(f" {BOUNDARY} ", text)
    # Runs of whitespace as one space, none at the ends: `str.split` splits on the very
    # characters `\s` matches (checked for every code point by the tests), in a third of the time.
    text = " ".join(text.split())
    return _REPEATED_BOUNDARY.sub(BOUNDARY, text)


def _is_number(token: str) -> bool:
    return any(ch.isdigit() for ch in token) or token in _KMS_NUMBER_BEFORE


# Words that carry risk, long and unlike any everyday word one letter away: a token one typo
# from one of them (a letter missing, added, changed or two swapped) is read as that word.
# Not the Spanish -me verbs: "matarte", "cortarse" are one letter from "matarme", "cortarme".
_KEY_WORDS = (
    "anymore myself suicide suicidal suicida suicidio overdose overdosed goodbye tylenol "
    "ibuprofen paracetamol acetaminophen antidepressants pastillas sobredosis everyone "
    "everybody tonight without seroquel klonopin benadryl painkillers sleeping medicamentos "
    "somniferos"
).split()
_MIN_TYPO_LENGTH = 6


def _deletes(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _typo_index() -> tuple[dict[str, str], dict[str, str]]:
    """Return the key words by every one-letter deletion of them, and by themselves."""
    by_delete: dict[str, str] = {}
    for word in _KEY_WORDS:
        for variant in _deletes(word):
            by_delete.setdefault(variant, word)
    exact = {word: word for word in _KEY_WORDS}
    return {**by_delete, **exact}, exact


def _phrase_words() -> frozenset[str]:
    """Return the words the packaged phrase lists spell out: never read as someone's typo."""
    text = resources.files("peerline.service").joinpath("crisis_phrases.yaml").read_text("utf-8")
    return frozenset(re.findall(r"[a-z]{4,}", text))


_BY_DELETE, _TYPOS = _typo_index()
_PHRASE_WORDS = _phrase_words()


def _one_off(token: str) -> str:
    """Return the key word `token` is one typo from, or `token` itself."""
    if len(token) < _MIN_TYPO_LENGTH or not token.isalpha() or token in _PHRASE_WORDS:
        return token
    found = _BY_DELETE.get(token)  # a letter added to a key word
    if found is None:
        for variant in _deletes(token):  # a letter dropped, changed or two swapped
            found = _BY_DELETE.get(variant)
            if found is not None and _close(token, found):
                break
        else:
            return token
    # a plural is a word of its own ("everyones asleep"), and so is a Spanish "-o"/"-a" ending
    if token in (found + "s", found + "o", found + "a") or token[:-1] == found[:-1]:
        return token
    return found


def _close(token: str, word: str) -> bool:
    """Say whether `token` is one edit (or one swap of neighbours) from `word`."""
    if abs(len(token) - len(word)) > 1:
        return False
    if len(token) == len(word):
        diffs = [i for i, (a, b) in enumerate(zip(token, word, strict=True)) if a != b]
        return len(diffs) == 1 or (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and token[diffs[0]] == word[diffs[1]]
            and token[diffs[1]] == word[diffs[0]]
        )
    return True


def _spelled(token: str) -> str:
    """Return the usual spelling of a token whose neighbours do not matter (not "kms", "2")."""
    if token in _DROPPED_G:
        return token + "g"
    return _TOKEN_MAP.get(token) or _TYPOS.get(token) or _one_off(token)


# People use the same few thousand words, and a long one is tried against every key word (a
# dozen deletions and lookups): each word's spelling is kept (about 200 bytes), not a made-up
# word of a thousand letters.
_CACHED_TOKEN_LETTERS = 24
_spelled_kept = lru_cache(maxsize=8192)(_spelled)


def _spelling(token: str) -> str:
    """Return `_spelled` of a token, kept unless it is longer than any real word."""
    return _spelled_kept(token) if len(token) <= _CACHED_TOKEN_LETTERS else _spelled(token)


# One message is normalised by the check, by the reading of someone else's words and by the
# rewriting of another person's clauses; kept for the last few, it is worked out once.
@lru_cache(maxsize=256)
def normalise(text: str) -> str:
    """Return the form of a message that phrases are matched against.

    >>> normalise("I don't wanna live anymore... ¡Adiós!")
    'i dont want to live anymore | adios |'
    """
    tokens = basic(text).split(" ")
    if "kms" not in tokens and "2" not in tokens:  # no token read with its neighbours
        out = list(map(_spelling, tokens))
    else:
        out = _spelled_in_context(tokens)
    joined = " ".join(out)
    for literal, pattern, replacement in _PHRASE_MAP:
        if literal in joined:  # a plain search first: most messages hold none of them
            joined = pattern.sub(replacement, joined)
    return joined


def _spelled_in_context(tokens: list[str]) -> list[str]:
    """Return `_spelled` of each token, "kms" and "2" read with their neighbours."""
    out: list[str] = []
    for index, token in enumerate(tokens):
        if token == "kms":
            before = tokens[index - 1] if index > 0 else ""
            after = tokens[index + 1] if index + 1 < len(tokens) else ""
            if _is_number(before) or after in _KMS_UNIT_AFTER:
                out.append(token)
            else:
                out.append("kill myself")
            continue
        if token == "2":
            before = tokens[index - 1] if index > 0 else ""
            after = tokens[index + 1] if index + 1 < len(tokens) else ""
            if after in _TWO_TOO_AFTER:
                out.append("too")
                continue
            count = before in _TWO_COUNT_BEFORE or after in _TWO_COUNT_AFTER
            out.append(token if count else "to")
            continue
        out.append(_spelling(token))
    return out
