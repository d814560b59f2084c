"""The runtime: carry out the flows' effects on the effect context, one transaction a step.

Each concern is a module of functions that take the context (`peerline.service.context`):
intake, texter, supporter, chats, offers, safety and timers. `Runtime` is the context with
those functions as methods, for workers and tests that hold one.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime

from peerline.service.context import (
    ALIAS_LETTERS,
    Context,
    Reachable,
    resolve_offer,
    transaction_of,
)
from peerline.service.runtime import chats as _chats
from peerline.service.runtime import intake as _intake
from peerline.service.runtime import offers as _offers
from peerline.service.runtime import safety as _safety
from peerline.service.runtime import supporter as _supporter
from peerline.service.runtime import texter as _texter
from peerline.service.runtime import timers as _timers
from peerline.service.runtime.intake import OPT_OUT_WORDS, Inbound, receive_sms, replay_spooled
from peerline.service.runtime.offers import expire_offer, overdue_offers, run_matching
from peerline.service.runtime.timers import catch_up_timers
from peerline.service.services import LineServices

__all__ = [
    "ALIAS_LETTERS",
    "OPT_OUT_WORDS",
    "Context",
    "Inbound",
    "Reachable",
    "Runtime",
    "catch_up_timers",
    "expire_offer",
    "overdue_offers",
    "receive_sms",
    "replay_spooled",
    "resolve_offer",
    "run_matching",
    "transaction",
]


class Runtime(Context):
    """The effect context with the runtime's functions as methods (each takes the context
    first, so it binds as `self`)."""

    line_status = _offers.line_status
    flooding = _intake.flooding
    texter_message = _texter.texter_message
    previous_supporter_id = _chats.previous_supporter_id
    schedule_open_notice = _offers.schedule_open_notice
    withdraw_offers = _offers.withdraw_offers
    end_chat = _chats.end_chat
    supporter_message = _supporter.supporter_message
    accept_offer = _offers.accept_offer
    resolve_offer = resolve_offer
    expire_offer = _offers.expire
    pass_chat = _chats.pass_chat
    raise_safety = _safety.raise_safety
    blocked_message = _intake.blocked_message
    block = _safety.block
    erase = _safety.erase
    subscribe = _chats.subscribe
    want_checkin = _chats.want_checkin
    free_reminded_shift = _chats.free_reminded_shift
    group_reminder = _timers.group_reminder
    shift_reminder = _timers.shift_reminder
    checkin = _timers.checkin
    chat_tick = _timers.chat_tick
    _next_tick_delay = _timers.next_tick_delay
    queue_tick = _timers.queue_tick
    alert_unmatched = _timers.alert_unmatched
    notify_open = _timers.notify_open
    policy = _offers.policy
    match = _offers.match
    find_offers = _offers.find_offers
    announce = _offers.announce


def transaction(line: LineServices, now: datetime | None = None) -> AbstractContextManager[Runtime]:
    """Run a Runtime in its own transaction; its queued work goes to Redis after the commit."""
    return transaction_of(Runtime, line, now)
