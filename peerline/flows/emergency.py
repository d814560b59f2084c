"""Words that tell of a medical emergency under way for someone with the writer.

"my brother overdosed hes not breathing", "my mom took a bunch of pills and wont wake up", "mi
hijo no respira": whoever writes needs 911 for that person now, said plainly and again each
time they say it is still so (session 28: a tester's texter heard "if they may be in danger
now" once, and then nothing). The crisis detector reads risk to the writer's life; these are
the signs anyone would call 911 for, told of another person.
"""

from __future__ import annotations

import re

from peerline.flows.language import fold

# The signs, in the folded text (lower case, no accents, apostrophes dropped), told of whoever
# the words name ("he isnt breathing", "my mom wont wake up").
_SIGNS = re.compile(
    r"\b(?:"
    r"(?:not|isnt|stopped|aint|no longer|barely) breathing(?! (?:well|right|properly|normally))"
    r"|cant (?:wake|get) (?:him|her|them)"
    r"|(?:wont|isnt|not|aint) (?:waking|wake) up|unconscious|unresponsive"
    r"|turning blue|(?:lips|face|skin) (?:are|is|turned|going) (?:blue|purple)"
    r"|so much blood|(?:bleeding|bleeds) (?:a lot|so much|everywhere|out|badly)"
    r"|wont stop bleeding|overdosed|overdosing|sobredosis|mucha sangre|inconsciente"
    r")\b"
)
# Spanish says whose it is in the verb ("no respira": he or she does not breathe): alone.
_SIGNS_ES = re.compile(
    r"\b(?:(?:casi )?no respira(?! bien)|dejo de respirar|no (?:despierta|reacciona)"
    r"|se desmayo|se (?:puso|esta poniendo) morad[oa]|no (?:para|deja) de sangrar)\b"
)
# Another person named as the one it is happening to.
_THIRD = re.compile(
    r"\b(?:he|she|hes|shes|him|her|his|they|theyre|them|el|ella"
    r"|my (?:\w+ )?(?:mom|mum|mother|dad|father|son|daughter|kid|child|baby|brother|sister"
    r"|friend|bf|gf|boyfriend|girlfriend|husband|wife|partner|roommate|cousin|grandma|grandpa"
    r"|aunt|uncle|niece|nephew)"
    r"|mi (?:\w+ )?(?:mama|papa|madre|padre|hij[oa]|bebe|herman[oa]|amig[oa]|novi[oa]"
    r"|espos[oa]|marido|pareja|abuel[oa]|ti[oa]|prim[oa]|sobrin[oa]|compañer[oa]))\b"
)
# The same words in everyday sense: a joke, school or work mornings, a sugar "overdose".
_EVERYDAY = re.compile(
    r"\b(?:lol|lmao|haha\w*|jaja\w*|xd|ugh|for (?:school|work|class|church)|alarm|on time"
    r"|(?:overdosed|overdosing|sobredosis) (?:on|de) (?:sugar|caffeine|coffee|candy|chocolate"
    r"|netflix|anime|tv|azucar|cafe|dulces)|para (?:la escuela|el trabajo|clases))\b"
)


# What words tell: the signs, of another person they name (or Spanish whose verb says so),
# or the signs alone ("still not breathing", which a text before may have said is whose).
NAMED, SIGNS = "named", "signs"


def read_emergency(text: str) -> str | None:
    """Return NAMED when words tell of a medical emergency under way for another person,
    SIGNS when they tell its signs of nobody named, else None."""
    plain = fold(text).replace("'", "").replace("\u2019", "")
    if _EVERYDAY.search(plain):
        return None
    if _SIGNS_ES.search(plain):
        return NAMED
    if not _SIGNS.search(plain):
        return None
    return NAMED if _THIRD.search(plain) else SIGNS
