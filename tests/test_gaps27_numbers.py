"""A phone number said as words is masked in a voicemail summary texted to staff (session 27).

The transcript of a caller who reads their number out ("four one six five five five...",
"cuatro uno seis...", "416 five five five 9005", "oh" for zero) reached supporters whole:
only seven or more numerals were masked. Driven by signed webhooks, as Twilio sends them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import lines
from tests.support.chat import texts_to
from tests.support.voice import Phone, closed_line_file, voice_app, voice_line


def summary_of(tmp_path: Path, words: str) -> str:
    """Leave a voicemail whose transcript is `words`; return the summary Sam is texted."""
    line = voice_line(tmp_path, closed_line_file())
    phone = Phone(line, voice_app(line))
    caller = phone.call(lines.TEXTER)
    message = caller.press(caller.dial_in(), "1")
    recording = "RE" + "e" * 32
    caller.recorded(message, sid=recording)
    fields = {
        "CallSid": caller.sid,
        "AccountSid": line.settings.twilio_account_sid,
        "RecordingSid": recording,
        "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/{recording}",
        "TranscriptionSid": "TR" + "f" * 32,
        "TranscriptionStatus": "completed",
        "TranscriptionText": words,
    }
    callback = message.one("Record").attrib["transcribeCallback"]
    assert phone.post(callback, fields).status_code == 204
    return texts_to(line, lines.SAM)[-1]


@pytest.mark.parametrize(
    ("words", "left"),
    [
        ("hi, my number is four one six five five five nine zero zero five, thanks", "thanks"),
        ("mi numero es cuatro uno seis cinco cinco cinco nueve cero cero cinco gracias", "gracias"),
        ("Mi número es cuatro, uno, seis, cinco cinco cinco, nueve cero cero cinco.", "Mi n"),
        ("call me on 416 five five five 9005 tonight", "tonight"),
        ("it's four one six, five five five, nine oh oh five. bye", "bye"),
        ("four sixteen, double five five, ninety oh five please", "please"),
        ("cuarenta y uno, sesenta y cinco, cincuenta y cinco, noventa cero cinco", '"'),
    ],
)
def test_a_number_said_as_words_is_masked(tmp_path: Path, words: str, left: str) -> None:
    summary = summary_of(tmp_path, words)
    assert "[number]" in summary, summary
    assert left in summary, summary
    for said in ("five five", "cinco cinco", "nine", "nueve", "zero", "cero", " oh ", "ninety"):
        assert said not in summary.lower(), summary


@pytest.mark.parametrize(
    "words",
    [
        "I have two kids and I'm thirty five, please call, it's been three days",
        "tengo dos hijos y hace tres dias que no duermo, llamame por favor",
        "oh no, I waited for two hours to talk to one of you",
    ],
)
def test_ordinary_counts_stay(tmp_path: Path, words: str) -> None:
    summary = summary_of(tmp_path, words)
    assert "[number]" not in summary, summary
    assert words in summary, summary
