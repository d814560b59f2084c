"""Conversations: metadata for everyone, a transcript only with a stated, audited reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload
from werkzeug.wrappers import Response as BaseResponse

from peerline.console.common import (
    audit,
    flagged,
    format_duration,
    format_local,
    line,
    now,
    page_number,
    seconds_between,
)
from peerline.console.forms import TranscriptForm, UnblockForm
from peerline.service.models import (
    ACTIVE,
    CLOSED,
    QUEUED,
    RATING,
    WELCOMED,
    Block,
    ContactRecord,
    Conversation,
    InboundMessage,
    OutboundMessage,
)

bp = Blueprint("conversations", __name__, url_prefix="/conversations")

PAGE_SIZE = 50
FILTERS = {
    "all": None,
    "waiting": (QUEUED,),
    "active": (ACTIVE,),
    "closed": (CLOSED, RATING),
    "welcomed": (WELCOMED,),
}


def outcome(conversation: Conversation) -> str:
    """Describe how a conversation went, without a word of what was said."""
    if conversation.state == QUEUED:
        return "waiting"
    if conversation.state == ACTIVE:
        return "in a chat"
    if conversation.state == WELCOMED:
        return "welcomed"
    if conversation.matched_at is None:
        return "left before matched" if conversation.queued_at else "did not ask for a peer"
    ended = f"ended by {conversation.closed_by}" if conversation.closed_by else "ended"
    return ended + (", awaiting rating" if conversation.state == RATING else "")


@dataclass(frozen=True)
class ConversationRow:
    """A conversation's metadata."""

    conversation_id: int
    alias: str
    started: str
    wait: str
    supporter: str
    outcome: str
    rating: int | None
    crisis: bool
    opted_out: bool
    language: str
    purged: str


def row_of(conversation: Conversation, tz: ZoneInfo) -> ConversationRow:
    """Return the metadata row for a conversation."""
    if conversation.matched_at is not None:
        wait = format_duration(seconds_between(conversation.queued_at, conversation.matched_at))
    elif conversation.state == QUEUED:
        wait = format_duration(seconds_between(conversation.queued_at, now())) + " so far"
    else:
        wait = "–"
    return ConversationRow(
        conversation.id,
        conversation.contact.alias,
        format_local(conversation.created_at, tz),
        wait,
        conversation.supporter.name if conversation.supporter else "",
        outcome(conversation),
        conversation.rating,
        flagged(conversation),
        conversation.contact.opted_out,
        conversation.language,
        format_local(conversation.purged_at, tz),
    )


def _conversation(session: Session, conversation_id: int) -> Conversation:
    conversation = session.scalar(
        select(Conversation)
        .where(Conversation.id == conversation_id)
        .options(selectinload(Conversation.contact), selectinload(Conversation.supporter))
    )
    if conversation is None:
        abort(404, description="There is no such conversation.")
    return conversation


@bp.get("/")
def index() -> str:
    """List conversations, newest first, metadata only."""
    chosen = request.args.get("show", "all")
    if chosen not in FILTERS:
        abort(400, description=f"show must be one of {', '.join(FILTERS)}")
    only_flagged = request.args.get("flagged") == "1"
    page = page_number(request.args.get("page"))
    query = select(Conversation)
    states = FILTERS[chosen]
    if states:
        query = query.where(Conversation.state.in_(states))
    if only_flagged:
        query = query.where(or_(Conversation.crisis_at.is_not(None), Conversation.priority > 0))
    with line().db.session() as session:
        tz = line().timezone(session)
        total = int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
        conversations = session.scalars(
            query.options(selectinload(Conversation.contact), selectinload(Conversation.supporter))
            .order_by(Conversation.id.desc())
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        ).all()
        rows = [row_of(c, tz) for c in conversations]
    return render_template(
        "console/conversations.html",
        rows=rows,
        chosen=chosen,
        filters=list(FILTERS),
        flagged=only_flagged,
        page=page,
        pages=max(1, -(-total // PAGE_SIZE)),
        total=total,
        timezone=str(tz),
    )


def block_of(session: Session, conversation: Conversation) -> Block | None:
    """Return the block on the conversation's texter, if their number is blocked."""
    return session.scalar(select(Block).where(Block.phone_hash == conversation.contact.phone_hash))


@bp.get("/<int:conversation_id>")
def show(conversation_id: int) -> str:
    """Show a conversation's metadata and ask why its transcript is needed."""
    with line().db.session() as session:
        tz = line().timezone(session)
        conversation = _conversation(session, conversation_id)
        row = row_of(conversation, tz)
        block = block_of(session, conversation)
        blocked = f"{block.status}, since {format_local(block.created_at, tz)}" if block else ""
    return render_template(
        "console/conversation.html",
        row=row,
        form=TranscriptForm(),
        blocked=blocked,
        unblock_form=UnblockForm(),
    )


@bp.post("/<int:conversation_id>/unblock")
def unblock(conversation_id: int) -> BaseResponse | tuple[str, int]:
    """Lift the block on a conversation's texter, with a reason written to the audit log."""
    form = UnblockForm()
    with line().db.session() as session:
        conversation = _conversation(session, conversation_id)
        block = block_of(session, conversation)
        if block is None:
            abort(404, description="This texter's number is not blocked.")
        if not form.validate_on_submit():
            tz = line().timezone(session)
            return render_template(
                "console/conversation.html",
                row=row_of(conversation, tz),
                form=TranscriptForm(),
                blocked=block.status,
                unblock_form=form,
            ), 400
        reason = " ".join((form.reason.data or "").split())
        audit(
            session,
            "block.lifted",
            f"conversation {conversation.id} ({conversation.contact.alias})",
            f"{block.reason}; lifted: {reason}",
        )
        session.delete(block)
    flash("The block is lifted: the line answers this number again.", "success")
    return redirect(url_for("console.conversations.show", conversation_id=conversation_id))


@dataclass(frozen=True)
class Said:
    """One message in a transcript."""

    at: datetime
    when: str
    who: str
    kind: str  # texter, supporter, line
    text: str


def transcript(session: Session, conversation: Conversation) -> list[Said]:
    """Return a conversation's messages in order, decrypted."""
    the_line = line()
    tz = the_line.timezone(session)
    vault = the_line.vault

    def read(token: str) -> str:
        try:
            return vault.decrypt(token)
        except ValueError:
            return "(this message can no longer be read)"

    supporter = conversation.supporter.name if conversation.supporter else "Supporter"
    said = [
        Said(
            m.received_at,
            format_local(m.received_at, tz),
            conversation.contact.alias if m.sender_kind == "texter" else supporter,
            "texter" if m.sender_kind == "texter" else "supporter",
            read(m.body_enc),
        )
        for m in session.scalars(
            select(InboundMessage).where(InboundMessage.conversation_id == conversation.id)
        )
    ]
    # What the line sent on its own; relays repeat what the other side wrote, shown once above.
    said += [
        Said(
            m.created_at,
            format_local(m.created_at, tz),
            "Line (automatic)",
            "line",
            read(m.body_enc),
        )
        for m in session.scalars(
            select(OutboundMessage).where(
                OutboundMessage.conversation_id == conversation.id,
                OutboundMessage.recipient_kind == "texter",
                OutboundMessage.purpose != "relay",
            )
        )
    ]
    return sorted(said, key=lambda s: (s.at, s.kind != "texter"))


@bp.post("/<int:conversation_id>/transcript")
def open_transcript(conversation_id: int) -> BaseResponse | tuple[str, int]:
    """Show a transcript after writing who opened it, and why, to the audit log."""
    form = TranscriptForm()
    with line().db.session() as session:
        tz = line().timezone(session)
        conversation = _conversation(session, conversation_id)
        row = row_of(conversation, tz)
        if not form.validate_on_submit():
            return render_template("console/conversation.html", row=row, form=form), 400
        reason = " ".join((form.reason.data or "").split())
        audit(
            session,
            "transcript.opened",
            f"conversation {conversation.id} ({conversation.contact.alias})",
            reason,
        )
        messages = transcript(session, conversation)
        note = supporter_note(session, conversation.id)
    return make_response(
        render_template(
            "console/transcript.html", row=row, messages=messages, reason=reason, note=note
        )
    )


def supporter_note(session: Session, conversation_id: int) -> dict[str, str] | None:
    """Return the supporter's after-chat note (issue 21), shown only with the transcript."""
    record = session.scalar(
        select(ContactRecord).where(ContactRecord.conversation_id == conversation_id)
    )
    if record is None or record.noted_at is None and not record.referred:
        return None
    return {
        "score": f"{record.supporter_score} of 5" if record.supporter_score else "–",
        "topics": record.topics.replace(",", ", ") or "–",
        "referred": "yes" if record.referred else "no",
        "words": line().vault.decrypt(record.note_enc) if record.note_enc else "",
    }
