"""The blocklist: numbers the line does not answer, added by hand or by a supporter's #block.

A supporter's `#block` stops the line answering at once and waits here for review: a
coordinator upholds it (it stays, reviewed) or lifts it (the line answers again). Numbers typed
here are parsed with phonenumbers and stored as the CLI stores them: a keyed hash, never the
number itself. Every change is audited with the reason given.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from peerline.console import block_review
from peerline.console.common import actor, audit, format_local, get_or_404, line
from peerline.console.forms import add_error, audited_reason
from peerline.service.models import Block, Contact, Conversation
from peerline.service.privacy import BadPhoneNumber, normalise_phone

bp = Blueprint("blocklist", __name__, url_prefix="/blocklist")

ACTIVE, REVIEW = "active", "review"


class BlockForm(FlaskForm):
    """Block a number typed by a coordinator, saying why."""

    number = StringField(
        "Phone number",
        validators=[DataRequired(), Length(max=40)],
        description="As people write it; without a country code it is read as the line's.",
        render_kw={"autocomplete": "off", "inputmode": "tel"},
    )
    reason = TextAreaField(
        "Why is it blocked?",
        validators=[DataRequired(), Length(min=10, max=500)],
        description="Other coordinators read this. At least 10 characters.",
    )


class DecisionForm(FlaskForm):
    """Uphold or lift a block, saying why."""

    reason = audited_reason("Why?")


@dataclass(frozen=True)
class BlockRow:
    """A blocked number, known by the alias of the texter when the line has seen it."""

    block_id: int
    alias: str
    conversation_id: int | None
    status: str
    reason: str
    by: str
    since: str


def rows(session: Session) -> list[BlockRow]:
    """Return every block, those waiting for review first, newest first within each."""
    tz = line().timezone(session)
    blocks = session.scalars(select(Block).order_by(Block.created_at.desc(), Block.id.desc()))
    out = []
    for block in blocks:
        contact = session.scalar(select(Contact).where(Contact.phone_hash == block.phone_hash))
        conversation_id = (
            session.scalar(
                select(Conversation.id)
                .where(Conversation.contact_id == contact.id)
                .order_by(Conversation.id.desc())
                .limit(1)
            )
            if contact is not None
            else None
        )
        out.append(
            BlockRow(
                block.id,
                contact.alias if contact is not None else "",
                conversation_id,
                block.status,
                block.reason,
                block.created_by,
                format_local(block.created_at, tz),
            )
        )
    return sorted(out, key=lambda r: r.status != REVIEW)


def _page(form: BlockForm | None = None, status: int = 200) -> tuple[str, int]:
    with line().db.session() as session:
        found = rows(session)
    page = render_template(
        "console/blocklist.html",
        rows=found,
        form=form or BlockForm(formdata=None),
        decision=DecisionForm(formdata=None),
        reviews=sum(r.status == REVIEW for r in found),
    )
    return page, status


@bp.get("/")
def index() -> tuple[str, int]:
    """List blocked numbers, #block reviews first, with a form to block one."""
    return _page()


@bp.post("/")
def add() -> BaseResponse | tuple[str, int]:
    """Block a number typed in the form (or renew the reason on one already blocked)."""
    form = BlockForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    try:
        phone = normalise_phone(form.number.data or "", line().settings.default_region)
    except BadPhoneNumber:
        add_error(form.number, "This is not a phone number the line could receive texts from.")
        return _page(form, 400)
    reason = " ".join((form.reason.data or "").split())
    hashes = line().vault.lookup_hashes(phone)
    with line().db.session() as session:
        existing = session.scalar(select(Block).where(Block.phone_hash.in_(hashes)))
        if existing is not None:
            existing.status, existing.reason = ACTIVE, reason
        else:
            session.add(Block(phone_hash=hashes[0], reason=reason, created_by=actor()))
        # The audit names the number by its last two digits only, as the supporters list does.
        audit(session, "block.added", f"number ending {phone[-2:]}", reason)
    flash(
        "Blocked: the line no longer answers this number (crisis words still get help).", "success"
    )
    return redirect(url_for("console.blocklist.index"))


def _decide(block_id: int, lifted: bool) -> BaseResponse | tuple[str, int]:
    """Uphold or lift a block with the reason given: audited, and its review alerts resolved."""
    form = DecisionForm()
    if not form.validate_on_submit():
        flash("Say why, in at least 10 characters, then decide again.", "error")
        return _page(status=400)
    reason = " ".join((form.reason.data or "").split())
    with line().db.session() as session:
        block = get_or_404(session, Block, block_id, "There is no such block.")
        block_review.decide(session, block, lifted, reason)
    if lifted:
        flash("The block is lifted: the line answers this number again.", "success")
    else:
        flash("The block stays: reviewed and upheld.", "success")
    return redirect(url_for("console.blocklist.index"))


@bp.post("/<int:block_id>/uphold")
def uphold(block_id: int) -> BaseResponse | tuple[str, int]:
    """Keep a block after review: the number stays unanswered, the review is closed."""
    return _decide(block_id, lifted=False)


@bp.post("/<int:block_id>/lift")
def lift(block_id: int) -> BaseResponse | tuple[str, int]:
    """Lift a block: the line answers the number again."""
    return _decide(block_id, lifted=True)
