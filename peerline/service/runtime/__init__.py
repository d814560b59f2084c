"""The runtime: carry out the flows' effects on the effect context, one transaction a step.

Each concern is a module of functions that take the context (`peerline.service.context`):
intake, texter, supporter, chats, offers, safety and timers. `Runtime` is the context with
those functions as methods, for workers and tests that hold one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from peerline.flows import texter as texter_flow
from peerline.service import routing
from peerline.service.context import (
    ALIAS_LETTERS,
    Context,
    Reachable,
    resolve_offer,
)
from peerline.service.services import LineServices
from peerline.service.models import (
    Contact,
    Conversation,
    InboundMessage,
    Offer,
    Supporter,
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
    "step",
]


class Runtime(Context):
    """The effect context with the runtime's functions as methods."""

    def line_status(
        self, conversation: Conversation | None, language: str, priority: int = 0
    ) -> texter_flow.LineStatus:
        """Run offers.line_status on this context."""
        return _offers.line_status(self, conversation, language, priority)

    def flooding(self, contact: Contact, inbound: InboundMessage, text: str) -> bool:
        """Run intake.flooding on this context."""
        return _intake.flooding(self, contact, inbound, text)

    def texter_message(
        self,
        contact: Contact,
        inbound: InboundMessage,
        text: str,
        *,
        flood: bool = False,
        media: int = 0,
    ) -> None:
        """Run texter.texter_message on this context."""
        return _texter.texter_message(self, contact, inbound, text, flood=flood, media=media)

    def previous_supporter_id(self, contact_id: int, current_id: int | None) -> int | None:
        """Return the supporter of the texter's last matched conversation, if any."""
        return _chats.previous_supporter_id(self, contact_id, current_id)

    def schedule_open_notice(self, conversation: Conversation) -> None:
        """Schedule the 'we are open' text for when the rota next has someone on shift."""
        return _offers.schedule_open_notice(self, conversation)

    def withdraw_offers(self, conversation: Conversation, alias: str) -> None:
        """Withdraw pending offers for a conversation and tell the supporters."""
        return _offers.withdraw_offers(self, conversation, alias)

    def end_chat(
        self,
        conversation: Conversation,
        *,
        by: str,
        ask_rating: bool = True,
        opted_out: bool = False,
    ) -> None:
        """End an active chat, free the supporter and tell the other side."""
        return _chats.end_chat(
            self, conversation, by=by, ask_rating=ask_rating, opted_out=opted_out
        )

    def supporter_message(
        self, supporter: Supporter, inbound: InboundMessage, text: str, media: int = 0
    ) -> None:
        """Run supporter.supporter_message on this context."""
        return _supporter.supporter_message(self, supporter, inbound, text, media)

    def accept_offer(self, offer_id: int, supporter: Supporter) -> bool:
        """Connect the supporter with the offered conversation, if it is still theirs."""
        return _offers.accept_offer(self, offer_id, supporter)

    def resolve_offer(self, offer_id: int, status: str) -> Offer | None:
        """Run resolve_offer on this context."""
        return resolve_offer(self, offer_id, status)

    def expire_offer(self, offer_id: int) -> None:
        """Run offers.expire on this context."""
        return _offers.expire(self, offer_id)

    def pass_chat(self, conversation: Conversation, supporter: Supporter) -> None:
        """Hand a chat back to the queue, keeping the texter's place."""
        return _chats.pass_chat(self, conversation, supporter)

    def raise_safety(
        self, conversation: Conversation, source: str, category: str, raised_by: str | None = None
    ) -> None:
        """Put a conversation first, record the event, flag the supporter, alert on call."""
        return _safety.raise_safety(self, conversation, source, category, raised_by)

    def blocked_message(self, phone: str, text: str) -> None:
        """Run intake.blocked_message on this context."""
        return _intake.blocked_message(self, phone, text)

    def block(self, contact: Contact, reason: str, status: str = "active") -> None:
        """Stop answering a texter's number (until a coordinator lifts it)."""
        return _safety.block(self, contact, reason, status)

    def erase(self, contact: Contact) -> None:
        """Erase a texter's number and every message of theirs, keeping anonymous counts."""
        return _safety.erase(self, contact)

    def subscribe(self, contact: Contact, on: bool) -> None:
        """Start or stop a texter's group meeting reminders."""
        return _chats.subscribe(self, contact, on)

    def want_checkin(self, contact: Contact) -> None:
        """Schedule tomorrow's check-in after the texter's last chat, outside quiet hours."""
        return _chats.want_checkin(self, contact)

    def free_reminded_shift(self, supporter: Supporter) -> None:
        """After a shift reminder, #away frees that shift and tells the on-call coordinator."""
        return _chats.free_reminded_shift(self, supporter)

    def group_reminder(self, group_id: int, starts: datetime) -> int:
        """Text every subscriber before a meeting, once; return how many were written."""
        return _timers.group_reminder(self, group_id, starts)

    def shift_reminder(self, supporter_id: int, start: datetime, end: datetime) -> bool:
        """Remind a supporter of their shift, once."""
        return _timers.shift_reminder(self, supporter_id, start, end)

    def checkin(self, conversation_id: int) -> bool:
        """Send the check-in a texter asked for, once."""
        return _timers.checkin(self, conversation_id)

    def chat_tick(self, conversation_id: int) -> int | None:
        """Run timers.chat_tick on this context."""
        return _timers.chat_tick(self, conversation_id)

    def _next_tick_delay(self, conversation: Conversation) -> int:
        """Return seconds until the next wait update or unmatched alert is due."""
        return _timers.next_tick_delay(self, conversation)

    def queue_tick(self, conversation_id: int) -> bool:
        """Send a due wait update and raise a due unmatched alert; say if still waiting."""
        return _timers.queue_tick(self, conversation_id)

    def alert_unmatched(self, conversation: Conversation, minutes: int) -> None:
        """Run timers.alert_unmatched on this context."""
        return _timers.alert_unmatched(self, conversation, minutes)

    def notify_open(self, conversation_id: int) -> None:
        """Tell a texter who asked that the line is open, once, if it is."""
        return _timers.notify_open(self, conversation_id)

    def policy(self) -> routing.Policy:
        """Return how offers are made, from the settings."""
        return _offers.policy(self)

    def match(self) -> list[routing.NewOffer]:
        """Offer waiting conversations to free supporters and announce the offers."""
        return _offers.match(self)

    def find_offers(self) -> list[routing.NewOffer]:
        """Write offers of waiting conversations to free supporters (not yet announced)."""
        return _offers.find_offers(self)

    def announce(
        self, offers: Sequence[routing.NewOffer], expired: dict[int, int] | None = None
    ) -> None:
        """Run offers.announce on this context."""
        return _offers.announce(self, offers, expired)


@contextmanager
def step(line: LineServices, now: datetime | None = None) -> Iterator[Runtime]:
    """Run a Runtime in its own transaction; its queued work goes to Redis after the commit."""
    with line.db.session() as session:
        runtime = Runtime(line, session, now)
        yield runtime
    runtime.after_commit.dispatch(line)
