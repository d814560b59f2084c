"""A supporter's commands as a pure state machine: (state, message) -> effects."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from peerline.flows import effects as fx
from peerline.flows.keywords import Keyword, classify


@dataclass(frozen=True)
class SupporterState:
    """What the flow needs to know about a supporter right now."""

    away: bool = False
    on_shift: bool = False
    chat_alias: str | None = None
    offer_id: int | None = None
    offer_alias: str | None = None


@dataclass(frozen=True)
class Step:
    """The flow's answer: what to do."""

    effects: list[fx.Effect] = field(default_factory=list)


def _take(state: SupporterState) -> Step:
    if state.offer_id is None:
        return Step([fx.Reply("no_offer")])
    return Step([fx.AcceptOffer(state.offer_id)])


def _done(state: SupporterState) -> Step:
    if state.chat_alias is None:
        return Step([fx.Reply("not_in_chat")])
    return Step([fx.EndChat(by="supporter"), fx.Reply("you_ended", {"alias": state.chat_alias})])


def _pass(state: SupporterState) -> Step:
    if state.offer_id is not None:
        return Step(
            [fx.DeclineOffer(state.offer_id), fx.Reply("declined", {"alias": state.offer_alias})]
        )
    if state.chat_alias is not None:
        return Step([fx.PassChat(), fx.Reply("passed", {"alias": state.chat_alias})])
    return Step([fx.Reply("not_in_chat")])


def _away(state: SupporterState) -> Step:
    effects: list[fx.Effect] = [fx.SetAway(True)]
    if state.offer_id is not None:
        effects.append(fx.DeclineOffer(state.offer_id))
    still = f" You are still in your chat with {state.chat_alias}." if state.chat_alias else ""
    effects.append(fx.Reply("away_ok", {"still_in_chat": still}))
    return Step(effects)


def _back(state: SupporterState) -> Step:
    off_shift = "" if state.on_shift else " (You are not on shift right now.)"
    return Step([fx.SetAway(False), fx.Reply("back_ok", {"off_shift": off_shift})])


def _help(state: SupporterState) -> Step:
    return Step([fx.Reply("supporter_help")])


def _alert(state: SupporterState) -> Step:
    if state.chat_alias is None:
        return Step([fx.Reply("not_in_chat")])
    return Step(
        [
            fx.RaiseSafety("supporter", "supporter_alert"),
            fx.Reply("alert_ok", {"alias": state.chat_alias}),
        ]
    )


def _block(state: SupporterState) -> Step:
    if state.chat_alias is None:
        return Step([fx.Reply("not_in_chat")])
    return Step(
        [
            fx.BlockTexter(),
            fx.EndChat(by="supporter", ask_rating=False),
            fx.Reply("block_ok", {"alias": state.chat_alias}),
        ]
    )


COMMANDS: dict[str, Callable[[SupporterState], Step]] = {
    "#take": _take,
    "#done": _done,
    "#pass": _pass,
    "#away": _away,
    "#back": _back,
    "#help": _help,
    "#alert": _alert,
    "#block": _block,
}


def step(state: SupporterState, text: str) -> Step:
    """Return what the line does with one message from a supporter."""
    keyword = classify(text)
    if keyword is Keyword.STOP:
        # A supporter who opts out gets nothing more, so they can take no new chats either.
        return Step([fx.SetOptOut(True), fx.SetAway(True)])
    if keyword is Keyword.START:
        return Step([fx.SetOptOut(False), fx.Reply("supporter_help")])
    words = text.strip().split(maxsplit=1)
    if words and words[0].startswith("#"):
        command = words[0].lower()
        if command == "#call":
            return Step([fx.PlaceCall(words[1].strip() if len(words) > 1 else "")])
        handler = COMMANDS.get(command)
        if handler is None:
            return Step([fx.Reply("unknown_command", {"command": words[0][:20]})])
        return handler(state)
    if state.chat_alias is not None:
        return Step([fx.Relay(text)])
    return Step([fx.Reply("not_in_chat")])
