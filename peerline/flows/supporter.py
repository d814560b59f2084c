"""A supporter's commands as a pure state machine: (state, message) -> effects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from peerline.flows import effects as fx
from peerline.flows.catalogue import Phrase
from peerline.flows.keywords import Keyword, classify
from peerline.flows.notes import Note, edits, parse_note, score_alone


@dataclass(frozen=True)
class ScoreAsked:
    """The chat (or call) whose missing 1-5 the line has just asked a supporter for, and the
    topics its note already has."""

    alias: str | Phrase
    topics: tuple[str, ...] = ()


@dataclass(frozen=True)
class SupporterState:
    """What the flow needs to know about a supporter right now."""

    away: bool = False
    on_shift: bool = False
    chat_alias: str | None = None
    offer_id: int | None = None
    offer_alias: str | None = None
    # Their last offer went to someone else's #take, they were told so, and it would still
    # be open: a #take of it now lost that race, and needs no second answer.
    offer_taken: bool = False
    # After a chat flagged for safety: no offers until the pause ends or they text #ready.
    paused: bool = False
    # The chat a #note, #referred or #debrief is about: the current one, else the last.
    last_alias: str | Phrase | None = None  # a Phrase for a caller with a hidden number
    topics: tuple[str, ...] = ()
    # Asked minutes ago for a chat's missing 1-5: a bare "#note 3" completes that chat's note.
    score_asked: ScoreAsked | None = None


@dataclass(frozen=True)
class Outcome:
    """The flow's answer: what to do."""

    effects: list[fx.Effect] = field(default_factory=list)


def _take(state: SupporterState) -> Outcome:
    if state.offer_id is None:
        # "Someone else already took that chat" was their answer: once is enough.
        return Outcome([] if state.offer_taken else [fx.Reply("no_offer")])
    return Outcome([fx.AcceptOffer(state.offer_id)])


def _in_chat(act: Callable[[str], Outcome]) -> Callable[[SupporterState], Outcome]:
    """Make a command about the current chat: run on its alias, or say there is no chat."""

    def command(state: SupporterState) -> Outcome:
        if state.chat_alias is None:
            return Outcome([fx.Reply("not_in_chat")])
        return act(state.chat_alias)

    return command


@_in_chat
def _done(alias: str) -> Outcome:
    # The news first, then the after-chat text that ending the chat sends.
    return Outcome([fx.Reply("you_ended", {"alias": alias}), fx.EndChat(by="supporter")])


def _pass(state: SupporterState) -> Outcome:
    if state.offer_id is not None:
        return Outcome(
            [fx.DeclineOffer(state.offer_id), fx.Reply("declined", {"alias": state.offer_alias})]
        )
    if state.chat_alias is not None:
        return Outcome([fx.PassChat(), fx.Reply("passed", {"alias": state.chat_alias})])
    return Outcome([fx.Reply("not_in_chat")])


def _away(state: SupporterState) -> Outcome:
    effects: list[fx.Effect] = [fx.SetAway(True)]
    if state.offer_id is not None:
        effects.append(fx.DeclineOffer(state.offer_id))
    alias = state.chat_alias
    still = Phrase("away_still_in_chat", {"alias": alias}) if alias else ""
    effects.append(fx.Reply("away_ok", {"still_in_chat": still}))
    return Outcome(effects)


def _back(state: SupporterState) -> Outcome:
    off_shift = "" if state.on_shift else Phrase("back_off_shift")
    return Outcome([fx.SetAway(False), fx.Reply("back_ok", {"off_shift": off_shift})])


def _help(state: SupporterState) -> Outcome:
    return Outcome([fx.Reply("supporter_help")])


@_in_chat
def _alert(alias: str) -> Outcome:
    return Outcome([fx.RaiseAlert(alias)])


@_in_chat
def _block(alias: str) -> Outcome:
    return Outcome(
        [
            fx.BlockTexter(),
            fx.Reply("block_ok", {"alias": alias}),
            fx.EndChat(by="supporter", ask_rating=False),
        ]
    )


def _debrief(state: SupporterState) -> Outcome:
    return Outcome([fx.AskDebrief()])


def _ready(state: SupporterState) -> Outcome:
    if not state.paused:
        return Outcome([fx.Reply("ready_not_paused")])
    return Outcome([fx.Ready(), fx.Reply("ready_ok_away" if state.away else "ready_ok")])


def _referred(state: SupporterState) -> Outcome:
    if state.last_alias is None:
        return Outcome([fx.Reply("note_no_chat")])
    return Outcome([fx.MarkReferred(), fx.Reply("referred_ok", {"alias": state.last_alias})])


def note(state: SupporterState, argument: str) -> Outcome:
    """Return what a `#note` does: keep how the last chat went, or say how to write one.

    A score alone ("#note 3") answers the line's question for a chat's missing 1-5 when it
    asked one (`score_asked`), even from the next chat; a note with topics or words is about
    the current chat, else the last."""
    topics = ", ".join(state.topics)
    read = parse_note(argument, state.topics)
    asked = state.score_asked
    if asked is not None and isinstance(read, Note) and score_alone(read):
        # Its topics are those of the note that asked: "Noted about A52: 3/5, lonely."
        noted = ", ".join(asked.topics) or "-"
        done = {"alias": asked.alias, "score": f"{read.score}/5", "noted_topics": noted}
        key = "note_ok" if asked.topics else "note_ok_no_topics"
        return Outcome([fx.SaveNote(read), fx.Reply(key, done | {"topics": topics})])
    if state.last_alias is None:
        return Outcome([fx.Reply("note_no_chat")])
    if not isinstance(read, Note):
        key = "note_score" if read.reason == "score" else "note_help"
        return Outcome([fx.Reply(key, {"topics": topics})])
    summary = {
        "alias": state.last_alias,
        "score": f"{read.score}/5" if read.score else "-",
        "noted_topics": ", ".join(read.topics) or "-",
    }
    # With no topic word matched, the list is there to pick from next time; with no 1-5
    # ("#note great chat"), the reply asks for it rather than showing a bare "-".
    key = "note_ok" if read.topics else "note_ok_no_topics"
    if read.score is None:
        key = "note_ok_no_score" if read.topics else "note_ok_no_score_topics"
    return Outcome([fx.SaveNote(read), fx.Reply(key, summary | {"topics": topics})])


COMMANDS: dict[str, Callable[[SupporterState], Outcome]] = {
    "#take": _take,
    "#done": _done,
    "#pass": _pass,
    "#away": _away,
    "#back": _back,
    "#help": _help,
    "#alert": _alert,
    "#block": _block,
    "#debrief": _debrief,
    "#ready": _ready,
    "#referred": _referred,
}


# Every command a supporter can text, for suggestions; #call takes an argument.
COMMAND_NAMES = (*COMMANDS, "#call", "#note")
# A typo this many edits away from a command (a swap, a slip, a letter too many or too few)
# gets "did you mean"; two would take "#dance" for "#done".
NEAR_MISS_EDITS = 1


def nearest_command(word: str) -> str | None:
    """Return the command a mistyped '#' word most likely meant, if one is close enough."""
    best = min(COMMAND_NAMES, key=lambda name: edits(word, name))
    if edits(word, best) <= NEAR_MISS_EDITS:
        return best
    # A command with letters run on ("#takeit", "#doneee").
    return next((name for name in COMMAND_NAMES if word.startswith(name)), None)


def _command_word(text: str) -> tuple[str, str] | None:
    """Return ("#word", rest) for a message that starts with '#' (any case: phones capitalise)."""
    stripped = text.strip()
    if not stripped.startswith("#"):
        return None
    words = stripped.split(maxsplit=1)
    return words[0].lower(), words[1].strip() if len(words) > 1 else ""


def _loose_command(text: str) -> str | None:
    """Return the command '# take' or '#done.' names once its space and punctuation go."""
    squeezed = "#" + text.strip()[1:].lstrip().split(maxsplit=1)[0].lower().rstrip(".,!?;:")
    return squeezed if squeezed in COMMAND_NAMES else None


def _bare_command(text: str) -> str | None:
    """Return the command a message names without its '#' ("take", "Done."), if it does."""
    word = text.strip().lower().rstrip(".,!?;: ")
    command = "#" + word
    return command if command in COMMAND_NAMES else None


def is_take(text: str) -> bool:
    """Say whether a message is the command #take (any case)."""
    command = _command_word(text)
    return command is not None and command[0] == "#take"


def note_argument(text: str) -> str | None:
    """Return what a `#note` says ("#note4 lonely": "4 lonely"), or None for another message."""
    command = _command_word(text)
    if command is None:
        return None
    word, argument = command
    if word.rstrip(".,;:-") == "#note" or word.startswith("#note") and word[5:6].isdigit():
        # "#note4 lonely": the score run on to the command is still the score; a note
        # keeps nothing until it is read, so "#note:" is read as it was meant.
        return f"{word[5:].lstrip('.,;:-')} {argument}"
    return None


def answers_a_score(text: str, topics: tuple[str, ...]) -> bool:
    """Say whether a message is a `#note` of a score alone ("#note 3"), which may answer the
    line's question for a chat's missing 1-5."""
    argument = note_argument(text)
    read = parse_note(argument, topics) if argument is not None else None
    return isinstance(read, Note) and score_alone(read)


def decide(state: SupporterState, text: str) -> Outcome:
    """Return what the line does with one message from a supporter."""
    keyword = classify(text)
    if keyword is Keyword.STOP:
        # A supporter who opts out gets nothing more, so they can take no new chats either.
        return Outcome([fx.SetOptOut(True), fx.SetAway(True)])
    if keyword is Keyword.START:
        return Outcome([fx.SetOptOut(False), fx.Reply("supporter_help")])
    command = _command_word(text)
    if command is not None:
        word, argument = command
        if word == "#call":
            return Outcome([fx.PlaceCall(argument)])
        noted = note_argument(text)
        if noted is not None:
            return note(state, noted)
        handler = COMMANDS.get(word)
        if handler is not None:
            return handler(state)
        # "# take" and "#done." are asked about, not run: a stray mark may be a half-typed
        # message, and ending a chat by accident costs a texter more than one question.
        meant = _loose_command(text) if word == "#" or word.rstrip(".,!?;:") != word else None
        meant = meant or nearest_command(word)
        if meant is not None:
            return Outcome([fx.Reply("did_you_mean", {"command": meant})])
        return Outcome([fx.Reply("unknown_command", {"command": text.strip().split()[0][:20]})])
    bare = _bare_command(text)
    if state.chat_alias is not None:
        # Chat text is never swallowed: a bare "done" goes to the texter, with a hint after.
        effects: list[fx.Effect] = [fx.Relay(text)]
        if bare is not None:
            hint = {"alias": state.chat_alias, "command": bare}
            effects.append(fx.Reply("relayed_did_you_mean", hint))
        return Outcome(effects)
    if bare is not None:
        return Outcome([fx.Reply("did_you_mean", {"command": bare})])
    if state.offer_id is not None:
        # "ok give me a sec": the offer is still theirs to take, and still timing out.
        return Outcome([fx.Reply("not_in_chat_offer", {"alias": state.offer_alias})])
    return Outcome([fx.Reply("not_in_chat")])
