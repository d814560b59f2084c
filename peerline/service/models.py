"""The line's record: typed SQLAlchemy 2.0 models, UTC throughout."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from peerline.flows.texter import ACTIVE, QUEUED, RATING, WELCOMED
from peerline.flows.texter import CLOSED as CLOSED


def utcnow() -> datetime:
    """Return the current time, aware, in UTC."""
    return datetime.now(UTC)


def insert_on(dialect: str, table: Any) -> Any:
    """Return an INSERT into `table` in the dialect's own form, which can say ON CONFLICT."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


class UTCDateTime(TypeDecorator[datetime]):
    """Store aware datetimes as UTC and read them back aware, on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where UTC is required")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        # SQLite hands back naive values; they were written as UTC.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every model."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}


class Contact(Base):
    """A person who texts or calls the line, known by a keyed hash of their number."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_hash: Mapped[str] = mapped_column(String(64), unique=True)
    phone_enc: Mapped[str] = mapped_column(Text)
    alias: Mapped[str] = mapped_column(String(24), unique=True)
    language: Mapped[str] = mapped_column(String(8), default="en")
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Asked to erase their data (DELETE) and not yet confirmed.
    erase_requested_at: Mapped[datetime | None]
    # When the last crisis-resources reply went out, so it is not repeated too often.
    crisis_replied_at: Mapped[datetime | None]
    # The last "you are sending a lot" notice, so a flood hears it once.
    flood_noticed_at: Mapped[datetime | None]


SMS_READY = "active IS true AND away IS false AND opted_out IS false AND takes_sms IS true"


class Supporter(Base):
    """A peer supporter: answers from their own phone, known to texters by first name."""

    __tablename__ = "supporters"
    __table_args__ = (
        # Matching asks for the supporters who could take a chat: this index holds only them,
        # however many have left or are away (the predicate is routing's, word for word).
        Index(
            "ix_supporters_sms_ready",
            "id",
            postgresql_where=text(SMS_READY),
            sqlite_where=text(SMS_READY),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    phone_hash: Mapped[str] = mapped_column(String(64), unique=True)
    phone_enc: Mapped[str] = mapped_column(Text)
    languages: Mapped[str] = mapped_column(String(64), default="en")
    capacity: Mapped[int] = mapped_column(Integer, default=1)
    takes_calls: Mapped[bool] = mapped_column(Boolean, default=True)
    # Some supporters take calls only; they are never offered SMS chats.
    takes_sms: Mapped[bool] = mapped_column(Boolean, default=True)
    on_call: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    away: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    expired_in_row: Mapped[int] = mapped_column(Integer, default=0)
    last_chat_ended_at: Mapped[datetime | None]
    # The secret part of the supporter's private calendar feed URL.
    calendar_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    # The shift the last reminder was about, so "#away" in reply can free that shift.
    reminded_shift_start: Mapped[datetime | None]
    reminded_shift_end: Mapped[datetime | None]
    # After a chat flagged for safety: no offer before this, unless they text #ready.
    paused_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    shifts: Mapped[list[Shift]] = relationship(
        back_populates="supporter", cascade="all, delete-orphan", order_by="Shift.id"
    )
    cover_shifts: Mapped[list[CoverShift]] = relationship(
        back_populates="supporter", cascade="all, delete-orphan", order_by="CoverShift.id"
    )
    time_off: Mapped[list[TimeOff]] = relationship(
        back_populates="supporter", cascade="all, delete-orphan", order_by="TimeOff.id"
    )

    @property
    def language_list(self) -> list[str]:
        """Return the languages the supporter speaks."""
        return [part for part in self.languages.split(",") if part]


class Shift(Base):
    """A weekly recurring shift in the line's time zone (end <= start runs past midnight)."""

    __tablename__ = "shifts"

    id: Mapped[int] = mapped_column(primary_key=True)
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporters.id", ondelete="CASCADE"))
    days: Mapped[str] = mapped_column(String(32))  # "mon,wed,fri"
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)
    run_on_holidays: Mapped[bool] = mapped_column(Boolean, default=False)

    supporter: Mapped[Supporter] = relationship(back_populates="shifts")


class CoverShift(Base):
    """A one-off shift on a date, covering for someone or adding hours."""

    __tablename__ = "cover_shifts"

    id: Mapped[int] = mapped_column(primary_key=True)
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporters.id", ondelete="CASCADE"))
    on_date: Mapped[date] = mapped_column(Date)
    start_minute: Mapped[int] = mapped_column(Integer)
    end_minute: Mapped[int] = mapped_column(Integer)

    supporter: Mapped[Supporter] = relationship(back_populates="cover_shifts")


class TimeOff(Base):
    """Local days a supporter is away, both ends included; or part of them, from/to times."""

    __tablename__ = "time_off"

    id: Mapped[int] = mapped_column(primary_key=True)
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporters.id", ondelete="CASCADE"))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    # Both set: away from start_minute on start_date to end_minute on end_date (wall clock).
    start_minute: Mapped[int | None] = mapped_column(Integer)
    end_minute: Mapped[int | None] = mapped_column(Integer)

    supporter: Mapped[Supporter] = relationship(back_populates="time_off")


class Group(Base):
    """A peer support group that meets weekly."""

    __tablename__ = "groups"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    days: Mapped[str] = mapped_column(String(32))
    start_minute: Mapped[int] = mapped_column(Integer)
    minutes: Mapped[int] = mapped_column(Integer)
    skip_holidays: Mapped[str | None] = mapped_column(String(16))
    join_url: Mapped[str | None] = mapped_column(Text)
    cancelled: Mapped[str] = mapped_column(Text, default="")  # ISO dates, comma-separated


class LineSetting(Base):
    """A line-wide value kept with the rota, such as the time zone and holiday calendar."""

    __tablename__ = "line_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


# Conversation states are the texter flow's stages, stored as the flow names them (the flow
# defines them; CLOSED is imported for the modules that read states from here).
OPEN_STATES = (WELCOMED, QUEUED, ACTIVE, RATING)


class Conversation(Base):
    """One contact's journey from first message to close."""

    __tablename__ = "conversations"
    __table_args__ = (
        # The queue: oldest first within priority, found without a scan.
        Index("ix_conversations_queue", "state", "priority", "queued_at"),
        Index("ix_conversations_contact_state", "contact_id", "state"),
        Index("ix_conversations_supporter_state", "supporter_id", "state"),
        # Matching asks every supporter on shift whether they are in a chat: this index holds
        # only the chats going on, however many closed ones the history keeps.
        Index(
            "ix_conversations_active_supporter",
            "supporter_id",
            postgresql_where=text("state = 'active'"),
            sqlite_where=text("state = 'active'"),
        ),
        # And a free supporter's matches this shift: found by time, not by reading them all.
        Index("ix_conversations_supporter_matched", "supporter_id", "matched_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    supporter_id: Mapped[int | None] = mapped_column(ForeignKey("supporters.id"))
    state: Mapped[str] = mapped_column(String(16), default=WELCOMED)
    language: Mapped[str] = mapped_column(String(8), default="en")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    queued_at: Mapped[datetime | None]
    matched_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(16))
    rating: Mapped[int | None] = mapped_column(Integer)
    relay_number: Mapped[str | None] = mapped_column(String(20))
    # A returning texter who asked for their last supporter again (the SAME keyword).
    preferred_supporter_id: Mapped[int | None] = mapped_column(ForeignKey("supporters.id"))
    notify_on_open: Mapped[bool] = mapped_column(Boolean, default=False)
    wait_updates: Mapped[int] = mapped_column(Integer, default=0)
    unmatched_alerted_at: Mapped[datetime | None]
    crisis_at: Mapped[datetime | None]
    # Kept when the transcript is purged, so reports can still count.
    messages_in: Mapped[int] = mapped_column(Integer, default=0)
    messages_out: Mapped[int] = mapped_column(Integer, default=0)
    purged_at: Mapped[datetime | None]
    # Timers of a chat: the texter message the supporter was last nudged about, and the
    # next-day check-in a texter asked for.
    nudged_inbound_id: Mapped[int | None] = mapped_column(Integer)
    checkin_due_at: Mapped[datetime | None]
    checkin_sent_at: Mapped[datetime | None]

    contact: Mapped[Contact] = relationship()
    supporter: Mapped[Supporter | None] = relationship(foreign_keys=[supporter_id])


# Offer states.
PENDING, ACCEPTED, EXPIRED, DECLINED, WITHDRAWN = (
    "pending",
    "accepted",
    "expired",
    "declined",
    "withdrawn",
)


class Offer(Base):
    """An invitation to one supporter to take one waiting conversation."""

    __tablename__ = "offers"
    __table_args__ = (
        Index("ix_offers_supporter_status", "supporter_id", "status"),
        Index("ix_offers_conversation_status", "conversation_id", "status"),
        # The queue asks "has this conversation a pending offer?" on every round: these stay
        # as small as the pending offers, however long the offer history grows.
        Index(
            "ix_offers_pending_conversation",
            "conversation_id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        Index(
            "ix_offers_pending_supporter",
            "supporter_id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporters.id"))
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    # With a pool of relay numbers, the number this offer (and then the chat) uses.
    relay_number: Mapped[str | None] = mapped_column(String(20))


class InboundMessage(Base):
    """A message that reached the line; its MessageSid acts once only."""

    __tablename__ = "inbound_messages"
    # By sender, newest first: the crisis check reads a texter's last few texts together
    # (`runtime.texter.burst`), a long-time texter's thousands of rows not sorted for it.
    __table_args__ = (
        Index("ix_inbound_conversation", "conversation_id", "id"),
        Index("ix_inbound_sender", "from_hash", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_sid: Mapped[str] = mapped_column(String(64), unique=True)
    from_hash: Mapped[str] = mapped_column(String(64), index=True)
    to_number: Mapped[str] = mapped_column(String(20))
    body_enc: Mapped[str] = mapped_column(Text)
    sender_kind: Mapped[str] = mapped_column(String(16))  # texter, supporter
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What the line did on these words, so a supporter who takes the chat later sees the
    # waiting texts marked as a live relay would have marked them.
    raised_safety: Mapped[bool] = mapped_column(Boolean, default=False)
    someone_else: Mapped[bool] = mapped_column(Boolean, default=False)
    picture: Mapped[bool] = mapped_column(Boolean, default=False)  # pictures came with it
    # Shown live to the chat's supporter (relayed, or told a picture came): a supporter who
    # hands a chat back and takes it again is replayed only the texts they were not shown.
    relayed: Mapped[bool] = mapped_column(Boolean, default=False)


# Outbound statuses, in the order they may advance.
OUT_PENDING, OUT_SENDING, OUT_SENT, OUT_DELIVERED = "pending", "sending", "sent", "delivered"
OUT_UNDELIVERED, OUT_FAILED = "undelivered", "failed"
# Too late to be worth sending (an offer that has timed out, a stale wait update).
OUT_DROPPED = "dropped"


class OutboundMessage(Base):
    """A message the line sends: written here first, then sent by a worker."""

    __tablename__ = "outbound_messages"
    __table_args__ = (
        Index("ix_outbound_status", "status", "id"),
        Index("ix_outbound_to_status", "to_hash", "status", "id"),
        Index("ix_outbound_conversation", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    to_hash: Mapped[str] = mapped_column(String(64))
    to_enc: Mapped[str] = mapped_column(Text)
    from_number: Mapped[str] = mapped_column(String(20))
    body_enc: Mapped[str] = mapped_column(Text)
    recipient_kind: Mapped[str] = mapped_column(String(16))  # texter, supporter
    purpose: Mapped[str] = mapped_column(String(32))
    # Its place in the sender's budget (lanes.CRISIS first) and its size in SMS segments.
    lane: Mapped[int] = mapped_column(SmallInteger, default=3, server_default="3")
    segments: Mapped[int] = mapped_column(SmallInteger, default=1, server_default="1")
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    status: Mapped[str] = mapped_column(String(16), default=OUT_PENDING)
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    error_code: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A time-sensitive message is dropped rather than delivered after this.
    valid_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]


class Alert(Base):
    """Something a coordinator should look at: a texter left waiting, a safety concern, a gap."""

    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_open", "resolved_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    supporter_id: Mapped[int | None] = mapped_column(ForeignKey("supporters.id"))
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(254))
    # Encrypted: what the coordinator did, in their words (it can name a person).
    outcome_enc: Mapped[str | None] = mapped_column(Text)


class GroupSubscription(Base):
    """A texter who asked (REMIND) for a text before each group meeting."""

    __tablename__ = "group_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReminderLog(Base):
    """A reminder that has gone out: its key is what keeps it from going out twice."""

    __tablename__ = "reminder_log"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    recipients: Mapped[int] = mapped_column(Integer, default=0)


class SafetyEvent(Base):
    """A moment someone may have been in danger: from the detector or a supporter's #alert."""

    __tablename__ = "safety_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    source: Mapped[str] = mapped_column(String(16))  # detector, supporter
    category: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Block(Base):
    """A number the line no longer answers: set by a coordinator, or by #block until reviewed."""

    __tablename__ = "blocks"

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="active")  # active, review
    created_by: Mapped[str] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEvent(Base):
    """Who looked at or changed what, and when."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(120))
    detail: Mapped[str] = mapped_column(Text, default="")


class Coordinator(Base):
    """A person who runs the rota from the console."""

    __tablename__ = "coordinators"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # "admin" (accounts, and all a coordinator does) or "coordinator" (rota, queue, alerts,
    # reports); opening transcripts is a permission of its own.
    role: Mapped[str] = mapped_column(String(16), default="coordinator")
    transcripts: Mapped[bool] = mapped_column(Boolean, default=False)


class ConsoleSession(Base):
    """A signed-in console session: checked on every request, ended server-side."""

    __tablename__ = "console_sessions"

    # A digest of the token in the session cookie: the table alone opens no session.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    coordinator_id: Mapped[int] = mapped_column(
        ForeignKey("coordinators.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]
    # signed_out, password_changed, ended_by_admin, deactivated
    end_reason: Mapped[str | None] = mapped_column(String(32))


class ContactRecord(Base):
    """What reports count about one chat, without its words: one row per conversation.

    The supporter's few words (`note_enc`) are the only text, encrypted like a transcript and
    purged and erased with it; everything else is a count or a category.
    """

    __tablename__ = "contact_records"
    # A record is about one SMS chat or one answered call, never both (issue 21: voice).
    __table_args__ = (
        CheckConstraint(
            "(conversation_id IS NULL) <> (call_id IS NULL)", name="one_conversation_or_call"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"), unique=True)
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), unique=True)
    supporter_id: Mapped[int | None] = mapped_column(ForeignKey("supporters.id"))
    channel: Mapped[str] = mapped_column(String(8), default="sms")  # sms, voice
    language: Mapped[str] = mapped_column(String(8), default="en")
    waited_seconds: Mapped[int | None] = mapped_column(Integer)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    crisis_category: Mapped[str | None] = mapped_column(String(32))
    topics: Mapped[str] = mapped_column(String(400), default="")  # comma-separated topic words
    supporter_score: Mapped[int | None] = mapped_column(Integer)
    texter_rating: Mapped[int | None] = mapped_column(Integer)
    referred: Mapped[bool] = mapped_column(Boolean, default=False)
    returning_texter: Mapped[bool] = mapped_column(Boolean, default=False)
    note_enc: Mapped[str | None] = mapped_column(Text)
    ended_at: Mapped[datetime | None] = mapped_column(index=True)
    noted_at: Mapped[datetime | None]


class DebriefRequest(Base):
    """A supporter's #debrief: a coordinator is to reach out to them about a chat."""

    __tablename__ = "debrief_requests"
    __table_args__ = (Index("ix_debrief_requests_open", "done_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporters.id"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    # The answered call it is about, when it is about a call (issue 21: voice).
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]
    done_by: Mapped[str | None] = mapped_column(String(254))

    supporter: Mapped[Supporter] = relationship()
