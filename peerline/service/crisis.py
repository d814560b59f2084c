"""Notice crisis language in an inbound text, in English and Spanish.

The detector matches phrases (rarely single words) over a normalised form of the message: lower
case, accents removed, apostrophes dropped, common SMS spellings and contractions written one
way, and clause-ending punctuation turned into a ``|`` boundary token (see :func:`normalise`).
The phrase lists live in ``crisis_phrases.yaml`` next to this module; a coordinator may add an
extra file of the same shape, merged into the packaged one.

A phrase is dropped when it is negated close before ("I would never kill myself", "no me voy
a suicidar"), when it is about someone else ("my friend says they want to die"), or when it
overlaps a known idiom or accident ("killed myself laughing", "me corte el pelo"). Phrases
that carry their own negation ("I don't want to live", "no quiero vivir", "I can't go on")
are written whole, so the negation check looks only at what comes before them.

Categories follow the Columbia Suicide Severity Rating Scale screener and the risk language
crisis lines report (see ``docs/crisis.md``); the most urgent one found decides the
conversation's place in the queue (:func:`priority_of`). A phrase may carry its context: it
counts only ``with`` some other words in the message (a gift with a farewell) and never
``unless`` others are there (a bridge with the market on the other side).

The module is pure: no I/O beyond reading the phrase files at :meth:`CrisisDetector.load`.
``python -m peerline.service.crisis --evaluate`` prints its figures on the labelled sets.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from peerline.service import crisis_model
from peerline.service.crisis_config import (
    all_sure,
    alternatives,
    compile_words,
    entries,
    expand,
    gated_alternatives,
    load_yaml,
    macros_of,
    mapping,
    merge_configs,
    strings,
    word_list,
    word_sets,
)
from peerline.service.crisis_detection import (
    ALIASES,
    CATEGORIES,
    MODEL_CATEGORY,
    NO_MATCH,
    Detection,
    priority_of,
)
from peerline.service.crisis_gate import Gate, required_strings
from peerline.service.crisis_others import answer_beside, of_others
from peerline.service.crisis_text import (
    BOUNDARY,
    normalise,
)

#: Categories that words such as "tonight" or "ahora" right after the phrase make a plan.
ESCALATING = frozenset({"intent", "method", "active_thoughts", "wish_dead"})
ESCALATED = "plan"
#: How many tokens after a phrase are looked at for an escalation word.
ESCALATION_TOKENS = 3

PACKAGED_FILE = "crisis_phrases.yaml"
_log = logging.getLogger(__name__)
#: Why a phrase's context dropped it: a negation or a third-person subject before it, or an
#: everyday sense (an `unless` context, a near miss over it).
DROPPED_BY_GRAMMAR = "grammar"
DROPPED_BY_SENSE = "sense"
#: ...or no phrase matched and the whole message is a model near miss (`_everyday_whole`).
DROPPED_WHOLE = "whole"
#: Whether the line runs the statistical layer beside the phrases. Yes: when it was switched on
#: (session 7; trained then on the development data only and scored once on the second held-out
#: set) it took the phrases' recall from 0.667 to 0.803 for one more false alarm of 300
#: (docs/crisis.md). Since session 24 it is fitted on the spent later sets too.
USE_MODEL = True
#: How a burst's texts are joined to be read together: a clause boundary between them.
BURST_JOIN = ". "
#: How many of a texter's latest texts the line reads together (`CrisisDetector.detect_burst`):
#: on session 14's development bursts two found as many crisis bursts as three, four or five
#: (187 of 200, against 168 text by text) for 1 more safe burst alarmed (four or five: 2); three,
#: because people split one thought into more than two texts ("i cant" / "do this" / "anymore").
BURST_TEXTS = 3


class _Lazy:
    """A pattern compiled the first time a message needs it: the gate lets most phrases go
    untried for most texts, so a process need not compile ~1,800 patterns at start-up."""

    __slots__ = ("body", "where", "_compiled")

    def __init__(self, body: str, where: str) -> None:
        self.body = body
        self.where = where
        self._compiled: re.Pattern[str] | None = None

    def compiled(self) -> re.Pattern[str]:
        """Return the compiled pattern (two threads at once may both compile it: harmless)."""
        pattern = self._compiled
        if pattern is None:
            pattern = self._compiled = compile_words(self.body, self.where)
        return pattern

    def search(self, text: str) -> re.Match[str] | None:
        """Return the first match in `text`, if any."""
        return self.compiled().search(text)

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        """Return the matches in `text`."""
        return self.compiled().finditer(text)


@dataclass(frozen=True)
class _Phrase:
    regex: _Lazy
    body: str
    language: str
    category: str
    # Context the whole message must have (`with`) or must not have (`unless`).
    needs: _Lazy | None = None
    unless: _Lazy | None = None
    # A sure phrase stands whatever the model says (every phrase of a coordinator's file).
    sure: bool = False

    @property
    def reach(self) -> int:
        """Return the most urgent rank a hit on this phrase can report."""
        rank = CATEGORIES.index(self.category)
        if self.category in ESCALATING:
            return min(rank, CATEGORIES.index(ESCALATED))
        return rank


@dataclass(frozen=True)
class _Context:
    """Words before a phrase that cancel it (a negator, or a third-person subject)."""

    markers: frozenset[str]
    fillers: frozenset[str]
    window: int
    # Forms of address, and the greetings that may come before one (`addressed`).
    address: frozenset[str] = frozenset()
    greetings: frozenset[str] = frozenset()
    # Two fillers that end the marker's clause (`applies`): "what i didnt say is i ...".
    clefts: frozenset[tuple[str, str]] = frozenset()
    # First words of a phrase that a form of address does not make someone else's: the
    # writer's own "me", or an article naming a thing ("tia la soga esta lista").
    openings: frozenset[str] = frozenset()

    def addressed(self, match: re.Match[str], before: str) -> bool:
        """Say whether `match`, opening with the writer's own "me" or a thing (`openings`),
        follows only a form of address (after at most one greeting) that opens the text: no
        marker then, whoever it names."""
        if not self.address or match.start() != len(before):
            return False
        if match.group(0).partition(" ")[0] not in self.openings:
            return False
        words = [token for token in before.split() if token != BOUNDARY]
        return (
            1 <= len(words) <= 2
            and words[-1] in self.address
            and words[0] in (self.greetings if len(words) == 2 else self.address)
        )

    def applies(self, before: str) -> bool:
        """Say whether `before` ends with a marker followed by at most `window` fillers, none
        of them a cleft that ends the marker's clause."""
        fillers = 0
        after = ""
        for token in reversed(before.split()):
            if token in self.markers:
                return True
            if token == BOUNDARY or token not in self.fillers or (token, after) in self.clefts:
                return False
            fillers += 1
            if fillers > self.window:
                return False
            after = token
        return False


_EMPTY_CONTEXT = _Context(frozenset(), frozenset(), 0)


@dataclass
class _ScanMemo:
    """Hold what one scan of a message learned about its context, for the phrases after."""

    near_misses: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    # An `unless` is asked once a scan: a text repeating a dropped phrase asked it each time.
    unless: dict[_Lazy, bool] = field(default_factory=dict)

    def unless_found(self, unless: _Lazy, norm: str) -> bool:
        """Say whether `unless` is found in `norm` (searched once a scan)."""
        found = self.unless.get(unless)
        if found is None:
            found = self.unless[unless] = unless.search(norm) is not None
        return found


class CrisisDetector:
    """Find crisis language in inbound texts; build one with :meth:`load` and reuse it."""

    def __init__(
        self,
        config: Mapping[str, Any],
        model: crisis_model.Model | None = None,
        *,
        check: bool = True,
    ) -> None:
        """Build a detector from a configuration shaped like ``crisis_phrases.yaml``.

        `model`, when given, is asked about messages no phrase matched, about a phrase hit the
        gate asks about (`crisis_model.gate_asks`), and over a phrase an everyday sense dropped.
        `check` compiles every
        phrase now, so a bad pattern is refused here; without it each phrase is compiled the
        first time a message needs it (the packaged file, which the tests compile whole).
        """
        self.model = model
        macros = macros_of(config.get("macros") or {})
        self._phrases: list[_Phrase] = []
        phrases = mapping(config.get("phrases") or {}, "phrases")
        for language, by_category in phrases.items():
            for named, patterns in mapping(by_category, f"phrases.{language}").items():
                category = ALIASES.get(named, named)
                if category not in CATEGORIES:
                    raise ValueError(
                        f"crisis phrases: unknown category {named!r} for {language!r}; "
                        f"use one of {', '.join(CATEGORIES)}"
                    )
                where = f"phrases.{language}.{named}"
                for entry in entries(patterns, where):
                    source = entry["phrase"]
                    body = expand(source, macros)
                    self._phrases.append(
                        _Phrase(
                            _Lazy(body, source),
                            body,
                            str(language),
                            category,
                            _context_regex(entry.get("with"), macros, where),
                            _context_regex(entry.get("unless"), macros, where),
                            entry.get("sure") is True,
                        )
                    )
        if not self._phrases:
            raise ValueError("crisis phrases: no phrases configured")
        if check:
            for phrase in self._phrases:
                for pattern in (phrase.regex, phrase.needs, phrase.unless):
                    if pattern is not None:
                        pattern.compiled()
        # Most urgent category first, so the first kept hit is the one reported.
        self._phrases.sort(key=lambda p: CATEGORIES.index(p.category))
        # The strings each phrase needs rule out most phrases for most messages. Compiling each
        # body bare only to check it doubled every process's start-up: a checked detector has
        # just compiled it inside word boundaries, and the packaged file's bodies are compiled
        # bare by the tests (test_every_phrase_body_compiles_bare).
        self._gate = Gate([required_strings(p.body, checked=True) for p in self._phrases])

        self._negation = _contexts(config.get("negation") or {}, "negators", "negation")
        self._third_person = _contexts(config.get("third_person") or {}, "markers", "third_person")
        # A phrase whose own words are first person ("would be better off if i died") is about
        # the writer whoever comes before it ("my partner would be ..."): that rule spares it.
        third_person = config.get("third_person") or {}
        self._first_person = word_sets(third_person, "first_person")
        # ...unless the words just before it report someone's speech ("mi hijo dice me quiero
        # morir"): then its first person is the one being quoted.
        self._reported = word_sets(third_person, "reported")
        # Inside someone else's words, the writer as the subject, and the hedges that are not.
        self._writer = frozenset().union(*word_sets(third_person, "writer").values())
        self._hedges = frozenset().union(*word_sets(third_person, "hedges").values())

        # Enough characters before a phrase for the widest window of long words.
        windows = [c.window for c in (*self._negation.values(), *self._third_person.values())]
        self._context_chars = 24 * (max(windows, default=0) + 2)

        self._near_misses = gated_alternatives(config, "near_misses", macros)
        self._model_near_misses = alternatives(config, "model_near_misses", macros)
        self._someone_else = alternatives(config, "someone_else", macros)
        # Nine texts in ten hold no string a someone-else pattern needs: spared the patterns.
        self._someone_else_gate = _language_gate(config, "someone_else", macros)
        self._someone_else_echo = alternatives(config, "someone_else_echo", macros)
        self._someone_else_past = {
            language: compile_words(expand(pattern, macros), f"someone_else_past.{language}")
            for language, pattern in _strings(config, "someone_else_past").items()
        }
        self._escalation = {
            language: re.compile(
                rf"^(?:\w+ ){{0,{ESCALATION_TOKENS - 1}}}?{expand(pattern, macros)}(?!\w)"
            )
            for language, pattern in _strings(config, "escalation").items()
        }

    @classmethod
    def load(cls, extra_path: str | None = None, *, model: bool = USE_MODEL) -> CrisisDetector:
        """Build a detector from the packaged phrase lists, plus a coordinator's extra file.

        The packaged statistical layer goes beside the phrases when `model` is True.
        """
        packaged = resources.files("peerline.service").joinpath(PACKAGED_FILE).read_text("utf-8")
        config = load_yaml(packaged, PACKAGED_FILE)
        if extra_path:
            extra = load_yaml(Path(extra_path).read_text(encoding="utf-8"), extra_path)
            config = merge_configs(config, all_sure(extra, extra_path))
        # A coordinator's file is checked whole when loaded; the packaged one by the tests.
        return cls(config, crisis_model.load() if model else None, check=bool(extra_path))

    @staticmethod
    def priority_of(category: str | None) -> int:
        """Return a category's place in the queue (see the module's :func:`priority_of`)."""
        return priority_of(category)

    @property
    def phrase_count(self) -> int:
        """How many phrase patterns are compiled."""
        return len(self._phrases)

    def detect(self, text: str, *, after_crisis: bool = False, theirs: bool = False) -> Detection:
        """Return the most urgent crisis phrase in `text` the model confirms (or a sure one),
        else a model alarm, or a non-match.

        `after_crisis` says the writer's crisis was raised lately: an everyday sense of a
        phrase then yields to the model at its own threshold, not only when it is far surer.
        `theirs`: another person's words read as the writer's (their request for a person stays).
        """
        found, dropped, norm, sure = self._scan(text)
        if self.model is None or not text:
            return found
        if found.matched:
            if sure or self.model.confirms_norm(norm, found.category, request_aside=not theirs):
                return found
            # The model finds the words unlikely to be a crisis here (a joke, a recovered past,
            # a farewell before a move): only a sure phrase stands, or the model's own verdict
            # (no alarm while the gate is under the threshold, as the trainer keeps it).
            found = self._scan(text, sure_only=True)[0]
            if found.matched:
                return found
        # A dropped phrase said what its words mean. A negation or someone else is grammar the
        # model does not read: it stays quiet (so over a model near miss, unless just after a
        # crisis). An everyday sense (an idiom, a rope for a tent, a kitchen knife) it may
        # overrule far surer than its threshold ("kitchen knife on my lap. been holding it").
        if dropped == DROPPED_BY_GRAMMAR or (dropped == DROPPED_WHOLE and not after_crisis):
            return NO_MATCH
        # Right after their crisis words, a place or a means told with an everyday word ("estoy
        # arriba del edificio de mi trabajo" after "ya no aguanto mas") is far likelier the
        # danger than the errand: the model's ordinary threshold decides. Not over a near miss
        # the list names ("no tengo ningun plan de hacerme dano"): a supporter's question
        # answered no, a recovered past, stay what they were.
        overrule = dropped is not None and not (after_crisis and not self._near_miss_in(norm))
        alarm, category = self.model.verdict_of_norm(
            norm, max(self.model.overrule, self.model.threshold) if overrule else None
        )
        if alarm:
            return Detection(True, None, MODEL_CATEGORY, category or MODEL_CATEGORY)
        return NO_MATCH

    def _near_miss_in(self, norm: str) -> bool:
        """Say whether a near-miss pattern of any language matches the normalised text."""
        return any(regex.search(norm) for regex in self._near_misses.values())

    def detect_burst(self, texts: Sequence[str], *, model: bool = True) -> Detection:
        """Return what the last of `texts` says, or, when it alone says nothing, what the
        texts say read together (a texter's burst, oldest first); with `model` False the
        texts together are read by the phrases only."""
        last = self.detect(texts[-1]) if texts else NO_MATCH
        if last.matched or len(texts) < 2:
            return last
        return self.detect_together(texts, model=model)

    def detect_together(self, texts: Sequence[str], *, model: bool = True) -> Detection:
        """Return what `texts` say read together (the last one already read alone)."""
        # People split one thought across texts, mid-sentence ("i cant" / "do this anymore")
        # or sentence by sentence ("ok so" / "i made up my mind" / "its happening this
        # weekend"); each text alone may say nothing the phrases or the model can read.
        for joined in (" ".join(texts), BURST_JOIN.join(texts)):
            # The model is heard on as many words of letters as on one text (MIN_WORDS):
            # short texts put together are not more words ("t0-22" / "t0-23" / "t0-24" read
            # as counts and times, p 0.95, in the soak test's chat).
            norm = normalise(joined)
            heard = model and crisis_model.letter_words(norm) >= crisis_model.MIN_WORDS
            found = self.detect(joined) if heard else self.detect_phrases(joined)
            if found.matched:
                return found
        return NO_MATCH

    def detect_phrases(self, text: str) -> Detection:
        """Return the most urgent crisis phrase in `text`, or a non-match, model unasked."""
        return self._scan(text)[0]

    def dropped(self, text: str) -> bool:
        """Say whether a phrase in `text` was dropped by its context, or `text` is a model near
        miss (`DROPPED_WHOLE`)."""
        return self._scan(text)[1] is not None

    def dropped_by(self, text: str) -> str | None:
        """Return why the context dropped a phrase in `text` (`DROPPED_*`), or None."""
        return self._scan(text)[1]

    def phrases_and_drop(self, text: str) -> tuple[Detection, str | None]:
        """Return `detect_phrases` and `dropped_by` of `text` from one scan."""
        found, dropped, _, _ = self._scan(text)
        return found, dropped

    def someone_else(self, text: str) -> bool:
        """Say whether `text` tells of someone other than the writer at risk ("my friend just
        took a whole bottle of pills", "mi hermana esta en el puente y no me contesta").

        A worried texter's words are no crisis of theirs, but the line answers them apart:
        someone may be in danger now. Only the `someone_else` patterns say so (each names the
        other person as the one at risk); a negation just before a match, or a past told in the
        same clause (`someone_else_past`: "my uncle attempted years ago"), drops it.
        """
        return bool(self._someone_else_spans(text)[1])

    def answer(self, text: str, found: Detection) -> tuple[Detection, bool]:
        """Return what the line acts on in `text`, given what was found in it (`detect`, or
        its texts read together), and whether the words tell of someone else at risk and of no
        crisis of the writer's (a worried texter): `crisis_others.answer_beside`."""
        return answer_beside(self, text, found, self.beside_someone_else(text, found))

    def beside_someone_else(self, text: str, found: Detection = NO_MATCH) -> Detection | None:
        """Return what `text` says of the writer beside someone else at risk, or None when it
        tells of nobody else at risk, or when `found` (what `detect` found in it) is a phrase of
        the writer's own, not within the other person's words.

        The other person's words are cut out and the rest read alone ("my sister took all her
        pills. i took the rest of the bottle": the grammar drops the phrase with the sister's
        words, but the rest is an attempt). Words that join the writer to the other person's
        risk (`someone_else_echo`: "ill jump too", "yo tambien tengo una") are the writer's
        crisis too, in the category the model names for the whole text: a rest of a few words
        is too short for the model to read.
        """
        norm, spans = self._someone_else_spans(text)
        own_phrase = found.phrase != MODEL_CATEGORY and not _in_spans(
            norm, spans, found, self._writer, self._hedges
        )
        if not spans or (found.matched and own_phrase):
            return None
        rest, end, inside = [], 0, False
        for start, stop in spans:
            rest.append(norm[end:start])
            # The writer named inside the other person's words owns what follows: a span can
            # run over unpunctuated words ("mi hermano esta en el puente y me tome todo no
            # contesta").
            mine = _writer_in(norm, max(start, end), stop, self._writer, self._hedges)
            if mine is not None:
                rest.append(norm[mine:stop])
                inside = True
            end = max(end, stop)
        rest.append(norm[end:])
        left = f" {BOUNDARY} ".join(part for part in rest if part.strip())
        alone = self.detect(left)
        # What is left may tell of the other person too ("she took pills before she went up
        # there, she is on the roof and not answering"): theirs, not the writer's.
        if alone.matched and not of_others(self, left, alone)[1]:
            return alone
        if inside and found.matched:
            return found  # the writer's words alone too few to read; the whole alarmed
        found = NO_MATCH
        for language, regex in self._someone_else_echo.items():
            echo = regex.search(norm, spans[0][1])
            if echo:
                category = None
                if self.model is not None:
                    category = self.model.verdict_of_norm(norm, 0.0)[1]
                return Detection(True, language, echo.group(0), category or MODEL_CATEGORY)
        return found

    def _someone_else_spans(self, text: str) -> tuple[str, list[tuple[int, int]]]:
        """Return the normalised text and the spans where it tells of someone else at risk."""
        if not text or not self._someone_else:
            return "", []
        norm = normalise(text)
        spans: list[tuple[int, int]] = []
        gate, languages = self._someone_else_gate
        for language in {languages[index] for index in gate.candidates(norm)}:
            regex = self._someone_else[language]
            negation = self._negation.get(language, _EMPTY_CONTEXT)
            past = self._someone_else_past.get(language)
            for match in regex.finditer(norm):
                if negation.applies(self._before(match, norm)):
                    continue
                # The clause the match is in, between boundaries: a past elsewhere in the
                # text ("she survived an attempt last year") does not make this one past.
                start = norm.rfind(BOUNDARY, 0, match.start()) + 1
                end = norm.find(BOUNDARY, match.end())
                clause = norm[start : end if end >= 0 else len(norm)]
                if past is None or not past.search(clause):
                    spans.append(match.span())
        return norm, sorted(spans)

    def _scan(
        self, text: str, *, sure_only: bool = False
    ) -> tuple[Detection, str | None, str, bool]:
        """Return the most urgent phrase kept (of the sure ones only, if `sure_only`), why a
        phrase matched but was dropped (None if none was), the normalised text, and whether the
        phrase is sure."""
        if not text:
            return NO_MATCH, None, "", False
        norm = normalise(text)
        candidates = self._gate.candidates(norm)
        if not candidates:
            return NO_MATCH, _everyday_whole(self._model_near_misses, norm), norm, False
        memo = _ScanMemo()
        best = NO_MATCH
        best_rank = len(CATEGORIES)
        dropped: str | None = None
        sure = False
        for index in sorted(candidates):
            phrase = self._phrases[index]
            if phrase.reach >= best_rank or (sure_only and not phrase.sure):
                continue  # it could not be more urgent than what was found
            if phrase.needs is not None and not phrase.needs.search(norm):
                # Context a phrase lacks says nothing about the words: the model may still hear
                # them (only a negation, someone else, an idiom or an `unless` drops a phrase).
                continue
            for match in phrase.regex.finditer(norm):
                reason = self._kept(phrase, match, norm, memo)
                if reason is None:
                    category = self._category(phrase, match, norm)
                    rank = CATEGORIES.index(category)
                    if rank < best_rank:
                        best_rank = rank
                        best = Detection(True, phrase.language, match.group(0), category)
                        sure = phrase.sure
                    break
                # A negation or someone else outranks an everyday sense (`detect`).
                if dropped is None or reason == DROPPED_BY_GRAMMAR:
                    dropped = reason
        if dropped is None and not best.matched:
            dropped = _everyday_whole(self._model_near_misses, norm)
        return best, dropped, norm, sure

    def _kept(
        self,
        phrase: _Phrase,
        match: re.Match[str],
        norm: str,
        memo: _ScanMemo,
    ) -> str | None:
        """Return why the context drops a match (`DROPPED_BY_*`), or None if it stands."""
        # Grammar is asked first: a negated phrase is negated whatever else its context says
        # ("im not bleeding out lol").
        before = self._before(match, norm)
        if self._negation.get(phrase.language, _EMPTY_CONTEXT).applies(before):
            return DROPPED_BY_GRAMMAR
        if self._of_someone_else(phrase, match, before):
            return DROPPED_BY_GRAMMAR
        if self._everyday(phrase, match, norm, memo):
            return DROPPED_BY_SENSE
        return None

    def _before(self, match: re.Match[str], norm: str) -> str:
        """Return the last few words before a match."""
        # Only they matter: a bounded slice keeps long messages with many hits linear.
        cut = match.start() - self._context_chars
        before = norm[max(0, cut) : match.start()]
        if cut > 0:
            before = before.partition(" ")[2]  # drop the word the cut went through
        return before

    def _of_someone_else(self, phrase: _Phrase, match: re.Match[str], before: str) -> bool:
        """Say whether a match tells of someone other than the writer."""
        third = self._third_person.get(phrase.language, _EMPTY_CONTEXT)
        if third.addressed(match, before):
            return False
        return third.applies(before) and not (
            self._first_person.get(phrase.language, frozenset()).intersection(
                match.group(0).split()
            )
            and not self._reported.get(phrase.language, frozenset()).intersection(
                before.split()[-(third.window + 1) :]
            )
        )

    def _everyday(
        self,
        phrase: _Phrase,
        match: re.Match[str],
        norm: str,
        memo: _ScanMemo,
    ) -> bool:
        """Say whether a match is in an everyday sense (its `unless`, or a near miss over it)."""
        if phrase.unless is not None and memo.unless_found(phrase.unless, norm):
            return True
        spans = memo.near_misses.get(phrase.language)
        if spans is None:
            regex = self._near_misses.get(phrase.language)
            spans = [m.span() for m in regex.finditer(norm)] if regex is not None else []
            memo.near_misses[phrase.language] = spans
        start, end = match.span()
        return any(miss_start < end and start < miss_end for miss_start, miss_end in spans)

    def _category(self, phrase: _Phrase, match: re.Match[str], norm: str) -> str:
        if phrase.category in ESCALATING:
            escalation = self._escalation.get(phrase.language)
            if escalation is not None and escalation.search(norm[match.end() :].lstrip()):
                return ESCALATED
        return phrase.category


def _strings(config: Mapping[str, Any], key: str) -> dict[str, str]:
    """Return a section of one pattern a language, refusing one that is not a string."""
    found: dict[str, str] = {}
    for language, pattern in mapping(config.get(key) or {}, key).items():
        if not isinstance(pattern, str):
            raise ValueError(f"crisis phrases: {key}.{language} must be a string")
        found[str(language)] = pattern
    return found


def _everyday_whole(patterns: Mapping[str, re.Pattern[str]], norm: str) -> str | None:
    """Return `DROPPED_WHOLE` where a model near miss (an everyday text the model alone has
    misread, "ya me tome mi pastilla") is the whole message: the model is then not heard."""
    return DROPPED_WHOLE if any(p.search(norm) for p in patterns.values()) else None


# --- the gate: which phrases a message could match at all ----------------------------------
#
# Running four hundred patterns over every message costs milliseconds. Each pattern is parsed
# once to find strings that any match of it must contain ("took", "taken", "swallowed" for a
# pattern that starts with one of them); a message then runs only the patterns one of whose
# strings it holds, found through the message's three-letter pieces.


def _writer_in(
    norm: str, start: int, stop: int, writer: frozenset[str], hedges: frozenset[str]
) -> int | None:
    """Return where the first `writer` word (not followed by one of `hedges`) in
    `norm[start:stop]` begins, with a "me" just before it; None without one."""
    words = [(m.start(), m.group(0)) for m in re.finditer(r"\S+", norm[start:stop])]
    for k, (at, word) in enumerate(words):
        if word in writer and (k + 1 >= len(words) or words[k + 1][1] not in hedges):
            if k > 0 and words[k - 1][1] == "me":
                at = words[k - 1][0]
            return start + at
    return None


def _in_spans(
    norm: str,
    spans: Sequence[tuple[int, int]],
    found: Detection,
    writer: frozenset[str],
    hedges: frozenset[str],
) -> bool:
    """Say whether the phrase `found` lies within one of `spans` of `norm`, no `writer` word
    (not followed by one of `hedges`) between the other person and it."""
    if not found.matched or found.phrase in (None, MODEL_CATEGORY):
        return False
    # A writer named between the other person and the phrase owns it: a span can run over
    # unpunctuated words ("my brother is on the bridge and i took 30 pills he wont answer").
    for start, stop in spans:
        at = norm.find(found.phrase, start, stop)
        if 0 <= at and at + len(found.phrase) <= stop:
            return _writer_in(norm, start, at + len(found.phrase), writer, hedges) is None
    return False


def _language_gate(
    config: Mapping[str, Any], key: str, macros: Mapping[str, str]
) -> tuple[Gate, list[str]]:
    """Return a gate over the patterns `alternatives` joins under `key`, and each one's
    language: a language whose patterns the gate finds no candidate of cannot match."""
    needs: list[tuple[frozenset[str], bool] | None] = []
    languages: list[str] = []
    for language, patterns in mapping(config.get(key) or {}, key).items():
        for source in strings(patterns, f"{key}.{language}"):
            # `alternatives` has compiled the pattern; one the parser cannot read is always run.
            needs.append(required_strings(expand(source, macros), checked=True))
            languages.append(str(language))
    return Gate(needs), languages


def _context_regex(source: str | None, macros: Mapping[str, str], where: str) -> _Lazy | None:
    if source is None:
        return None
    return _Lazy(expand(source, macros), f"{where}: {source}")


def _contexts(config: Any, key: str, where: str) -> dict[str, _Context]:
    section = mapping(config, where)
    window = section.get("window", 4)
    if not isinstance(window, int) or window < 0:
        raise ValueError(f"crisis phrases: {where}.window must be a whole number")
    markers = mapping(section.get(key) or {}, f"{where}.{key}")
    fillers = mapping(section.get("fillers") or {}, f"{where}.fillers")
    address = mapping(section.get("address") or {}, f"{where}.address")
    greetings = mapping(section.get("greetings") or {}, f"{where}.greetings")
    clefts = mapping(section.get("clefts") or {}, f"{where}.clefts")
    openings = mapping(section.get("openings") or {}, f"{where}.openings")

    def words(found: Mapping[str, Any], name: str, language: str) -> frozenset[str]:
        return frozenset(word_list(strings(found.get(language), f"{where}.{name}.{language}")))

    def pairs(language: str) -> frozenset[tuple[str, str]]:
        found = set()
        for pair in strings(clefts.get(language), f"{where}.clefts.{language}"):
            first, *rest = word_list([pair])
            if len(rest) != 1:
                raise ValueError(f"crisis phrases: {where}.clefts.{language}: two words each")
            found.add((first, rest[0]))
        return frozenset(found)

    return {
        str(language): _Context(
            words(markers, key, language),
            words(fillers, "fillers", language),
            window,
            words(address, "address", language),
            words(greetings, "greetings", language),
            pairs(language),
            words(openings, "openings", language),
        )
        for language in set(markers) | set(fillers)
    }


if __name__ == "__main__":
    import sys

    from peerline.service.crisis_eval import main

    sys.exit(main())
