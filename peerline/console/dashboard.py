"""The live dashboard: who is waiting, who is on shift, chats under way and open alerts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_wtf import FlaskForm
from redis.exceptions import RedisError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload
from werkzeug.wrappers import Response as BaseResponse
from wtforms import TextAreaField
from wtforms.validators import Length, Optional

from peerline.console import block_review
from peerline.console.calls import CallRow, calls_under_way
from peerline.console.common import (
    actor,
    audit,
    flagged,
    format_duration,
    format_local,
    line,
    now,
    submitted,
)
from peerline.console.forms import ConfirmForm
from peerline.service import rota, routing
from peerline.service.availability import load_line_rotas
from peerline.service.carrier import LaneBacklog, carrier_backlog
from peerline.service.models import (
    ACTIVE,
    PENDING,
    QUEUED,
    Alert,
    Conversation,
    Offer,
    Supporter,
)
from peerline.service.privacy import Vault

bp = Blueprint("dashboard", __name__)

# Alerts dealt with lately, shown under the open ones with who resolved them and how.
RESOLVED_SHOWN = 8


class ResolveForm(FlaskForm):
    """Resolve an alert, saying what was done."""

    outcome = TextAreaField(
        "What was done",
        validators=[Optional(), Length(max=500)],
        description="Kept encrypted; other coordinators see it with your name.",
    )


@dataclass(frozen=True)
class WaitingRow:
    """A texter in the queue."""

    conversation_id: int
    alias: str
    language: str
    waited: float
    crisis: bool


@dataclass(frozen=True)
class SupporterRow:
    """A supporter on shift or in a chat, with what they are doing."""

    supporter_id: int
    name: str
    state: str
    load: int
    capacity: int
    until: str
    on_shift: bool
    # Can take a chat now, by the rules matching uses (room, away, cap, shift, calls).
    free: bool = False
    away: bool = False


@dataclass(frozen=True)
class ChatRow:
    """A chat under way."""

    conversation_id: int
    alias: str
    supporter: str
    since: float
    crisis: bool


@dataclass(frozen=True)
class AlertRow:
    """An alert nobody has resolved yet."""

    alert_id: int
    kind: str
    detail: str
    age: float
    alias: str
    supporter: str
    conversation_id: int | None = None


@dataclass(frozen=True)
class ResolvedRow:
    """An alert dealt with lately: who resolved it, when, and what they did."""

    alert_id: int
    kind: str
    alias: str
    conversation_id: int | None
    by: str
    when: str
    outcome: str


@dataclass(frozen=True)
class Live:
    """Everything the dashboard shows, read in one go."""

    waiting: list[WaitingRow]
    supporters: list[SupporterRow]
    chats: list[ChatRow]
    calls: list[CallRow]
    alerts: list[AlertRow]
    updated: str
    timezone: str
    resolved: list[ResolvedRow] = field(default_factory=list)
    # Texts waiting for the carrier, by lane (issue 19).
    carrier: list[LaneBacklog] = field(default_factory=list)

    @property
    def carrier_waiting(self) -> int:
        """Return how many texts wait for the carrier in all."""
        return sum(lane.texts for lane in self.carrier)

    @property
    def longest_wait(self) -> float | None:
        """Return the longest wait in the queue, in seconds."""
        return max((w.waited for w in self.waiting), default=None)

    @property
    def crisis_waiting(self) -> int:
        """Return how many waiting texters were flagged for crisis language."""
        return sum(w.crisis for w in self.waiting)

    @property
    def free(self) -> int:
        """Return how many supporters on shift could take a chat now."""
        return sum(s.free for s in self.supporters)

    @property
    def away(self) -> list[str]:
        """Return the names of the supporters on shift who are away."""
        return [s.name for s in self.supporters if s.away and s.on_shift]


def read_live(session: Session) -> Live:
    """Read the queue, the supporters on shift, the chats and the alerts."""
    moment = now()
    the_line = line()
    tz = the_line.timezone(session)
    rotas = load_line_rotas(session, the_line.settings.line_timezone)
    on_shift = set(rotas.on_shift(moment))

    queued = session.scalars(
        select(Conversation)
        .where(Conversation.state == QUEUED)
        .options(selectinload(Conversation.contact))
        .order_by(Conversation.priority.desc(), Conversation.queued_at, Conversation.id)
    ).all()
    waiting = [
        WaitingRow(
            c.id,
            c.contact.alias,
            c.language,
            (moment - (c.queued_at or c.created_at)).total_seconds(),
            flagged(c),
        )
        for c in queued
    ]

    active = session.scalars(
        select(Conversation)
        .where(Conversation.state == ACTIVE)
        .options(selectinload(Conversation.contact), selectinload(Conversation.supporter))
        .order_by(Conversation.matched_at)
    ).all()
    chats = [
        ChatRow(
            c.id,
            c.contact.alias,
            c.supporter.name if c.supporter else "",
            (moment - (c.matched_at or c.created_at)).total_seconds(),
            flagged(c),
        )
        for c in active
    ]

    chat_counts = {
        int(supporter_id or 0): int(count)
        for supporter_id, count in session.execute(
            select(Conversation.supporter_id, func.count())
            .where(Conversation.state == ACTIVE, Conversation.supporter_id.is_not(None))
            .group_by(Conversation.supporter_id)
        )
    }
    offer_counts = {
        int(supporter_id): int(count)
        for supporter_id, count in session.execute(
            select(Offer.supporter_id, func.count())
            .where(Offer.status == PENDING)
            .group_by(Offer.supporter_id)
        )
    }
    wanted = on_shift | set(chat_counts)
    rows = session.scalars(
        select(Supporter).where(Supporter.id.in_(wanted)).order_by(Supporter.name)
    ).all()
    relays = the_line.settings.twilio_relay_numbers
    # Who can take a chat now, by the rules a matching round uses: "free" means free.
    staff = routing.staffing(
        session, rotas, moment, routing.policy_of(the_line.settings), also=chat_counts
    ).supporters
    supporters = []
    for s in rows:
        chats_now, offers_now = chat_counts.get(s.id, 0), offer_counts.get(s.id, 0)
        now_ = staff.get(s.id)
        free = now_ is not None and now_.free
        state = _state(s, now_, chats_now, offers_now, s.id in on_shift)
        ends = (
            rota.shift_end(rotas.by_supporter[s.id], tz, moment, rotas.closures, horizon_days=1)
            if s.id in rotas.by_supporter
            else None
        )
        if ends is None:
            until = ""
        elif ends >= moment + timedelta(days=1):
            until = "in over a day"
        else:
            same_day = ends.astimezone(tz).date() == moment.astimezone(tz).date()
            until = format_local(ends, tz, with_day=not same_day)
        supporters.append(
            SupporterRow(
                s.id,
                s.name,
                state,
                chats_now + offers_now,
                routing.sms_capacity(s, relays),
                until,
                s.id in on_shift,
                free,
                s.away,
            )
        )

    names = {s.id: s.name for s in session.scalars(select(Supporter))}
    open_alerts = session.scalars(
        select(Alert).where(Alert.resolved_at.is_(None)).order_by(Alert.id.desc()).limit(50)
    ).all()
    resolved_alerts = session.scalars(
        select(Alert)
        .where(Alert.resolved_at.is_not(None))
        .order_by(Alert.resolved_at.desc(), Alert.id.desc())
        .limit(RESOLVED_SHOWN)
    ).all()
    aliases = {
        c.id: c.contact.alias
        for c in session.scalars(
            select(Conversation)
            .where(
                Conversation.id.in_([a.conversation_id for a in (*open_alerts, *resolved_alerts)])
            )
            .options(selectinload(Conversation.contact))
        )
    }
    alerts = [
        AlertRow(
            a.id,
            a.kind.replace("_", " "),
            a.detail,
            (moment - a.created_at).total_seconds(),
            aliases.get(a.conversation_id or 0, ""),
            names.get(a.supporter_id or 0, ""),
            a.conversation_id if a.conversation_id in aliases else None,
        )
        for a in open_alerts
    ]
    resolved = [
        ResolvedRow(
            a.id,
            a.kind.replace("_", " "),
            aliases.get(a.conversation_id or 0, ""),
            a.conversation_id if a.conversation_id in aliases else None,
            a.resolved_by or "",
            format_local(a.resolved_at, tz),
            _outcome(the_line.vault, a.outcome_enc),
        )
        for a in resolved_alerts
    ]
    calls = calls_under_way(session, moment)
    return Live(
        waiting,
        supporters,
        chats,
        calls,
        alerts,
        format_local(moment, tz, with_day=False) + moment.astimezone(tz).strftime(":%S %Z"),
        str(tz),
        resolved,
        carrier_backlog(session, the_line),
    )


def _outcome(vault: Vault, token: str | None) -> str:
    """Return an alert's outcome note, decrypted; empty when none was written."""
    if token is None:
        return ""
    try:
        return vault.decrypt(token)
    except ValueError:
        return "(this note can no longer be read)"


def _state(
    s: Supporter, now_: routing.OnShift | None, chats: int, offers: int, on_shift: bool
) -> str:
    """Say what a supporter is doing, and why they cannot take a chat when they cannot."""
    if chats:
        state = "in a chat" if chats == 1 else f"in {chats} chats"
    elif offers:
        state = "offered a chat"
    elif s.opted_out:
        return "opted out of texts"
    elif s.away:
        return "away"
    elif not on_shift:
        return "off shift"
    elif not s.takes_sms:
        return "calls only"
    elif now_ is not None and now_.on_a_call:
        return "on a call"
    elif now_ is not None and now_.at_cap:
        return (
            f"had {now_.chats_this_shift} chats this shift (the cap; offered only a texter in"
            " crisis nobody else free can take)"
        )
    elif now_ is not None and now_.paused:
        return (
            "resting after a crisis chat (until the pause ends or #ready; offered only a texter"
            " in crisis nobody else free can take)"
        )
    elif now_ is not None and now_.free:
        return "free"
    else:
        return "busy"
    if s.away:
        state += ", away"
    elif now_ is not None and now_.free:
        state += ", room for another"
    return state


@dataclass(frozen=True)
class Backlog:
    """Texts taken in but not yet stepped by a worker, and those kept aside after an error."""

    waiting: int | None
    kept_aside: int | None


def read_backlog() -> Backlog:
    """Read the inbound backlog from Redis; unknown (None) while Redis is away."""
    inbound = line().inbound
    try:
        return Backlog(inbound.size(), inbound.failed())
    except RedisError:
        return Backlog(None, None)


def live_context() -> dict[str, object]:
    """Return what the live part of the dashboard shows, for the page and for its refresh."""
    with line().db.session() as session:
        live = read_live(session)
    return {
        "live": live,
        "backlog": read_backlog(),
        "duration": format_duration,
        "confirm": ConfirmForm(),
        "resolve": ResolveForm(formdata=None),
    }


@bp.get("/")
def index() -> str:
    """Show the live dashboard."""
    return render_template(
        "console/dashboard.html",
        refresh_seconds=current_app.config["CONSOLE_REFRESH_SECONDS"],
        **live_context(),
    )


@bp.get("/live")
def live_part() -> str:
    """Return the dashboard's live part, for the page to refresh itself."""
    return render_template("console/_live.html", **live_context())


@bp.post("/alerts/<int:alert_id>/resolve")
def resolve_alert(alert_id: int) -> BaseResponse:
    """Mark an alert as dealt with, keeping what was done (encrypted) and who did it."""
    form = ResolveForm()
    submitted(form, "The note on what was done is at most 500 characters.")
    outcome = " ".join((form.outcome.data or "").split())
    with line().db.session() as session:
        alert = session.get(Alert, alert_id)
        if alert is None:
            abort(404)
        if alert.kind == "block_review" and alert.resolved_at is None:
            return _decide_block_review(session, alert, outcome)
        if alert.resolved_at is None:
            alert.resolved_at, alert.resolved_by = now(), actor()
            if outcome:
                alert.outcome_enc = line().vault.encrypt(outcome)
            # The audit says that a note was written, never the note itself.
            noted = ", with a note" if outcome else ""
            audit(session, "alert.resolved", f"alert {alert.id}", f"{alert.kind}{noted}")
    flash("Alert resolved.", "success")
    return redirect(url_for("console.dashboard.index"))


def _decide_block_review(session: Session, alert: Alert, reason: str) -> BaseResponse:
    """Resolve a `#block` review alert by deciding the block: upheld or lifted, with why.

    A plain "resolved" would leave the number blocked and waiting for review (issue 21).
    """
    decision = request.form.get("decision")
    if decision not in ("uphold", "lift"):
        abort(400, description="Decide the block: uphold it or lift it.")
    if len(reason) < 10:
        abort(400, description="Say why, in at least 10 characters, then decide again.")
    block = block_review.block_of_alert(session, alert)
    if block is None:
        # Lifted already (on the conversation's page): nothing waits; the alert closes.
        alert.resolved_at, alert.resolved_by = now(), actor()
        alert.outcome_enc = line().vault.encrypt(f"Block already lifted: {reason}")
        audit(session, "alert.resolved", f"alert {alert.id}", f"{alert.kind}, with a note")
        flash("The block had already been lifted; alert resolved.", "success")
    elif decision == "lift":
        block_review.decide(session, block, True, reason)
        flash("The block is lifted: the line answers this number again.", "success")
    else:
        block_review.decide(session, block, False, reason)
        flash("The block stays: reviewed and upheld.", "success")
    return redirect(url_for("console.dashboard.index"))
