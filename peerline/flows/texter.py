"""The texter's conversation as a pure state machine: (state, message) -> (state, effects)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from peerline.flows import effects as fx
from peerline.flows.keywords import (
    STOP_LIKE_SPANISH,
    Keyword,
    asks_the_line,
    carrier_opt_in,
    classify,
    is_ack,
    is_thanks,
    looks_spanish,
    normalise,
    rating_of,
)
from peerline.flows.language import CLEAR_WORDS, clearly, fold, guess, plainly

NEW, WELCOMED, QUEUED, ACTIVE, RATING, CLOSED = (
    "new",
    "welcomed",
    "queued",
    "active",
    "rating",
    "closed",
)


@dataclass(frozen=True)
class TexterState:
    """What the flow needs to know about the texter and their open conversation."""

    stage: str = NEW
    language: str = "en"
    opted_out: bool = False
    returning: bool = False
    supporter_name: str | None = None
    previous_supporter: str | None = None
    crisis_reply_due: bool = True
    erase_pending: bool = False
    # False while a "you are still in line" text went out lately: once in a while is enough.
    still_waiting_due: bool = True
    # False while a place in line went out within the last few minutes: a question to the line
    # ("hello? is anyone coming") is answered sooner than the reminder, but not every time.
    asked_due: bool = True
    # False while the words for someone worried about another person went out lately.
    someone_else_due: bool = True
    # The words tell of a medical emergency under way for another person ("hes not
    # breathing": flows.emergency), and 911-now for them did not go out in the last minutes:
    # it goes out, plainly, each time it is told again (session 28).
    emergency: bool = False
    emergency_due: bool = False
    # The languages the texter's earlier texts in this conversation read as, newest first
    # ("" for a text that says none: it breaks a run). The runtime fills it only when this
    # text reads as the other language than theirs: it says whether their language is
    # established and whether the text before this one said the same.
    earlier_languages: tuple[str, ...] = ()
    # False while the line's menu ("reply YES...": a welcome, an invite, START's answer) went
    # out within the last few minutes: words written then get a short answer, not it again.
    menu_due: bool = True
    # In a chat flagged for crisis words (session 28): BYE is asked about once (`bye_asked`:
    # the question went out minutes ago) before it ends the chat, and the goodbye says where
    # to turn, with no rating asked.
    chat_flagged: bool = False
    bye_asked: bool = False
    # False while the short answer to such words (`menu_again`) went out seconds ago: a
    # burst ("💔", "😭", "🙏") hears it once, not once a text (session 28).
    again_due: bool = True
    # False while the words for an attempt under way ("call 911 now") went out within the
    # crisis window: the crisis resources sent before them (crisis_reply_due False) do not
    # hold them back, since an overdose taken is news that needs 911, not only 988.
    attempt_reply_due: bool = True
    # Written within minutes of the end of a chat (the runtime's window), nothing since: a 1-5
    # still rates it, after other words too, and other words are for its supporter (named
    # here while still on shift), answered warmly rather than with a welcome.
    after_chat: bool = False
    after_chat_rated: bool = False
    after_chat_supporter: str | None = None
    # False once the short answer to words after that chat went out, or its thank-you.
    after_chat_due: bool = True
    thanks_due: bool = True


@dataclass(frozen=True)
class LineStatus:
    """What the line looks like right now, as the texter would be told."""

    open_now: bool
    next_opening: str | None = None
    position: int = 1
    wait_minutes: int | None = None
    groups: str | None = None
    # Open, but everyone on shift is away or at their cap: nobody is available right now.
    nobody_free: bool = False
    # Crisis words in this very text move a texter already in line up: they hear their place.
    moved_up: bool = False


@dataclass(frozen=True)
class Outcome:
    """The flow's answer: the new stage and what to do."""

    stage: str
    effects: list[fx.Effect] = field(default_factory=list)


# A message this long (or longer) is someone telling their story, not saying hello.
STORY_WORDS = 12
STORY_CHARS = 80


def is_story(text: str) -> bool:
    """Say whether a message tells something, so the answer should acknowledge it."""
    words = text.split()
    return len(words) >= STORY_WORDS or (len(words) > 3 and len(text.strip()) >= STORY_CHARS)


def _first_language(
    state: TexterState, text: str, keyword: Keyword
) -> tuple[TexterState, list[fx.Effect]]:
    """Switch a first text written in Spanish to Spanish, before anything is answered."""
    if state.stage not in (NEW, CLOSED) or state.language != "en":
        return state, []
    if keyword in (Keyword.ENGLISH, Keyword.SPANISH):
        return state, []  # the welcome sets the language asked for
    if guess(text) == "es":
        return replace(state, language="es"), [fx.SetLanguage("es")]
    return state, []


def _wait(status: LineStatus) -> dict[str, object]:
    return {
        "position": status.position,
        "wait_minutes": status.wait_minutes,
        "nobody_free": status.nobody_free,
    }


def _groups(state: TexterState, status: LineStatus) -> Outcome:
    if status.groups:
        return Outcome(state.stage, [fx.Reply("groups", {"groups": status.groups})])
    return Outcome(state.stage, [fx.Reply("no_groups")])


def _ask_for_peer(state: TexterState, status: LineStatus, same: bool = False) -> Outcome:
    if status.open_now:
        effects: list[fx.Effect] = [fx.JoinQueue()]
        if same and state.previous_supporter:
            effects.append(fx.PreferPrevious())
            effects.append(fx.Reply("same_ok", {"name": state.previous_supporter}))
        elif state.previous_supporter:
            params = {**_wait(status), "name": state.previous_supporter}
            effects.append(fx.Reply("queued_returning", params))
        else:
            effects.append(fx.Reply("queued", _wait(status)))
        return Outcome(QUEUED, effects)
    if status.next_opening:
        return Outcome(WELCOMED, [fx.Reply("closed", {"next_opening": status.next_opening})])
    return Outcome(WELCOMED, [fx.Reply("closed_no_shifts")])


def _welcome(state: TexterState, status: LineStatus, text: str, keyword: Keyword) -> Outcome:
    opening: list[fx.Effect] = []
    if keyword is Keyword.ENGLISH:
        state, opening = replace(state, language="en"), [fx.SetLanguage("en")]
    elif keyword is Keyword.SPANISH or (state.language == "en" and looks_spanish(text)):
        state, opening = replace(state, language="es"), [fx.SetLanguage("es")]
    if not state.menu_due and keyword is Keyword.NONE and not opening:
        # "can i talk to sam again" just after START's "reply YES", "help me please" just after
        # HELP's answer: an answer, not the menu.
        return _again(replace(state, stage=WELCOMED), status, text)
    if is_story(text) and keyword is Keyword.NONE:
        opening.append(fx.Reply("welcome_story"))
    elif not ((state.returning or not state.menu_due) and keyword in (Keyword.YES, Keyword.SAME)):
        # A returning texter whose first word is YES is not told to reply YES (a tester found
        # "Good to hear from you again. Reply YES..." just before the queue's text), nor one
        # who just had HELP's answer, which asked for it.
        opening.append(fx.Reply("welcome_back" if state.returning else "welcome"))
    welcomed = replace(state, stage=WELCOMED)
    if keyword in (Keyword.YES, Keyword.SAME):
        nxt = _ask_for_peer(welcomed, status, same=keyword is Keyword.SAME)
        return Outcome(nxt.stage, opening + nxt.effects)
    if keyword is Keyword.NOTIFY:
        return Outcome(WELCOMED, opening + _notify(welcomed, status).effects)
    if keyword is Keyword.GROUPS:
        return Outcome(WELCOMED, opening + _groups(welcomed, status).effects)
    return Outcome(WELCOMED, opening)


def _notify(state: TexterState, status: LineStatus) -> Outcome:
    if status.open_now:
        return Outcome(state.stage, [fx.Reply("open_now")])
    return Outcome(state.stage, [fx.NotifyOnOpen(), fx.Reply("notify_ok")])


def _welcomed(state: TexterState, status: LineStatus, text: str, keyword: Keyword) -> Outcome:
    if keyword in (Keyword.YES, Keyword.SAME):
        return _ask_for_peer(state, status, same=keyword is Keyword.SAME)
    if keyword is Keyword.NOTIFY:
        return _notify(state, status)
    if keyword is Keyword.GROUPS:
        return _groups(state, status)
    if keyword is Keyword.BYE:
        return Outcome(CLOSED, [fx.Close(), fx.Reply("left_queue")])
    switch, once = _language_move(state, text, keyword)
    if switch:
        # "perdon, no hablo ingles": the welcome they could not read, again in their language.
        return Outcome(WELCOMED, [*switch, fx.Reply("welcome")])
    if not state.menu_due:
        # "is anyone there" two seconds after the welcome: an answer, not the menu again.
        return _again(state, status, text, once)
    invite = "invite_story" if is_story(text) else "invite"
    return Outcome(WELCOMED, [fx.Reply(invite, language=once)])


def _again(
    state: TexterState, status: LineStatus, text: str, language: str | None = None
) -> Outcome:
    """Answer words written minutes after the menu, briefly. A plain request for a person
    ("can someone talk to me", "talk to someone") or a story is a YES: they join the line (with
    nobody on shift, they hear when it opens, as YES would). Words naming the supporter they
    had get the prompt to reply SAME; other words the short reminder that a real person will
    read them once they reply YES, each time (a flood is quietened by the runtime, not here)."""
    name = state.previous_supporter
    if status.open_now and _names_previous(state, text):
        return Outcome(WELCOMED, [fx.Reply("menu_again_same", {"name": name}, language=language)])
    if asks_for_a_person(text) or is_story(text) or not status.open_now:
        asked = _ask_for_peer(state, status)
        if language is None:
            return asked
        return Outcome(asked.stage, [_once(effect, language) for effect in asked.effects])
    if not state.again_due:
        return Outcome(WELCOMED, [])  # said a moment ago, to the text before this one
    return Outcome(WELCOMED, [fx.Reply("menu_again", language=language)])


def _names_previous(state: TexterState, text: str) -> bool:
    """Say whether words name the supporter the texter last talked with (their first name)."""
    first = fold(state.previous_supporter or "").split()[:1]
    return bool(first) and first[0] in _WORDS.findall(fold(text))


# Words that ask for a person ("can someone talk to me", "i need help", "quiero hablar"), unless
# negated ("i don't want to talk"); "hello?" and "is anyone there" ask nothing of the kind.
_PERSON = re.compile(
    r"\b(?:talk\w*|speak\w*|chat|chatting|listen\w*|help|person|human|"
    r"habla\w*|hable\w*|charla\w*|escuch\w*|ayud\w*|persona|humano)\b"
)
_NOT = re.compile(r"\b(?:not|don.?t|can.?t|never|no quiero|no necesito|no puedo hablar)\b")


def asks_for_a_person(text: str) -> bool:
    """Say whether words plainly ask for a person to talk with."""
    folded = fold(text)
    return bool(_PERSON.search(folded)) and not _NOT.search(folded)


_WORDS = re.compile(r"[^\W\d_]+")


def text_language(text: str) -> str | None:
    """Return the language a texter's text reads as: a language keyword's, else its words'."""
    keyword = classify(text)
    if keyword in (Keyword.ENGLISH, Keyword.SPANISH):
        return "es" if keyword is Keyword.SPANISH else "en"
    return guess(text)


def _language_move(
    state: TexterState, text: str, keyword: Keyword, found: str | None = None
) -> tuple[list[fx.Effect], str | None]:
    """Return the language switch a text in an open conversation makes (as effects), and the
    language to answer it in once when it reads as the other language without switching.

    One short text is no switch for a texter whose earlier texts said their language (a tester's
    English texter was offered as writing Spanish for good after "hola? hay alguien?"): it
    takes a text clear on its own (naming a language, or several words) or two in a row. A
    texter whose words never said their language yet switches on a plain text (three words).
    Either way back, English to Spanish or Spanish to English.

    `found` is the language the crisis detector found crisis words in: they are words of that
    language too, so a text of several words leaning that way is clear ("creo que no. me
    quiero morir, ya no aguanto mas"), and a shorter one ("quiero morir") is answered in it.
    """
    lean = guess(text)
    if keyword is not Keyword.NONE or lean is None or lean == state.language:
        return [], None
    earlier = state.earlier_languages
    established = state.language in earlier
    said = found == lean  # crisis words found in the language the text leans to
    clear = clearly(text) == lean or (said and len(text.split()) >= CLEAR_WORDS)
    if clear or earlier[:1] == (lean,):
        return [fx.SetLanguage(lean)], None
    if plainly(text) == lean or said:
        return ([], lean) if established else ([fx.SetLanguage(lean)], None)
    return [], None


def crisis_move(
    state: TexterState, text: str, crisis_language: str | None
) -> tuple[list[fx.Effect], str | None]:
    """Return the language switch crisis words outside a chat and the queue make, and the
    language to answer them in once, as `_language_move` reads any text: crisis words plainly
    in the other language than a welcomed or queued texter's switch them before the crisis
    text and the offer (a tester's "hi", then "creo que no. me quiero morir..." stayed
    English and was offered to an English speaker first)."""
    keyword = classify(text)
    if state.stage not in (*OUTSIDE, QUEUED) or state.opted_out:
        return [], None
    if state.stage in (NEW, CLOSED) and state.language == "en":
        return [], None  # a first text: `_first_language` and `_crisis_first` read it
    if state.stage in (NEW, CLOSED) and state.returning:
        # No conversation open to read: the language they wrote to the line in holds.
        state = replace(state, earlier_languages=(state.language,))
    return _language_move(state, text, keyword, crisis_language)


def _queued(state: TexterState, status: LineStatus, text: str, keyword: Keyword) -> Outcome:
    switch, once = _language_move(state, text, keyword)
    rest = _in_line(state, status, text, keyword)
    if once:
        # Asked in the other language ("hola? hay alguien?"): this answer in it, no switch.
        return Outcome(rest.stage, [_once(e, once) for e in rest.effects])
    return Outcome(rest.stage, [*switch, *rest.effects])


def _once(effect: fx.Effect, language: str) -> fx.Effect:
    """Return a reply said in `language` this once; other effects as they are."""
    if isinstance(effect, fx.Reply) and effect.language is None:
        return replace(effect, language=language)
    return effect


def _in_line(state: TexterState, status: LineStatus, text: str, keyword: Keyword) -> Outcome:
    if keyword is Keyword.BYE:
        return Outcome(CLOSED, [fx.LeaveQueue(), fx.Close(), fx.Reply("left_queue")])
    if keyword is Keyword.GROUPS:
        return _groups(state, status)
    if keyword is Keyword.SAME and state.previous_supporter:
        return Outcome(
            QUEUED, [fx.PreferPrevious(), fx.Reply("same_ok", {"name": state.previous_supporter})]
        )
    # Their words are kept with the conversation and shown to the supporter who takes it;
    # a reminder of their place goes out once in a while, not to every text.
    if state.still_waiting_due:
        return Outcome(QUEUED, [fx.Reply("still_waiting", _wait(status))])
    if state.asked_due and asks_the_line(text):
        # "hello? is anyone coming": someone asking whether anyone is there hears that we are
        # (their place, the wait) within minutes, not only at the next reminder.
        return Outcome(QUEUED, [fx.Reply("still_here", _wait(status))])
    return Outcome(QUEUED)


def _active(state: TexterState, status: LineStatus, text: str, keyword: Keyword) -> Outcome:
    if keyword is Keyword.BYE and state.chat_flagged and not state.bye_asked:
        # After crisis words a "bye" may be a slip (a tester's "no wait i didnt mean bye" came
        # too late) or a goodbye that matters: the supporter reads it, the texter is asked.
        name = {"name": state.supporter_name or ""}
        return Outcome(ACTIVE, [fx.Relay(text), fx.Reply("bye_confirm", name)])
    if keyword is Keyword.BYE and state.chat_flagged:
        return Outcome(CLOSED, [fx.EndChat(by="texter"), fx.Reply("texter_ended_crisis")])
    if keyword is Keyword.BYE:
        return Outcome(RATING, [fx.EndChat(by="texter"), fx.Reply("ask_rating")])
    return Outcome(ACTIVE, [fx.Relay(text)])


def _active_words(state: TexterState, text: str, keyword: Keyword) -> Outcome | None:
    """Handle, in a live chat, keywords that are words too: they reach the supporter.

    "HELP" typed to a supporter is a plea before it is a command; the texter still gets the
    short help a carrier expects. A language word switches language and is passed on too.
    """
    if keyword is Keyword.HELP:
        return Outcome(ACTIVE, [fx.Relay(text), fx.Reply("help_in_chat")])
    if keyword in (Keyword.ENGLISH, Keyword.SPANISH):
        language = "es" if keyword is Keyword.SPANISH else "en"
        switched = fx.Reply("language_set_chat")
        return Outcome(ACTIVE, [fx.Relay(text), fx.SetLanguage(language), switched])
    return None


def _picture(state: TexterState, status: LineStatus, text: str) -> Outcome:
    """Answer a message that came with pictures: they are never passed on, and both sides hear.

    A picture-only message in a chat tells the supporter a picture came (never an empty relay);
    its words, if any, are relayed with a mark that a picture came too.
    """
    told: list[fx.Effect] = [fx.Reply("picture_not_passed")]
    if state.stage == ACTIVE:
        if text.strip():
            return Outcome(ACTIVE, [fx.Relay(text, picture=True), *told])
        return Outcome(ACTIVE, [fx.Notify("picture_came"), *told])
    if not text.strip() and state.stage in (WELCOMED, QUEUED):
        return Outcome(state.stage, told)
    rest = _decide(state, status, text, classify(text))
    return Outcome(rest.stage, [*rest.effects, *told])


def _crisis_first(
    state: TexterState, status: LineStatus, text: str, keyword: Keyword, spanish: bool
) -> Outcome:
    """Connect someone whose first words (outside a chat or the queue) are a crisis.

    No YES is needed: when someone is on shift they join the queue at once, at the front (the
    crisis flag raised with it), and hear that a peer will text them and that BYE leaves.
    When nobody is on shift they hear when the line opens, as anyone would.
    """
    effects: list[fx.Effect] = []
    if state.stage in (NEW, CLOSED) and keyword is Keyword.NONE and state.language == "en":
        if spanish or looks_spanish(text):
            state = replace(state, language="es")
            effects.append(fx.SetLanguage("es"))
    if not status.open_now:
        closed = _ask_for_peer(replace(state, stage=WELCOMED), status)
        return Outcome(WELCOMED, [*effects, *closed.effects])
    if state.stage == RATING:
        # The last chat's rating question goes unanswered: this is a new conversation.
        effects.insert(0, fx.Close())
    effects += [fx.JoinQueue(), fx.Reply("crisis_queued", {"position": status.position})]
    return Outcome(QUEUED, effects)


def _rating(state: TexterState, status: LineStatus, text: str, keyword: Keyword) -> Outcome:
    score = rating_of(text)
    if score is not None:
        return Outcome(CLOSED, [fx.Rate(score), fx.Reply("thanks_rating")])
    if keyword is Keyword.BYE:
        # A second goodbye (both sides ended at once, or a double tap) closes quietly.
        return Outcome(CLOSED, [fx.Close()])
    if is_thanks(text):
        # A thank-you instead of a number: no rating, and no welcome as if they were new.
        return Outcome(CLOSED, [fx.Close(), fx.Reply("thanks_no_rating")])
    if is_ack(text):
        # "ok" or a thumbs-up: they read the question and let it go.
        return Outcome(CLOSED, [fx.Close()])
    # Anything else starts afresh: the rating question was optional.
    fresh = _welcome(replace(state, stage=NEW, returning=True), status, text, keyword)
    return Outcome(fresh.stage, [fx.Close(), *fresh.effects])


def _after_chat(state: TexterState, text: str, keyword: Keyword) -> Outcome | None:
    """Answer words written just after a chat ended (`state.after_chat`), or None for the
    line's own words (YES, GROUPS, BYE...), which act as anywhere.

    A tester's "were at the er now. thx" after the rating question got "Good to hear from
    you again. Reply YES...", and "ok" then "5" lost the rating. Now a 1-5 rates the chat
    (once), a nod ("ok") is let be, and other words reach the supporter who had the chat
    (while on shift) and get a short, warm answer once: a thank-you is thanked, news is
    passed on.
    """
    if not state.after_chat or keyword not in (Keyword.NONE, Keyword.RATING):
        return None
    closing: list[fx.Effect] = [fx.Close()] if state.stage == RATING else []
    score = rating_of(text)
    if score is not None:
        if state.after_chat_rated:
            return Outcome(CLOSED, closing)  # counted already: a double tap
        return Outcome(CLOSED, [fx.Rate(score), fx.Reply("thanks_rating")])
    if not text.strip() or (is_ack(text) and not is_thanks(text)):
        return Outcome(CLOSED, closing)  # they read the question and let it go
    asks = asks_for_a_person(text) or bool({"again", "same"} & set(_WORDS.findall(fold(text))))
    if _names_previous(state, text) and asks and not is_thanks(text):
        # "Can I talk to Sam again": a request of the line, answered with how to ask for them
        # ("thanks sam!" is a thank-you, passed on).
        name = state.previous_supporter
        return Outcome(CLOSED, [*closing, fx.Reply("menu_again_same", {"name": name})])
    effects = [*closing]
    name = state.after_chat_supporter
    if name:
        effects.append(fx.AfterChat(text))
    if is_thanks(text):
        if state.thanks_due:
            effects.append(fx.Reply("thanks_no_rating"))
    elif state.after_chat_due and name:
        effects.append(fx.Reply("after_chat_passed", {"name": name}))
    elif state.after_chat_due:
        effects.append(fx.Reply("after_chat"))
    return Outcome(CLOSED, effects)


Handler = Callable[[TexterState, LineStatus, str, Keyword], Outcome]

BY_STAGE: dict[str, Handler] = {
    NEW: _welcome,
    CLOSED: _welcome,
    WELCOMED: _welcomed,
    QUEUED: _queued,
    ACTIVE: _active,
    RATING: _rating,
}


REMINDER_WORDS = (Keyword.REMIND, Keyword.REMIND_OFF, Keyword.CHECKIN)


def _reminders(state: TexterState, status: LineStatus, text: str, keyword: Keyword) -> Outcome:
    """Handle REMIND, REMIND OFF and CHECKIN, outside a chat (inside one they are words)."""
    if keyword is Keyword.REMIND:
        effects: list[fx.Effect] = [fx.Subscribe(True), fx.Reply("remind_ok")]
    elif keyword is Keyword.REMIND_OFF:
        effects = [fx.Subscribe(False), fx.Reply("remind_off")]
    elif state.stage in (RATING, CLOSED) or state.returning:
        effects = [fx.WantCheckin(), fx.Reply("checkin_ok")]
    else:
        effects = [fx.Reply("invite")]
    if state.stage == NEW:
        # A first message always gets the welcome, whatever it says.
        welcome = _welcome(state, status, "", Keyword.NONE)
        return Outcome(welcome.stage, [*welcome.effects, *effects])
    return Outcome(state.stage, effects)


def _stop_like(state: TexterState, text: str) -> Outcome:
    """Answer PARAR, ALTO or "stop pls" with how to stop: carriers match STOP exactly, so these
    are no opt-out, and a welcome ("Reply YES...") would answer someone asking to stop. A first
    text enrols nobody; a place in line stays, and its texter hears how to leave the line alone
    (BYE) too; the rating question closes (outside a chat, where they are words to the
    supporter). A Spanish word is answered in Spanish, wherever they are, without switching
    their language."""
    spanish = normalise(text) in STOP_LIKE_SPANISH
    # Said in Spanish to an English texter, this reply only: one word is no language switch
    # (a tester's "yes" / "stop pls" / "PARAR" texter was then offered as writing Spanish).
    once = "es" if state.language == "en" and spanish else None
    key = "stop_how_waiting" if state.stage == QUEUED else "stop_how"
    effects: list[fx.Effect] = [fx.Reply(key, language=once)]
    if state.stage == RATING:
        return Outcome(CLOSED, [fx.Close(), *effects])
    return Outcome(state.stage, effects)


def _leave(state: TexterState, opted_out: bool = False) -> list[fx.Effect]:
    if state.stage == ACTIVE:
        return [fx.EndChat(by="texter", ask_rating=False, opted_out=opted_out)]
    if state.stage == QUEUED:
        return [fx.LeaveQueue(), fx.Close()]
    if state.stage in (WELCOMED, RATING):
        return [fx.Close()]
    return []


# Where crisis words connect to a person at once, without YES.
OUTSIDE = (NEW, CLOSED, WELCOMED, RATING)
# What a texter outside a chat may still be asking for when their words are also a crisis.
ACTS = (Keyword.STOP, Keyword.START, Keyword.BYE, Keyword.DELETE)


def decide(
    state: TexterState,
    status: LineStatus,
    text: str,
    crisis: str | None = None,
    media: int = 0,
    crisis_language: str | None = None,
    someone_else: bool = False,
) -> Outcome:
    """Return what the line does with one message from a texter.

    `crisis` is the detector's category when the words may mean danger: the texter gets the
    crisis resources (not too often), the concern is raised, and the message then goes on
    exactly as it would have: a chat is never blocked. Outside a chat and the queue, crisis
    words join the queue at once (in Spanish when the detector found Spanish words). `media`
    counts the pictures that came with the message. `someone_else` says the words tell of
    another person at risk (a worried texter): they hear, once in a while, what to do if that
    person is in danger now, first, and the message goes on as it would have; with `crisis`
    too (the runtime passes both only when the model alone alarmed, a phrase lies in the other
    person's words or their quoted words, or their words read again as the writer's tell their
    danger now, and the rest of the words say no crisis of the texter's), that text, when due,
    takes the crisis resources' place and the concern is raised as for any crisis.
    """
    keyword = classify(text)
    state, language = _first_language(state, text, keyword)
    if crisis is None or keyword is Keyword.STOP:
        if media and not state.opted_out and keyword is not Keyword.STOP:
            rest = _picture(state, status, text)
        else:
            rest = _decide(state, status, text, keyword)
        if (
            someone_else
            and crisis is None
            and state.someone_else_due
            and state.crisis_reply_due  # just told their own crisis resources: not this too
            and not state.opted_out
            and keyword not in ACTS
        ):
            return _ahead(rest, language, [fx.Reply("someone_else")])
        return Outcome(rest.stage, [*language, *rest.effects])
    safety: list[fx.Effect] = [fx.RaiseSafety("detector", crisis)]
    # A question with crisis words in the queue hears the resources and its place below, as
    # crisis words always do there (not the answer to a question).
    state = replace(state, asked_due=False)
    # Crisis words plainly in the other language switch them before the crisis text goes out,
    # and the offer that follows asks someone who speaks it; a short one is answered in it.
    switch, once = crisis_move(state, text, crisis_language)
    for effect in switch:
        if isinstance(effect, fx.SetLanguage):
            state = replace(state, language=effect.language)
    language = [*language, *switch]
    if state.emergency and someone_else and not state.opted_out:
        # Another person's emergency under way ("my brother overdosed hes not breathing"):
        # call 911 for them now, no "if", whatever went out before (and not the softer
        # words for a worried texter after it).
        if state.emergency_due:
            safety.append(fx.Reply("someone_else_emergency"))
    elif state.crisis_reply_due and not state.opted_out and someone_else:
        # The words alarm and tell of another person at risk ("she is on the bridge and
        # wont answer"), and of no crisis of the texter's: the concern is raised all the
        # same, and the texter hears what to do for them (once in a while), never resources
        # meant for themselves.
        if state.someone_else_due:
            safety.append(fx.Reply("someone_else"))
    elif not state.opted_out and not someone_else:
        if state.crisis_reply_due or (crisis == ATTEMPT and state.attempt_reply_due):
            safety.append(_resources(crisis, status))
    if state.stage in OUTSIDE and not state.opted_out and keyword not in ACTS:
        rest = _crisis_first(state, status, text, keyword, crisis_language == "es")
    elif media and not state.opted_out:
        rest = _picture(state, status, text)
    else:
        rest = _decide(state, status, text, keyword)
    if (
        state.stage == QUEUED
        and rest.stage == QUEUED
        # they hear the resources (or what to do for someone else) now, or their words moved
        # them up the line (the resources already sent in the crisis window)
        and (len(safety) > 1 or status.moved_up)
        and not any(isinstance(e, fx.Reply) for e in rest.effects)  # nor a keyword's answer
    ):
        # Crisis words set the chat's place by their category: they hear it with the
        # resources, not only at the next reminder (seen in session 18's quick start: "just
        # took 20 tylenol" while queued got the resources and no place).
        rest = Outcome(QUEUED, [*rest.effects, fx.Reply("still_waiting", _wait(status))])
    if once:
        # Crisis words in the other language, too short to switch: answered in it, this once.
        safety = [_once(effect, once) for effect in safety]
        rest = Outcome(rest.stage, [_once(effect, once) for effect in rest.effects])
    return _ahead(rest, language, safety)


# The detector's category for an attempt under way: pills or poison taken, a cut bleeding.
ATTEMPT = "attempt"


def _resources(crisis: str, status: LineStatus) -> fx.Reply:
    """Return the crisis resources for these words: "keep texting here" only when someone is
    on shift to read it; for an attempt under way, 911 now and Poison Control first, in
    words of their own under the crisis text's purpose (its lane, its window)."""
    key = "crisis" if status.open_now else "crisis_closed"
    if crisis == ATTEMPT:
        return fx.Reply(key, wording=key.replace("crisis", "crisis_attempt", 1))
    return fx.Reply(key)


def _ahead(rest: Outcome, language: list[fx.Effect], first: list[fx.Effect]) -> Outcome:
    """Return `rest` with `first` ahead of its other effects, after any language set."""
    # A language found in these very words holds for what goes first too.
    found = [e for e in rest.effects if isinstance(e, fx.SetLanguage)]
    others = [e for e in rest.effects if not isinstance(e, fx.SetLanguage)]
    return Outcome(rest.stage, [*language, *found, *first, *others])


def _decide(state: TexterState, status: LineStatus, text: str, keyword: Keyword) -> Outcome:
    if keyword is Keyword.STOP:
        # Twilio answers STOP itself; we record it, leave any chat, and say nothing.
        return Outcome(CLOSED, [fx.SetOptOut(True), *_leave(state, opted_out=True)])
    if state.opted_out:
        if keyword is Keyword.DELETE:
            # Erasing works after STOP too; nothing can be sent, so DELETE twice, unanswered.
            if state.erase_pending:
                return Outcome(CLOSED, [*_leave(state), fx.Erase()])
            return Outcome(state.stage, [fx.RequestErase()])
        if keyword is Keyword.START:
            return Outcome(state.stage, [fx.SetOptOut(False), fx.Reply("opted_in")])
        if keyword is not Keyword.YES or not carrier_opt_in(text):
            # Nothing can be sent to an opted-out number; the message is still on record.
            # ("vale" or "yess" is yes to the line, but not an opt-in word to carriers.)
            return Outcome(state.stage)
        # YES is an opt-in word to carriers too: it re-subscribes and asks for a peer.
        opted_in = _decide(replace(state, opted_out=False), status, text, keyword)
        return Outcome(opted_in.stage, [fx.SetOptOut(False), *opted_in.effects])
    if keyword is Keyword.START and state.stage == QUEUED:
        # Never opted out and already in line (a tester's START at number 3 got "reply YES"):
        # their place is the answer.
        return Outcome(QUEUED, [fx.Reply("still_waiting", _wait(status))])
    if keyword is Keyword.START and state.stage == ACTIVE:
        return Outcome(ACTIVE, [fx.Relay(text)])  # words to the supporter, as any in a chat
    if keyword is Keyword.START:
        return Outcome(state.stage, [fx.Reply("opted_in")])
    if state.stage == ACTIVE:
        in_chat = _active_words(state, text, keyword)
        if in_chat is not None:
            return in_chat
    if keyword is Keyword.STOP_LIKE and state.stage != ACTIVE:
        return _stop_like(state, text)
    if keyword is Keyword.HELP:
        return Outcome(state.stage, [fx.Reply("help")])
    if keyword in REMINDER_WORDS and state.stage != ACTIVE:
        return _reminders(state, status, text, keyword)
    if keyword is Keyword.DELETE:
        if state.erase_pending:
            # Nothing is sent afterwards: the number it would go to is what gets erased.
            return Outcome(CLOSED, [*_leave(state), fx.Erase()])
        return Outcome(state.stage, [fx.RequestErase(), fx.Reply("erase_confirm")])
    if keyword in (Keyword.ENGLISH, Keyword.SPANISH) and state.stage not in (NEW, CLOSED):
        language = "es" if keyword is Keyword.SPANISH else "en"
        # "Reply YES" only where YES is the next step: not to someone already in line.
        said = "language_set_waiting" if state.stage == QUEUED else "language_set"
        return Outcome(state.stage, [fx.SetLanguage(language), fx.Reply(said)])
    if state.stage in (NEW, CLOSED, RATING):
        after = _after_chat(state, text, keyword)
        if after is not None:
            return after
    return BY_STAGE[state.stage](state, status, text, keyword)
