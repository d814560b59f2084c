"""A voicemail on a line that cannot place calls promises no call-back (session 27).

In embedded mode (`peerline serve` without a Twilio endpoint) nothing can place a call: the
simulator carries texts only. A caller who left a voicemail was still told by text (and in
the last words before hanging up) that a peer would call them back, supporters were told to
reply #call, and #call then said "Calls are not available on this line yet. Keep chatting
by text". Now the caller is texted to reply YES instead, and supporters hear so. Driven by
signed webhooks, as Twilio sends them; every TwiML answer parsed.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from peerline.service.models import Alert
from peerline.service.voice.models import Call, CallbackRequest
from tests.support import lines
from tests.support.chat import texts_to
from tests.support.voice import Phone, Twiml, closed_line_file, phone_for, voicemail_summary


def voicemail(tmp_path: Path, **env: str) -> tuple[Phone, Twiml, str]:
    """Leave a voicemail on a closed line; return the phone, the last TwiML, its reference."""
    phone = phone_for(tmp_path, closed_line_file(), env=env)
    caller = phone.call(lines.TEXTER)
    last = caller.recorded(caller.press(caller.dial_in(), "1"))
    with phone.line.db.session() as session:
        reference = session.scalars(select(CallbackRequest.reference)).one()
    return phone, last, reference


def test_without_telephony_nobody_is_promised_a_call_back(tmp_path: Path) -> None:
    phone, last, reference = voicemail(tmp_path)
    line = phone.line
    assert not line.settings.twilio_api_base_url and line.settings.embedded
    assert last.verbs[-1] == "Hangup"
    assert "call you back" not in last.spoken()
    [told] = texts_to(line, lines.TEXTER)
    assert "cannot call you back" in told and "reply YES to text with a peer" in told, told
    notice = texts_to(line, lines.SAM)[-1]
    assert reference in notice and "cannot place calls, so no #call" in notice, notice
    assert "texted to reply YES" in notice
    with line.db.session() as session:
        detail = session.scalars(select(Alert.detail).where(Alert.kind == "voicemail")).one()
    assert "cannot be called back" in detail and "waiting for a call-back" not in detail
    phone.hooks.sms(lines.SAM, f"#call {reference}")
    answer = texts_to(line, lines.SAM)[-1]
    assert answer.startswith("This line cannot place calls"), answer
    assert reference in answer and "reply YES" in answer and "Keep chatting" not in answer
    with line.db.session() as session:
        assert session.scalars(select(Call.direction)).all() == ["inbound"]


def test_with_a_twilio_endpoint_the_call_back_is_offered_as_before(tmp_path: Path) -> None:
    phone, last, reference = voicemail(tmp_path, TWILIO_API_BASE_URL="http://127.0.0.1:9")
    assert "call you back" in last.spoken()
    assert "will call you back" in texts_to(phone.line, lines.TEXTER)[0]
    assert f"Reply #call {reference}" in texts_to(phone.line, lines.SAM)[-1]


def test_a_crisis_transcript_asks_no_call_back_soon(tmp_path: Path) -> None:
    phone = phone_for(tmp_path, closed_line_file())
    summary = voicemail_summary(phone, "i want to end my life, please call me")
    assert summary.startswith("CRISIS: voicemail") and "cannot call back" in summary, summary
    assert "Call back soon" not in summary and '"i want to end my life' in summary
