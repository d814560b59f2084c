"""The voice line's record: calls, the supporters each call rang, and call-back requests.

Kept apart from `models.py` so the SMS line never needs the voice line to load; Alembic's
`env.py` imports this module so the tables join `Base.metadata` for migrations.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from peerline.service.models import Base, Contact, Supporter, utcnow

# Directions.
INBOUND, CALLBACK = "inbound", "callback"

# Where an inbound call is in our script.
MENU, RINGING, CONNECTED, VOICEMAIL, TRANSFERRED, ENDED = (
    "menu",
    "ringing",
    "connected",
    "voicemail",
    "transferred",
    "ended",
)
# Hearing the crisis offer (crisis words at the menu, or a transfer that did not connect): a
# state of its own, so the request that led here, sent again, is told the offer again.
OFFERED = "crisis_offer"
# The menu choice that marks a call whose words told of someone else at risk and of no crisis
# of the caller's own: its offer is worded for someone worried about another person.
SOMEONE_ELSE = "someone_else"
# Where an outbound call-back is: written, being placed by a worker, ringing the supporter,
# ringing the other person, then connected or ended; failed when it never left.
PLACING, DIALING, CALLING_SUPPORTER, BRIDGING, FAILED = (
    "placing",
    "dialing",
    "calling_supporter",
    "bridging",
    "failed",
)

# Call-back request statuses.
REQUEST_OPEN, REQUEST_CALLING, REQUEST_DONE = "open", "calling", "done"


class CallbackRequest(Base):
    """Someone waiting for a call back: a voicemail left when nobody could answer."""

    __tablename__ = "callback_requests"
    __table_args__ = (Index("ix_callback_requests_status", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # What supporters see and type (#call VM-4821); never the caller's number.
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default="voicemail")
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    language: Mapped[str] = mapped_column(String(8), default="en")
    recording_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Encrypted: a recording's URL is the caller's voice, for coordinators' eyes only.
    recording_url_enc: Mapped[str | None] = mapped_column(Text)
    recording_seconds: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=REQUEST_OPEN)
    # The supporter calling back now, or who last did.
    supporter_id: Mapped[int | None] = mapped_column(ForeignKey("supporters.id"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The crisis detector's category when the call or the voicemail's words matched it.
    crisis: Mapped[str | None] = mapped_column(String(16))
    # Encrypted: Twilio's transcription of the voicemail, for the crisis check and a summary.
    transcript_enc: Mapped[str | None] = mapped_column(Text)
    transcribed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    notified_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]

    contact: Mapped[Contact] = relationship()
    supporter: Mapped[Supporter | None] = relationship()


class Call(Base):
    """One phone call: a caller ringing the line, or a masked call-back the line places."""

    __tablename__ = "calls"
    __table_args__ = (
        Index("ix_calls_supporter_ended", "supporter_id", "ended_at"),
        Index("ix_calls_state", "state", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Unique, so a retried webhook finds the call instead of starting a second one. An
    # outbound call-back has none until Twilio accepts it.
    call_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    direction: Mapped[str] = mapped_column(String(16))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    # The caller's number, hashed for look-up and encrypted for a call-back; both empty
    # when the caller withheld it.
    from_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    from_enc: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8), default="en")
    state: Mapped[str] = mapped_column(String(24))
    # Twilio's CallStatus, only ever moved forward.
    status: Mapped[str | None] = mapped_column(String(16))
    menu_choice: Mapped[str | None] = mapped_column(String(16))
    menu_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Set once the group times went out by text, so a repeated key press sends no second.
    groups_texted_at: Mapped[datetime | None]
    # Which ringing round the call is in: a round rings one supporter or several at once.
    round: Mapped[int] = mapped_column(Integer, default=0)
    outcome: Mapped[str | None] = mapped_column(String(24))
    # How many times the caller was put through to the crisis line: each transfer's <Dial>
    # action names its number, so a late end of an earlier one is not taken for this one's.
    crisis_transfers: Mapped[int] = mapped_column(Integer, default=0)
    # The supporter who accepted (inbound) or who is calling back (callback).
    supporter_id: Mapped[int | None] = mapped_column(ForeignKey("supporters.id"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))
    callback_request_id: Mapped[int | None] = mapped_column(ForeignKey("callback_requests.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    connected_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    # How long the two people talked, from the bridged leg.
    talk_seconds: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[int | None] = mapped_column(Integer)
    # The crisis detector's category when the caller's words matched it: rung first, told.
    crisis: Mapped[str | None] = mapped_column(String(16))
    # Twilio's AnsweredBy for a call-back's far end (human, machine_start, fax, ...).
    answered_by: Mapped[str | None] = mapped_column(String(24))

    contact: Mapped[Contact | None] = relationship()
    supporter: Mapped[Supporter | None] = relationship()
    callback_request: Mapped[CallbackRequest | None] = relationship()
    legs: Mapped[list[CallLeg]] = relationship(
        back_populates="call", cascade="all, delete-orphan", order_by="CallLeg.id"
    )


class CallLeg(Base):
    """One supporter rung for an inbound call: what their phone did and what they chose."""

    __tablename__ = "call_legs"
    __table_args__ = (
        Index("ix_call_legs_call_round", "call_id", "round"),
        Index("ix_call_legs_supporter_ended", "supporter_id", "ended_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    supporter_id: Mapped[int] = mapped_column(ForeignKey("supporters.id"))
    round: Mapped[int] = mapped_column(Integer)
    # Known once Twilio tells us about the leg (its first status or the whisper request).
    leg_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    status: Mapped[str | None] = mapped_column(String(16))
    accepted: Mapped[bool] = mapped_column(Boolean, default=False)
    # accepted, declined, no_input, no-answer, busy, failed, canceled, taken (another won).
    outcome: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    duration_seconds: Mapped[int | None] = mapped_column(Integer)

    call: Mapped[Call] = relationship(back_populates="legs")
    supporter: Mapped[Supporter] = relationship()
