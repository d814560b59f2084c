"""A closed line answers a first Spanish crisis text wholly in Spanish (session 28).

"me quiero morir, ya no aguanto mas" as a first text, with nobody on shift, got the Spanish
crisis text and then "La linea abre de nuevo tomorrow at 9:00 AM": the next opening was worded
before the flow read the first text as Spanish.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from flask import Flask

from peerline.service.availability import format_opening
from peerline.service.services import LineServices
from peerline.service.voice.ringing import opening_words
from tests.support import lines
from tests.support.chat import outbox
from tests.support.line import LineBuilder, line_builder

# Sam on one day of the week only, never today nor tomorrow here: the next opening is a day name.
TORONTO = ZoneInfo("America/Toronto")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def sam_on(day: str) -> str:
    """Return a line file with Sam on shift on one day, nine to five."""
    return lines.SAM_MONDAYS.replace("[mon]", f"[{day}]")


@pytest.fixture
def build(tmp_path: Path, app_for: Callable[[LineServices], Flask]) -> LineBuilder:
    """Return a builder of lines."""
    return line_builder(tmp_path, app_for, lines.SAM_MONDAYS)


def other_day() -> str:
    """Return a day three days from today in Toronto: closed now, opening that day."""
    today = datetime.now(UTC).astimezone(TORONTO).weekday()
    return DAYS[(today + 3) % 7]


@pytest.mark.parametrize(
    "first",
    ["me quiero morir, ya no aguanto mas", "me tome todas las pastillas"],
)
def test_a_first_spanish_crisis_text_hears_the_next_opening_in_spanish(
    build: LineBuilder, first: str
) -> None:
    line, hooks = build(sam_on(other_day()))
    hooks.sms(lines.TEXTER, first)
    told = [(m["purpose"], m["body"]) for m in outbox(line, lines.TEXTER)]
    purposes = [purpose for purpose, _ in told]
    assert purposes == ["crisis_closed", "closed"], told
    closed = told[1][1]
    assert "La linea abre de nuevo el " in closed and " a las 09:00 " in closed, closed
    for english in ("tomorrow", "today", " at ", " on ", " AM ", " PM "):
        assert english not in closed, closed


def test_an_english_first_crisis_text_hears_it_in_english(build: LineBuilder) -> None:
    line, hooks = build(sam_on(other_day()))
    hooks.sms(lines.TEXTER, "i want to die, i cant do this anymore")
    told = [(m["purpose"], m["body"]) for m in outbox(line, lines.TEXTER)]
    assert [purpose for purpose, _ in told] == ["crisis_closed", "closed"], told
    assert " at 9:00 AM " in told[1][1] and " on " in told[1][1], told


@pytest.mark.parametrize(
    ("hours", "said"),
    [
        (12, "tonight at midnight (EST)"),
        (36, "tomorrow night at midnight (EST)"),
        (60, "on Tuesday night at midnight (EST)"),
        (24, "tomorrow at noon (EST)"),
        (33.5, "tomorrow at 9:30 PM (EST)"),
    ],
)
def test_midnight_and_noon_are_said_as_people_say_them(hours: float, said: str) -> None:
    # Sunday 2026-12-06, noon in Toronto.
    now = datetime(2026, 12, 6, 17, tzinfo=UTC)
    when = now + timedelta(hours=hours)
    assert format_opening(when, TORONTO, now, "en") == said


def test_a_midnight_a_week_away_is_named_by_its_night_on_the_phone() -> None:
    now = datetime(2026, 12, 6, 17, tzinfo=UTC)
    when = datetime(2026, 12, 15, 5, tzinfo=UTC)  # Tuesday the 15th, 00:00 in Toronto
    said = opening_words(when, TORONTO, now, "en")
    assert said == "on the night of Monday, December 14, at midnight (EST)"
    assert opening_words(when, TORONTO, now, "es") == "el martes 15 de diciembre a las 00:00 (EST)"
