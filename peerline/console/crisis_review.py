"""Teach the crisis detector from the line's own misses.

A supporter's `#alert` on a chat the detector had not flagged means the detector missed
something. The review list shows those chats by metadata only; a coordinator who states a
reason (audited, as for a transcript) sees what the texter wrote up to the alert and can add
words from it, labelled with a category, to the line's extra phrase file
(``PEERLINE_CRISIS_PHRASES``) as a phrase, or to the examples file beside it as a labelled
message for the next evaluation. Every process, web and workers, reloads the phrases before its
next check (crisis.LineDetector).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from flask import Blueprint, abort, flash, make_response, redirect, render_template, url_for
from flask_wtf import FlaskForm
from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased, selectinload
from werkzeug.wrappers import Response as BaseResponse
from wtforms import SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice  # type: ignore[attr-defined]  # stubs lag
from wtforms.validators import DataRequired, Length

from peerline.console.common import audit, crisis_words, format_local, line
from peerline.console.forms import TranscriptForm
from peerline.service.crisis import CATEGORIES, CrisisDetector, merge_configs, normalise
from peerline.service.models import Conversation, InboundMessage, SafetyEvent
from peerline.service.privacy import Vault

bp = Blueprint("crisis_review", __name__, url_prefix="/crisis-review")

LIMIT = 100
EXAMPLES_NAME = "crisis_review_examples.yaml"


class TeachForm(FlaskForm):
    """Add words from a missed message to the detector, labelled."""

    text = TextAreaField(
        "Words to add",
        validators=[DataRequired(), Length(min=3, max=300)],
        description="Only the words that carry the risk: no names, places or numbers.",
    )
    # Labelled in words from the line's catalogue when shown (labelled_categories).
    category = SelectField("Category", choices=[SelectChoice(c, c) for c in CATEGORIES])
    language = SelectField(
        "Language", choices=[SelectChoice("en", "English"), SelectChoice("es", "Spanish")]
    )
    target = SelectField(
        "Add as",
        choices=[
            SelectChoice("phrase", "a phrase the detector matches"),
            SelectChoice("example", "a labelled example"),
        ],
    )
    reason = StringField("Why", validators=[DataRequired(), Length(min=3, max=200)])


def labelled_categories(form: TeachForm) -> TeachForm:
    """Label the form's categories in words, as alerts name them ("wishes to be dead"), never
    their codes ("wish dead")."""
    form.category.choices = [SelectChoice(c, crisis_words(c)) for c in CATEGORIES]
    return form


@dataclass(frozen=True)
class Missed:
    """A supporter's alert on a chat the detector had not flagged."""

    conversation_id: int
    alias: str
    when: str


def missed(session: Session) -> list[Missed]:
    """Return the chats with a supporter's alert and no detector event, newest first."""
    detector_event = aliased(SafetyEvent)
    rows = session.execute(
        select(SafetyEvent, Conversation)
        .join(Conversation, Conversation.id == SafetyEvent.conversation_id)
        .where(
            SafetyEvent.source == "supporter",
            ~exists().where(
                detector_event.conversation_id == SafetyEvent.conversation_id,
                detector_event.source == "detector",
            ),
        )
        .options(selectinload(Conversation.contact))
        .order_by(SafetyEvent.created_at.desc(), SafetyEvent.id.desc())
        .limit(LIMIT)
    ).all()
    tz = line().timezone(session)
    seen: set[int] = set()
    out = []
    for event, conversation in rows:
        if conversation.id in seen:
            continue
        seen.add(conversation.id)
        out.append(
            Missed(conversation.id, conversation.contact.alias, format_local(event.created_at, tz))
        )
    return out


def _missed_conversation(session: Session, conversation_id: int) -> tuple[Conversation, datetime]:
    """Return a conversation on the review list and the time of its first supporter alert."""
    conversation = session.get(Conversation, conversation_id)
    alert_at = session.scalar(
        select(SafetyEvent.created_at)
        .where(SafetyEvent.conversation_id == conversation_id, SafetyEvent.source == "supporter")
        .order_by(SafetyEvent.created_at)
    )
    flagged = session.scalar(
        select(SafetyEvent.id).where(
            SafetyEvent.conversation_id == conversation_id, SafetyEvent.source == "detector"
        )
    )
    if conversation is None or alert_at is None or flagged is not None:
        abort(404, description="There is no missed supporter alert on such a conversation.")
    return conversation, alert_at


def texter_said(session: Session, conversation: Conversation, until: datetime) -> list[str]:
    """Return what the texter wrote up to the alert, decrypted, oldest first."""
    vault = line().vault
    out = []
    for message in session.scalars(
        select(InboundMessage)
        .where(
            InboundMessage.conversation_id == conversation.id,
            InboundMessage.sender_kind == "texter",
            InboundMessage.received_at <= until,
        )
        .order_by(InboundMessage.received_at, InboundMessage.id)
    ):
        try:
            out.append(vault.decrypt(message.body_enc))
        except ValueError:
            out.append("(this message can no longer be read)")
    return out


@bp.get("/")
def index() -> str:
    """List the chats supporters alerted on that the detector did not flag (metadata only)."""
    with line().db.session() as session:
        rows = missed(session)
    return render_template(
        "console/crisis_review.html", rows=rows, phrases_file=line().settings.crisis_file
    )


@bp.get("/<int:conversation_id>")
def show(conversation_id: int) -> str:
    """Ask why the texter's messages are needed before showing them."""
    with line().db.session() as session:
        conversation, alert_at = _missed_conversation(session, conversation_id)
        alias = conversation.contact.alias
        when = format_local(alert_at, line().timezone(session))
    return render_template(
        "console/crisis_review_open.html",
        conversation_id=conversation_id,
        alias=alias,
        when=when,
        form=TranscriptForm(),
    )


@bp.post("/<int:conversation_id>")
def open_review(conversation_id: int) -> BaseResponse | tuple[str, int]:
    """Show what the texter wrote, after writing who looked, and why, to the audit log."""
    form = TranscriptForm()
    with line().db.session() as session:
        conversation, alert_at = _missed_conversation(session, conversation_id)
        alias = conversation.contact.alias
        if not form.validate_on_submit():
            when = format_local(alert_at, line().timezone(session))
            page = render_template(
                "console/crisis_review_open.html",
                conversation_id=conversation_id,
                alias=alias,
                when=when,
                form=form,
            )
            return page, 400
        reason = " ".join((form.reason.data or "").split())
        audit(session, "crisis_review.opened", f"conversation {conversation.id} ({alias})", reason)
        said = texter_said(session, conversation, alert_at)
        language = conversation.language if conversation.language in ("en", "es") else "en"
    teach_form = labelled_categories(TeachForm(formdata=None))
    teach_form.language.data = language
    if said:
        teach_form.text.data = " ".join(t for t in normalise(said[-1]).split() if t != "|")
    page = render_template(
        "console/crisis_review_messages.html",
        conversation_id=conversation_id,
        alias=alias,
        reason=reason,
        said=said,
        teach=teach_form,
        phrases_file=line().settings.crisis_file,
    )
    return make_response(page)


@bp.post("/<int:conversation_id>/teach")
def teach(conversation_id: int) -> BaseResponse | tuple[str, int]:
    """Add words, labelled, to the line's extra phrase file or its examples file."""
    form = TeachForm()
    path = line().settings.crisis_file
    if path is None:
        abort(409, description="Set PEERLINE_CRISIS_PHRASES to a writable phrase file first.")
    if not form.validate_on_submit():
        abort(400, description="; ".join(f"{k}: {', '.join(v)}" for k, v in form.errors.items()))
    words = " ".join(t for t in normalise(form.text.data or "").split() if t != "|")
    category, language = str(form.category.data), str(form.language.data)
    with line().db.session() as session:
        conversation, _ = _missed_conversation(session, conversation_id)
        if form.target.data == "phrase":
            add_phrase(Path(path), language, category, words)
            line().crisis.reload()
            where = f"phrase file, {language}/{category}"
        else:
            add_example(
                Path(path).with_name(EXAMPLES_NAME), language, category, line().vault.encrypt(words)
            )
            where = f"examples file, {language}/{category}"
        audit(
            session,
            "crisis_review.added",
            f"conversation {conversation.id} ({conversation.contact.alias})",
            f"{where}: {' '.join((form.reason.data or '').split())}",
        )
    flash(f"Added to the {where}.", "success")
    return redirect(url_for("console.crisis_review.index"))


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if data is None:
        return {}
    if not isinstance(data, dict):
        abort(409, description=f"{path.name} does not hold a mapping; fix it by hand first.")
    return data


def add_phrase(path: Path, language: str, category: str, words: str) -> None:
    """Add a plain phrase to an extra phrase file, refusing one that would not load."""
    if not re.fullmatch(r"[\w ]+", words):
        abort(400, description="A phrase is words and spaces only.")
    updated = merge_configs(_read(path), {"phrases": {language: {category: [words]}}})
    # Written beside the file, loaded as the detector would load it, then moved over it: a
    # file that would not load never replaces a good one. Comments in the file are not kept.
    draft = path.with_name(f".{path.name}.draft")
    draft.write_text(yaml.safe_dump(updated, allow_unicode=True, sort_keys=False), "utf-8")
    try:
        CrisisDetector.load(str(draft))
    except ValueError as exc:
        draft.unlink()
        abort(400, description=str(exc))
    os.replace(draft, path)


def add_example(path: Path, language: str, category: str, sealed: str) -> None:
    """Add a labelled crisis message, encrypted like a transcript, to the line's examples file.

    The words may be a texter's own, so they are kept only as the vault's token
    (``text_encrypted``); :func:`read_examples` opens them with the line's keys.
    """
    data = _read(path)
    items = data.setdefault("items", [])
    if not isinstance(items, list):
        abort(409, description=f"{path.name}: items must be a list; fix it by hand first.")
    items.append(
        {
            "text_encrypted": sealed,
            "label": True,
            "language": language,
            "split": "dev",
            "category": category,
            "note": "missed by the detector, added from the console review",
        }
    )
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")


def read_examples(path: Path, vault: Vault) -> list[dict[str, Any]]:
    """Return the examples file's items with their words decrypted (for an evaluation)."""
    items = _read(path).get("items") or []
    return [
        {**{k: v for k, v in item.items() if k != "text_encrypted"}, "text": vault.decrypt(sealed)}
        if isinstance(sealed := item.get("text_encrypted"), str)
        else dict(item)
        for item in items
    ]
