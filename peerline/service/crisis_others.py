"""Another person's words as the writer's own: how the line reads a worried texter's words.

Crisis phrases and the model are written, and trained, for the writer's own words; told of
someone else ("my sister took all her pills", "mi hermano se subio al puente") the grammar
drops the phrases and the model was taught it is no crisis of the writer's. A clause whose
subject is another person is rewritten in the first person ("i took all my pills", "me subi al
puente"), the other person's words quoted are kept as they are ("she texted 'i took all of
them'"), and the text so rewritten is read by the same detector: if it alarms where the
writer's own clauses alone do not, the words tell of someone else at risk.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from peerline.service.crisis_detection import (
    MODEL_CATEGORY,
    NO_MATCH,
    OTHERS_FLAGGED,
    OTHERS_OUT_OF_REACH,
    OTHERS_OUT_OF_REACH_CATEGORY,
    Detection,
)
from peerline.service.crisis_text import BOUNDARY, normalise


class Reader(Protocol):
    """What reads the words rewritten: the crisis detector."""

    def detect(self, text: str, *, theirs: bool = False) -> Detection:
        """Return what the detector finds in `text` (another person's words, when `theirs`)."""
        ...


# Another person as the subject of a clause: a pronoun, a relation ("my sister", "the lady
# upstairs"), or a name before a verb ("kayla just posted"; a name cannot be told from any other
# word once the text is lower case, but it can by the verb after it).
_PEOPLE_EN = (
    r"friend|bestie|bff|best friend|sister|brother|mom|mum|mother|dad|father|son"
    r"|daughter|kid|child|teen|partner|boyfriend|girlfriend|bf|gf|husband|wife|cousin|roommate"
    r"|coworker|classmate|student|niece|nephew|aunt|uncle|grandma|grandpa|grandmother"
    r"|grandfather|neighbor|neighbour|ex|fiance|fiancee|stepdad|stepmom|stepson|stepdaughter"
    r"|sister in law|brother in law|client|patient"
)
# Named only after a determiner ("the lady upstairs", "this guy"): alone they are as often the
# writer's way of addressing the line ("girl took the whole bottle tonight", "bro", "sis").
_PEOPLE_EN_DETERMINED = r"lady|guy|girl|boy|man|woman|dude|sis|bro"
_PEOPLE_ES = (
    r"ti[oa]|amig[oa]|amigui?t[oa]|herman[oa]|hermanit[oa]|hij[oa]|mama|mami|papa|papi|madre"
    r"|padre|novi[oa]|espos[oa]|marido|mujer|prim[oa]|sobrin[oa]|abuel[oa]|abuelit[oa]|pareja"
    r"|vecin[oa]|compa|companer[oa]|roomie|alumn[oa]|viej[oa]|cunad[oa]|cunao|suegr[oa]|ex|bro"
    r"|mij[oa]|cuate|pana|parcer[oa]|parce|chaval|chavala|nena|nene|morr[oa]|colega|jefe|jefa"
)
# A person named after "my" or "mi" (with a possessive "s": "dads", "moms").
_PERSON = re.compile(rf"(?:{_PEOPLE_EN}|{_PEOPLE_ES}|best|little|big|older|younger)s?")
_FILLER = (
    r"(?:(?:so|and|but|ok|okay|omg|um|umm|like|idk|bro|dude|lol|please|pls|plz|help|hey|hi|y"
    r"|pero|entonces|oye|ayuda|porfa|hola|wey|weon|che|mano|tipo|o sea|tio|parce|update|now"
    r"|then|also|ahora|luego|sorry|perdon) )*"
)
# Verbs after a name that make it a subject ("tyler just said", "jess posted").
_NAME_VERBS_EN = (
    r"(?:just |already |literally )?(?:texted|posted|sent|said|told|wrote|called|snapped"
    r"|messaged|emailed|dmd|tweeted|took|swallowed|drank|overdosed|locked|grabbed|shared)"
)
# A clause that starts with a verb goes on with the subject before it.
_CARRIED_EN = re.compile(
    r"^(?:then |just |also |now |already )?(?:said|says|took|grabbed|locked|went|left|wrote"
    r"|posted|sent|hung|is|was|has|keeps|wont|isnt|cut|drank|swallowed|walked|texted|called"
    r"|told|wants|tried|drove|ran|turned|shut|stopped|bought|got|put|hasnt|doesnt|kill|end"
    r"|die|jump|shoot|hang|overdose|do it|take|swallow|drink|will|cant)\b"
)
_NOT_NAMES = frozenset(
    "i it this that there we you what which who everyone everybody nobody he she they its thats"
    " theres today tonight now then so and but or if when because also still just yes no"
    " finally welp well ok okay yeah yep yup lol bro girl dude sis man basically honestly"
    " actually really literally already ive im id ill mom dad".split()
)
_SUBJECT_EN = re.compile(
    rf"^{_FILLER}(?:(?:(?:my|our|her|his|their|the|this|that|one of my|a) (?:best |little |big "
    rf"|older |younger |lil |baby |twin |step |ex |\w+ year old )?(?:{_PEOPLE_EN}"
    rf"|{_PEOPLE_EN_DETERMINED})(?: (?:from|at|in|of)"
    rf" \w+)?)|(?:{_PEOPLE_EN})|she|they|shes|hes|theyre"
    # not Spanish "he" (I have): "he pensado en matarme"
    r"|he(?! (?:\w+(?:ado|ido|ao|cho|sto|to)|sido|estado|ido)\b)"
    rf"|(?P<name>[a-z]+)(?= {_NAME_VERBS_EN}\b))\b"
)
_SUBJECT_ES = re.compile(
    rf"^{_FILLER}(?:(?:(?:mi|nuestr[oa]|su|el|la|un|una) (?:mejor |herman[oa] |hermanit[oa] |"
    rf"pequen[oa] |mayor |menor )?(?:{_PEOPLE_ES})s?(?: mayor| menor| chic[oa]| pequen[oa]"
    r"| de \w+)?)|ella|el(?= (?:se|ya|no|me|le|lo|esta|tiene|quiere|va|dice|dijo|fue|anda"
    r"|sigue|iba|estaba|tenia|hizo|tomo|agarro|compro|subio|salio|escribio|mando|publico)\b))\b"
)
# A clause reporting another's words: what follows is theirs ("she told me she took them").
_REPORTED_EN = re.compile(
    r"\b(?:says|said|told me|tells me|texted(?: me)?|wrote(?: me)?|posted|keeps saying|is saying"
    r"|just said|sent me a (?:text|message|snap|pic|vm|voice memo) (?:saying|that said))"
    r"(?: that)? "
)
_REPORTED_ES = re.compile(
    r"\b(?:dice|dijo|me dijo|me dice|me ha dicho|me escribio|me mando (?:un )?(?:mensaje|texto"
    r"|audio|msj|whats|wsp)(?: \w+){0,2}? diciendo|me mando (?:un )?(?:mensaje|texto|audio|msj)"
    r"|escribio|publico|puso|anda diciendo|sigue diciendo)(?: q| que)? "
)
# Clauses joined without punctuation: each is read for its own subject.
_JOIN = re.compile(r" (?:and|but|then|so|y|pero|luego|entonces|porque|because|cuz|bc) ")
# Words that name the writer as the subject in another person's clause: not theirs alone.
_WRITER_EN = frozenset("i im ive id ill myself me".split())
_WRITER_ES = frozenset(
    "yo conmigo estoy tengo voy quiero puedo necesito aguanto siento soy quisiera decidi intente"
    " tome corte hice tire compre escribi guarde pense quise subi doy muero merezco valgo sirvo"
    " quemo lastimo pego hago encerre aguante creo pienso veo odio sigo puse deje llevo"
    " acabo".split()
)
# Words of the writer's own: a clause with none beside another person's is read as theirs
# ("my roommate cut her arm really deep and it wont stop bleeding").
_FIRST_PERSON = frozenset("i im ive id ill me my myself mine mi mis".split()) | _WRITER_ES
# "me" after these is the writer as someone told ("told me", "me dijo"), not their own act.
_TOLD_EN = frozenset(
    "told texted sent called showed asked messaged snapped emailed wrote tells gave begged"
    " facetimed dmd promised texts sends calls shows asks".split()
)
_TOLD_ES = frozenset(
    "dijo dice mando manda escribio escribe pidio pide llamo llama conto cuenta enseno mostro"
    " aviso contesto colgo ha envio".split()
)
# The other person's words quoted after a verb of saying: theirs, in their first person.
_QUOTE = re.compile(
    r"[\"\u201c\u201d\u00ab]([^\"\u201c\u201d\u00ab\u00bb]{3,240})[\"\u201c\u201d\u00bb]"
    r"|(?:(?<=\s)|^)['\u2018]((?:[^'\u2018\u2019]|(?<=\w)['\u2019](?=\w))"
    r"{3,240})['\u2019](?=[\s.,;:!?)]|$)"
)
_SAYING = re.compile(
    r"(?:said|says|saying|texted|wrote|writes|posted|sent|caption\w*|told me|messaged|dmd"
    r"|snapped|replied|tweeted|yelling|screaming|dijo|dice|decia|escribio|mando|puso|publico"
    r"|subio|grito|diciendo|gritando|mensaje|historia|estado)\b[^\"\u201c'\u2018]{0,40}$"
)
# The writer's things named after another person as subject: the words are the writer's too
# ("my bf took all my pills away", "my sister can have my stuff after tonight").
_POSSESSIVE = frozenset("my mine mi mis".split())
# Words that say nothing of anyone ("he he he he").
_NOISE = frozenset("he ha hi lol jaja jeje".split())
# What others will do after the writer is gone: the writer's crisis told through them ("my mom
# will find out tomorrow when its too late", "mi hermana se puede quedar con mis cosas").
_AFTERMATH = re.compile(
    r"\b(?:(?:will|gonna|going to|can|could|would|wont|is going to|are going to|ll) (?:\w+ )?"
    r"(?:find out|know|understand|miss|be better|be free|be fine|be ok|be okay|have|get|keep"
    r"|take care|find|inherit|forgive|cope|manage|be sad|cry|be relieved|move on|notice|see"
    r"|read|hear)"
    r"|better off|se va a enterar|se van a enterar|sabra|sabran|entendera|estara mejor"
    r"|estaran mejor|va a extranar|van a extranar|se puede quedar|se pueden quedar|se queda con"
    r"|se quedara|cuidara|encontrara|perdonara|heredara|se daran cuenta|se dara cuenta)\b"
)

_EN_WORDS = {
    "she": "i", "he": "i", "they": "i", "shes": "im", "hes": "im", "theyre": "im",
    "shed": "id", "hed": "id", "theyd": "id", "shell": "ill", "hell": "ill", "theyll": "ill",
    "her": "my", "his": "my", "their": "my", "him": "me", "them": "me",
    "herself": "myself", "himself": "myself", "themselves": "myself", "themself": "myself",
    "hers": "mine", "theirs": "mine",
}  # fmt: skip
_EN_VERBS = {
    "is": "am", "was": "was", "has": "have", "hasnt": "havent", "isnt": "am not",
    "doesnt": "dont", "does": "do", "wasnt": "wasnt", "says": "say", "goes": "go",
}  # fmt: skip
_ES_WORDS = {
    "su": "mi", "sus": "mis", "se": "me", "le": "me",
    "suicidarse": "suicidarme", "matarse": "matarme", "quitarse": "quitarme",
    "tirarse": "tirarme", "aventarse": "aventarme", "lanzarse": "lanzarme",
    "colgarse": "colgarme", "cortarse": "cortarme", "morirse": "morirme",
    "despedirse": "despedirme", "hacerse": "hacerme", "envenenarse": "envenenarme",
}  # fmt: skip
_ES_VERBS = {
    "esta": "estoy", "tiene": "tengo", "quiere": "quiero", "va": "voy", "dice": "digo",
    "puede": "puedo", "sigue": "sigo", "anda": "ando", "hizo": "hice", "fue": "fui",
    "quiso": "quise", "estaba": "estaba", "tenia": "tenia", "queria": "queria", "iba": "iba",
    "dijo": "dije", "piensa": "pienso", "siente": "siento", "pidio": "pedi",
    "despidio": "despedi", "consiguio": "consegui", "puso": "puse", "trajo": "traje",
    "vio": "vi", "es": "soy", "compro": "compre", "dejo": "deje", "mando": "mande",
    "escribio": "escribi", "subio": "subi", "tomo": "tome", "agarro": "agarre",
    "salio": "sali", "corrio": "corri", "encerro": "encerre", "publico": "publique",
    "amenaza": "amenazo", "amenazo": "amenace", "habla": "hablo", "aguanta": "aguanto",
    "necesita": "necesito", "hablo": "hable", "intento": "intente", "trato": "trate",
    "corto": "corte", "guardo": "guarde", "regalo": "regale", "busco": "busque",
    "bebio": "bebi", "trago": "trague", "colgo": "colgue", "ha": "he",
    "aguantaba": "aguantaba", "ahorco": "ahorque", "mata": "mato", "tira": "tiro",
}  # fmt: skip
# Third persons' past that reads as the writer's present once the accent is gone ("tomo"):
# another person's only after a subject or "se" names them.
_ES_AMBIGUOUS = frozenset(
    "tomo corto dejo mando compro guardo regalo busco trato intento hablo agarro publico amenazo"
    " trago".split()
)
_KNOW = re.compile(r"^se (?:que|si|como|donde|cuando|nada|cuanto|por que|porque|quien|lo que)\b")
# "esta noche": a time, not "is".
_TIME = re.compile(r"^esta (?:noche|semana|vez|manana|tarde|madrugada)\b")
# A Spanish preterite of the third person, accent gone ("tomo" for tomó): the first person's.
_ES_PRETERITE = re.compile(r"^(\w{2,}?)(?:io|o)$")
_ES_AFTER_SE = re.compile(r"^(\w{2,})(a|e)$")


# Another person's risk told as past, or as over: the worried text, not the flag ("my sister in
# law attempted in january", "mi novio se quemaba los brazos hace como medio ano").
_MONTHS = (
    "january|february|march|april|may|june|july|august|september|october|november|december"
    "|enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre"
    "|noviembre|diciembre"
)
_PAST = re.compile(
    rf"\b(?:(?:in|last|en|el|since|desde) (?:{_MONTHS})|(?:a few|a couple of|couple|\d+|two|three"
    r"|four|five|six|some|several|many) (?:days|weeks|months|years) ago|(?:last|this past) (?:week"
    r"|month|year|summer|fall|winter|spring|semester)|years ago|used to|when (?:he|she|they) (?:was"
    r"|were) (?:little|a kid|young|in)|in (?:19|20)\d\d|(?:is|s) doing (?:well|great|good|better)"
    r"|(?:says|said) (?:she|he|they) stopped|hace (?:como |unos |unas |un par de |mas de )?(?:medio"
    r" |un |una |\d+ |dos |tres |cuatro |cinco |seis |varios |varias |muchos )?(?:anos?|mes|meses"
    r"|semanas?)|el (?:mes|ano) pasado|la semana pasada|solia"
    r"|cuando (?:era|eran) (?:chic|nin|pequen)\w*|ahora esta (?:bien|mejor)|ya lo dejo"
    r"|en (?:el )?(?:19|20)\d\d|recovering|recovered|stable now|(?:is|s|in) (?:in )?(?:the )?"
    r"(?:hospital|icu|er)\b(?! parking)|sobrevivio|internad[oa]|en el hospital|de joven|de chic[oa]"
    r"|en terapia|in therapy|ya esta bien|esta a salvo|is safe now|s safe now|by accident"
    r"|por accidente|(?:shes|hes|theyre|is) (?:fine|ok|okay) now|ya esta mejor|se esta recuperando"
    r"|(?:se (?:lo|la) llevo|ya (?:lo|la) llevaron|llego) (?:la )?ambulancia|ya (?:lo|la) llevaron"
    r"|is back (?:at|this))\b"
)


# Someone out of reach with a means, a place or a goodbye in the same words: a worried texter's
# emergency, whether or not the words read as a crisis in the first person ("he grabbed a knife
# and said hed do it and hung up, hes not answering").
_UNREACHABLE = re.compile(
    r"\b(?:not answering|wont answer|isnt answering|not picking up|isnt picking up|wont pick up"
    r"|(?:phone|cell|location) (?:is |s )?(?:off|dead)|offline|(?:nobody|no one) knows where"
    r"|cant (?:reach|find) (?:him|her|them)|hung up|straight to voicemail|turned off (?:his|her"
    r"|their) (?:phone|location)|no (?:me )?(?:contesta|responde|atiende)|sin contestar"
    r"|(?:apago|apagado|apagada) (?:el|la|su)? ?(?:cel|celu|celular|telefono|ubicacion)"
    r"|(?:cel|celu|celular|telefono) apagado|nadie sabe donde|no (?:lo|la) encuentro"
    r"|colgo|desaparecio|buzon)\b"
)
_RISK = re.compile(
    r"\b(?:pills?|meds|pastillas|knife|cuchillo|navaja|gun|pistola|arma|escopeta|rifle|rope"
    r"|soga|cuerda|bridge|puente|tracks|vias|roof|techo|azotea|ledge|cornisa|goodbye|despedida"
    r"|despidio|adios|end it|do it|acabar con todo|matar\w*|suicid\w*|kill (?:him|her|them)self"
    r"|die|morir\w*|note|carta|nota|bleach|cloro|veneno|poison|antifreeze|anticongelante"
    r"|overdos\w*|sobredosis|this is it|see (?:you|yall) never|thanks for everything"
    r"|gracias por todo|blood|sangre|hanging|ahorcar\w*)\b"
)


def in_danger_now(norm: str) -> bool:
    """Say whether the normalised words tell of someone out of reach with a means, a place or
    a goodbye (read only when another person is the subject of the words)."""
    return _UNREACHABLE.search(norm) is not None and _RISK.search(norm) is not None


# Words that put another person's means into their danger now ("he grabbed dads gun and left,
# he texted me goodbye", "dice que hoy se mata, ya tiene la soga").
_NOW = re.compile(
    r"\b(?:tonight|right now|rn|today|now|goodbye|said bye|hoy|esta noche|ahorita|ahora|ya mismo"
    r"|despidio|despedida|se despide|adios|not answering|wont answer|no contesta|no me contesta)\b"
)


def told_as_now(theirs: str) -> bool:
    """Say whether another person's words (`Others.theirs`) put their danger now."""
    return _NOW.search(theirs) is not None


# Another person's everyday day: medicines as prescribed, a bridge team, a goodbye to a school,
# a break-up. Their words rewritten as the writer's can read as a crisis; told of them, no.
_ROUTINE = re.compile(
    r"\b(?:like the doctor said|as prescribed|(?:the |her |his |their )?doctor (?:said|told)"
    r"|with (?:breakfast|dinner|lunch|food)|every (?:morning|night|day)|daily|vitamins?"
    r"|allergy|allergies|del dia|con el desayuno|como le dijo el (?:doctor|medico)|todos los dias"
    r"|bridge team|bridge club|taking (?:pictures|photos|pics)|old school|broke up|we broke up"
    r"|break up|terminamos|cortamos|halloween|candy|caffeine|red bulls?|to tie|tie down|tent"
    r"|camping|hammock|tree house|yard work|moving (?:day|boxes)|day off|time off|getting older"
    r"|took (?:all )?(?:my|her|his|their) \w+ away|hid them|las escondio|me las quito)\b"
)
# What keeps another person's words a danger whatever everyday word is beside them.
_DANGER = re.compile(
    r"\b(?:bridge|roof|rooftop|tracks|ledge|cliff|overpass|rope|noose|gun|pistol|rifle|knife"
    r"|blade|razor|goodbye|bye|end it|kill|die|dying|dead|jump|blood|bleeding|note|whole bottle"
    r"|entire bottle|all of them|at once|on purpose|de golpe|a proposito|wont wake|not waking"
    r"|no despierta|passing out|passed out|throwing up|vomit\w*|slurring|unconscious"
    r"|inconsciente|puente|azotea|techo|vias|soga|cuerda|pistola|arma"
    r"|cuchillo|navaja|despedida|despidio|adios|matar\w*|morir\w*|tirar\w*|sangre|sangrando"
    r"|suicid\w*|not answering|wont answer|no contesta|what do i do|que hago|911|help|ayuda)\b"
)


def everyday_day(theirs: str) -> bool:
    """Say whether another person's words (`Others.theirs`) are an everyday day of theirs ("she
    took all her meds today like the doctor said"), with no word of danger beside it."""
    return _ROUTINE.search(theirs) is not None and not _DANGER.search(_ROUTINE.sub(" ", theirs))


def told_as_past(theirs: str) -> bool:
    """Say whether another person's words (`Others.theirs`) tell their risk as past or over."""
    return _PAST.search(theirs) is not None


@dataclass(frozen=True)
class Others:
    """A text read for another person: their clauses rewritten as the writer's (with the
    clauses that name nobody, and their quoted words), the writer's own clauses alone, and
    theirs as they were written."""

    as_own: str
    rest: str
    theirs: str
    said: str = ""
    # A clause of theirs holds the writer's things or what others do after the writer.
    shared: bool = False


def _owned(words: list[str]) -> bool:
    """Say whether another person's clause (the words after its subject) is the writer's story
    too: the writer's things ("took all my pills away", "can have my stuff"), or what others
    will do after the writer ("will find out tomorrow when its too late")."""
    for k, word in enumerate(words):
        # "my pills", "mis cosas"; not "my dads gun", "de mi abuela": a person of the writer's.
        after = words[k + 1] if k + 1 < len(words) else ""
        if word in _POSSESSIVE and not _PERSON.fullmatch(after):
            return True
    return _AFTERMATH.search(" ".join(words)) is not None


def _theirs_saying(before: str) -> bool:
    """Say whether the words just before a quote tell another person saying it: their clause
    starts with another person and names the writer only as the one told ("my best friend just
    texted"), not "i posted", "my note says", "puse en mi historia"."""
    clauses = [c for c in _clauses(normalise(before)) if c != BOUNDARY_MARK]
    if not clauses:
        return False
    clause = clauses[-1]
    subject = _subject_en(clause) or _SUBJECT_ES.match(clause)
    if subject is None:
        return False
    words = clause[subject.end() :].split()
    if _AFTERMATH.search(" ".join(words)):
        return False  # "my sister will see the text that says ...": the writer's own words
    return not any(
        (w in _WRITER_EN or w in _WRITER_ES or w in _POSSESSIVE)
        and not (w == "me" and k > 0 and words[k - 1] in _TOLD_EN | _TOLD_ES)
        for k, w in enumerate(words)
    )


def _quotes(text: str) -> tuple[list[str], str]:
    """Return the other person's quoted words in `text` and the text without them."""
    quoted: list[str] = []
    kept: list[str] = []
    end = 0
    for match in _QUOTE.finditer(text):
        before = text[max(0, match.start() - 60) : match.start()].lower()
        if not _SAYING.search(before) or not _theirs_saying(before):
            continue
        quoted.append(match.group(1) or match.group(2))
        kept.append(text[end : match.start()])
        end = match.end()
    kept.append(text[end:])
    return quoted, " . ".join(part for part in kept if part.strip())


BOUNDARY_MARK = "<end>"
# Where a sentence ends in the words as written (a comma only ends a clause).
# ("..." only pauses: "se va a tirar del puente... en bungee").
_SENTENCE_END = re.compile(r"(?:(?<![.])[.](?![.])|[!?]+)(?:\s+|$)|\n+")


def _clauses(norm: str) -> Iterator[str]:
    """Yield the clauses of `norm`, with `BOUNDARY_MARK` where punctuation ends a sentence."""
    for part in norm.split(BOUNDARY):
        yield from (c.strip() for c in _JOIN.split(f" {part.strip()} ") if c.strip())
        yield BOUNDARY_MARK


def _subject_en(clause: str) -> re.Match[str] | None:
    """Return the match of another person as the subject that starts `clause`, if any."""
    subject = _SUBJECT_EN.match(clause)
    if subject is not None and (subject.group("name") or "") in _NOT_NAMES:
        return None
    return subject


def _english(clause: str, carried: bool) -> tuple[str, str] | None:
    """Return the part of `clause` told of another person, rewritten as the writer's, and the
    rest of it (from a word naming the writer on: "hes on the overpass im on the phone with
    him"); None when its subject is not another person (`carried`: the clause before was
    theirs, so a verb first is theirs too, "he grabbed a knife and said hed do it")."""
    reported = _REPORTED_EN.search(clause)
    if reported:
        said = clause[reported.end() :]
        if _subject_en(said):
            clause = said
        else:
            # "he texted me goodbye": the one who said it is the subject of what they said.
            clause = clause[: reported.start()] + " " + reported.group(0).replace(" me", "") + said
            clause = " ".join(clause.split())
    subject = _subject_en(clause)
    if subject is None and not (carried and _CARRIED_EN.match(clause)):
        return None
    words = clause[subject.end() :].split() if subject else clause.split()
    if not any(w not in _EN_WORDS and w not in _NOISE for w in words):
        return None  # no words of theirs ("he he he he")
    for k, word in enumerate(words):
        told = word == "me" and k > 0 and words[k - 1] in _TOLD_EN
        if word in _WRITER_EN and not told:
            if k == 0:
                return None
            words, rest = words[:k], " ".join(words[k:])
            break
    else:
        rest = ""
    out, verb_next = ["i"], True
    if subject is not None and subject.group(0).split()[-1] in ("shes", "hes", "theyre"):
        out, verb_next = ["im"], False
    for word in words:
        if verb_next and word in ("just", "really", "already", "still", "literally", "now"):
            out.append(word)
            continue
        if verb_next:
            verb_next = False
            if word in _EN_VERBS:
                out.append(_EN_VERBS[word])
                continue
            if word.endswith("ies") and len(word) > 4:
                out.append(word[:-3] + "y")
                continue
            if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
                out.append(word[:-1])
                continue
        out.append(_EN_WORDS.get(word, word))
    return " ".join(out), rest


def _es_verb(word: str, after_se: bool) -> str:
    """Return the first person of a third person's verb (a reflexive's, when `after_se`)."""
    if word in _ES_VERBS:
        return _ES_VERBS[word]
    if after_se:
        preterite = _ES_PRETERITE.match(word)
        if preterite:
            return preterite.group(1) + ("i" if word.endswith("io") else "e")
        present = _ES_AFTER_SE.match(word)
        if present:
            return present.group(1) + "o"
    return word


def _spanish(clause: str, carried: bool) -> tuple[str, str] | None:
    """Return `_english`'s answer for a Spanish clause. The subject is often only in the verb:
    a clause with none named is another person's only after words of theirs (`carried`) or
    words reporting theirs ("me dijo que hoy se mata"), never alone ("todo esta mal" is the
    writer's sentence, and "no se que hacer" their "I don't know")."""
    reported = _REPORTED_ES.search(clause)
    if reported:
        clause = clause[reported.end() :]
    subject = _SUBJECT_ES.match(clause)
    if subject is None and not (carried or reported):
        return None
    words = (clause[subject.end() :] if subject else clause).split()
    rest = ""
    for k, word in enumerate(words):
        told = word == "me" and k + 1 < len(words) and words[k + 1] in _TOLD_ES
        # "matarme", "morirme"; "no se que hacer" (sé, the writer's "I know").
        mine = word in _WRITER_ES or word.endswith("rme") or _KNOW.match(" ".join(words[k:]))
        if mine or (word == "me" and not told):
            if k == 0:
                return None
            words, rest = words[:k], " ".join(words[k:])
            break
    # Without a subject named, a third person's verb, or "se" before one, must say it
    # ("hoy a la noche se mata", "ya no aguanta mas").
    verbs = [
        k
        for k, w in enumerate(words)
        if (w in _ES_VERBS and w not in _ES_AMBIGUOUS and not _TIME.match(" ".join(words[k:])))
        or w == "se"
    ]
    if subject is None and not verbs:
        return None
    out: list[str] = ["yo"] if subject is not None else []
    k = 0
    while k < len(words):
        word = words[k]
        if word == "se" and k + 1 < len(words):
            out += ["me", _es_verb(words[k + 1], True)]
            k += 2
            continue
        if word == "me" or (k > 0 and words[k - 1] == "me"):
            out.append(word)  # "me dijo": the writer as someone told, left as it is
        elif word in _ES_VERBS and not _TIME.match(" ".join(words[k : k + 2])):
            out.append(_ES_VERBS[word])
        else:
            out.append(_ES_WORDS.get(word, word))
        k += 1
    return " ".join(out), rest


# The same message is read for another person by `answer_beside`, `_quoted` and the rest that
# `beside_someone_else` leaves: kept for the last few, it is read once.
@lru_cache(maxsize=64)
def others(text: str) -> Others | None:
    """Return `text` read for another person (see `Others`); None when no clause has another
    person as its subject and nobody else's words are quoted."""
    quoted, unquoted = _quotes(text)
    own: list[str] = []
    rest: list[str] = []
    theirs: list[str] = []
    carried, shared = False, False
    unowned: list[str] = []  # clauses of nobody named, with no word of the writer's
    # A clause naming nobody goes with another person's only in their sentence ("she cut her
    # arm, it wont stop bleeding"), not after its full stop ("mi novio se fue. hoy va a ser el
    # ultimo dia" is the writer's); a subject goes on no further either.
    for raw in _SENTENCE_END.split(unquoted):
        sentence: list[str] = []  # this sentence's clauses that name nobody
        theirs_here, carried = False, False
        for clause in _clauses(normalise(raw)):
            if clause == BOUNDARY_MARK:
                continue
            rewritten = _english(clause, carried) or _spanish(clause, carried)
            carried = rewritten is not None and not rewritten[1]
            if rewritten is None:
                if _FIRST_PERSON.isdisjoint(clause.split()):
                    sentence.append(clause)
                else:
                    rest.append(clause)
                continue
            theirs_here = True
            own.append(rewritten[0])
            theirs.append(clause)
            shared = shared or _owned(clause.split())
            if rewritten[1]:
                rest.append(rewritten[1])
        (unowned if theirs_here else rest).extend(sentence)
    said = [normalise(q) for q in quoted]
    if not theirs and not said:
        return None
    join = f" {BOUNDARY} ".join
    return Others(
        join(own + unowned + said), join(rest), join(theirs + unowned + said), join(said), shared
    )


# The writer's own clauses joining another person's risk: the writer's crisis too.
_ECHO = re.compile(
    r"\b(?:i|im|ive|ill|yo|me)\b(?: \w+){0,4} (?:too|as well|tambien|tampoco)\b"
    r"|\b(?:both of us|we both|were both|los dos|las dos|ambos|juntos|juntas)\b"
    r"|\b(?:be|go|join|do it|die|end it|going|gonna do it|jump) with (?:him|her|them)\b"
    r"|\bwhat (?:she|he|they) did\b|\b(?:irme|estar|morir|morirme|ir) con (?:el|ella)\b"
    r"|\blo (?:mismo|que hizo)\b"
)


def _quoted(text: str, found: Detection) -> bool:
    """Say whether the phrase `found` in `text` lies only in another person's quoted words ("my
    best friend just texted 'i took all of them im sorry'")."""
    if found.phrase in (None, MODEL_CATEGORY) or _QUOTE.search(text) is None:
        return False  # without quote marks, nobody's words are quoted: no need to read others
    split = others(text)
    phrase = str(found.phrase)
    return split is not None and phrase in split.said and phrase not in split.rest


def of_others(detector: Reader, text: str, found: Detection) -> tuple[Detection, bool]:
    """Return `answer_beside` for words no someone-else pattern knows: clauses told of
    another person, rewritten as the writer's (`others`), that alarm where the
    writer's own clauses do not, are theirs. Their danger now raises the flag (in its category,
    or what `found` already raised); a lesser one, or one told as past, only the worried text."""
    split = others(text)
    if split is None:
        return found, False
    # The writer's own words are read only where the answer turns on them: what they say
    # alone (`own`) keeps `found` as it is, so a path ending there anyway never reads them.
    if found.matched:
        phrase = found.phrase not in (None, MODEL_CATEGORY)
        if (phrase and str(found.phrase) not in split.theirs) or _ECHO.search(split.rest):
            # A phrase in the writer's own words, read with all of them; or the writer joins
            # them ("my friend took pills and honestly i took some too").
            return found, False
        # The writer's words alarm alone where all the words did not: the rest of them said
        # what they meant ("ya tengo la fecha ... el medico dice que es sencillo").
        return found, not _alarms(detector, split.rest)  # raised already: it stays raised
    if everyday_day(split.theirs):
        return found, False  # "like the doctor said", "bridge team": their day, no risk
    # Their request for a person to talk to ("mi amiga quiere hablar con alguien") is theirs.
    theirs = detector.detect(split.as_own, theirs=True)
    if not theirs.matched:
        if in_danger_now(normalise(text)) and not told_as_past(split.theirs):
            if _alarms(detector, split.rest):
                return found, False
            return Detection(True, None, OTHERS_OUT_OF_REACH, OTHERS_OUT_OF_REACH_CATEGORY), True
        return found, False
    if _alarms(detector, split.rest):
        return found, False
    if split.shared or _ECHO.search(split.rest):
        # The writer's things or aftermath in their words ("my sister can have my stuff after
        # tonight"): whose crisis is unclear, so it is read as the writer's (flag, resources);
        # or the writer joins them.
        return theirs, False
    past = told_as_past(split.theirs)
    urgent = theirs.category in OTHERS_FLAGGED or (
        theirs.category == "means" and told_as_now(split.theirs)
    )
    if past or not urgent:
        return NO_MATCH, True
    return theirs, True


def _alarms(detector: Reader, rest: str) -> bool:
    """Say whether the writer's own words (`Others.rest`) alarm read alone."""
    return bool(rest.strip()) and detector.detect(rest).matched


def answer_beside(
    detector: Reader, text: str, found: Detection, beside: Detection | None
) -> tuple[Detection, bool]:
    """Return what the line acts on in `text` and whether the writer is worried about someone
    else, given what the detector found in it and what its `beside_someone_else` read.

    Words telling of someone else at risk are read apart from the rest: the rest may be the
    writer's own crisis ("my sister took all her pills. i took the rest of the bottle"); a model
    alarm, or a phrase inside the other person's words ("mi papa esta en el carro en la cochera
    con el motor prendido"), over no crisis of the writer's is theirs: still raised, but the
    writer is worried, not in crisis. A phrase of the writer's own stays theirs.
    """
    if beside is None:
        # Crisis words read so without someone-else words are the writer's: the model learned
        # that others' stories are no crisis, and a phrase's grammar drops them. Not a phrase
        # only in another person's quoted words.
        if not found.matched or _quoted(text, found):
            return of_others(detector, text, found)
        return found, False
    if beside.matched:
        return (found if found.matched else beside), False
    if not found.matched:
        # Their danger now raises the flag when their words, rewritten, read as one.
        theirs, worried = of_others(detector, text, found)
        if worried and theirs.matched:
            return theirs, True
    return found, True
