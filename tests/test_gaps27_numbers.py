"""A phone number said as words is masked in a voicemail summary texted to staff (session 27).

The transcript of a caller who reads their number out ("four one six five five five...",
"cuatro uno seis...", "416 five five five 9005", "oh" for zero) reached supporters whole:
only seven or more numerals were masked. Driven by signed webhooks, as Twilio sends them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.voice import closed_line_file, phone_for, voicemail_summary


def summary_of(tmp_path: Path, words: str) -> str:
    """Leave a voicemail whose transcript is `words`; return the summary Sam is texted."""
    return voicemail_summary(phone_for(tmp_path, closed_line_file()), words)


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
