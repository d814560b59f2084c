"""The public groups page and its iCalendar file: holidays, cancellations and DST."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
from fakeredis import FakeRedis, FakeServer
from flask import Flask

from peerline.app import create_app
from peerline.service.services import LineServices
from peerline.webhooks import groups
from peerline.webhooks.groups import CANCELLED, Listing, Occasion, upcoming_meetings
from tests.support import lines
from tests.support.line import load_line_file, make_line, make_settings

TORONTO = ZoneInfo("America/Toronto")
LINE_FILE = f"""\
timezone: America/Toronto
{lines.DEMO_GROUPS}    cancelled: ["2026-03-13"]
  - name: "Evening circle <for everyone>"
    days: [wed]
    start: "19:30"
    minutes: 90
    join: "Text GROUPS to the line for the phone number"
"""
ONLINE = "Online peer support group"
EVENING = "Evening circle <for everyone>"


@pytest.fixture
def line(tmp_path: Path) -> Iterator[LineServices]:
    redis = FakeRedis(server=FakeServer())
    line = make_line(make_settings(tmp_path), redis)
    load_line_file(line, LINE_FILE)
    yield line
    line.db.engine.dispose()
    redis.close()


@pytest.fixture
def app(line: LineServices) -> Flask:
    app = create_app(line=line)
    if "groups" not in app.blueprints:
        # Until peerline/app.py registers it.
        app.register_blueprint(groups.bp)
    return app


def at(day: str, clock: str = "12:00") -> datetime:
    """Return a moment in Toronto, in UTC as the clock hands it out."""
    moment = datetime.combine(date.fromisoformat(day), time.fromisoformat(clock), tzinfo=TORONTO)
    return moment.astimezone(UTC)


def listings(line: LineServices, now: datetime, weeks: int) -> dict[str, Listing]:
    with line.db.session() as session:
        return {one.name: one for one in upcoming_meetings(session, TORONTO, now, weeks)}


def by_date(listing: Listing) -> dict[date, Occasion]:
    found = {o.starts.date(): o for o in listing.occasions}
    assert len(found) == len(listing.occasions), "one occasion a date: held or skipped"
    return found


class TestSchedule:
    def test_family_day_is_skipped_and_named(self, line: LineServices) -> None:
        online = listings(line, at("2026-02-10"), 2)[ONLINE]
        days = by_date(online)
        assert sorted(days) == [
            date(2026, 2, 13),
            date(2026, 2, 16),
            date(2026, 2, 20),
            date(2026, 2, 23),
        ]
        assert days[date(2026, 2, 16)].skipped == "Family Day"
        assert all(days[d].skipped is None for d in days if d != date(2026, 2, 16))

    def test_good_friday_and_a_cancellation_are_skipped(self, line: LineServices) -> None:
        days = by_date(listings(line, at("2026-03-09", "14:00"), 4)[ONLINE])
        assert days[date(2026, 3, 13)].skipped == CANCELLED
        assert days[date(2026, 4, 3)].skipped == "Good Friday"
        # The Monday of that week already passed at 14:00 on the 9th.
        assert date(2026, 3, 9) not in days
        assert days[date(2026, 3, 16)].skipped is None

    def test_christmas_and_new_year_are_skipped(self, line: LineServices) -> None:
        days = by_date(listings(line, at("2026-12-20"), 2)[ONLINE])
        assert days[date(2026, 12, 21)].skipped is None
        assert days[date(2026, 12, 25)].skipped == "Christmas Day"
        assert days[date(2026, 12, 28)].skipped == "Boxing Day (observed)"
        assert days[date(2027, 1, 1)].skipped == "New Year's Day"

    def test_a_group_without_a_holiday_calendar_meets_on_holidays(self, line: LineServices) -> None:
        # Canada Day 2026 is a Wednesday.
        days = by_date(listings(line, at("2026-06-29"), 1)[EVENING])
        assert days[date(2026, 7, 1)].skipped is None

    @pytest.mark.parametrize(
        ("now", "before", "after"),
        [
            ("2026-03-01", date(2026, 3, 6), date(2026, 3, 9)),
            ("2026-10-25", date(2026, 10, 30), date(2026, 11, 2)),
        ],
    )
    def test_local_time_holds_across_daylight_saving(
        self, line: LineServices, now: str, before: date, after: date
    ) -> None:
        days = by_date(listings(line, at(now), 2)[ONLINE])
        for day in (before, after):
            assert days[day].starts.time() == time(13, 0)
            assert days[day].ends.time() == time(14, 0)
        utc_hours = {day: days[day].starts.astimezone(UTC).hour for day in (before, after)}
        # Spring forward: 18:00 UTC (EST) becomes 17:00 (EDT); fall back is the reverse.
        assert abs(utc_hours[before] - utc_hours[after]) == 1
        assert {days[before].starts.strftime("%Z"), days[after].starts.strftime("%Z")} == {
            "EST",
            "EDT",
        }

    def test_weeks_are_bounded(self, line: LineServices) -> None:
        online = listings(line, at("2026-05-01"), 52)[ONLINE]
        assert online.occasions[-1].starts < at("2026-05-01") + timedelta(weeks=12)
        assert len(online.occasions) == 24


class TestPage:
    def test_page_lists_meetings_with_notes(
        self, app: Flask, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(groups, "utcnow", lambda: at("2026-02-10"))
        response = app.test_client().get("/groups")
        assert response.status_code == 200
        assert response.mimetype == "text/html"
        # Compare text with runs of whitespace as one space: the template's layout may change.
        html = " ".join(response.get_data(as_text=True).split())
        assert '<html lang="en">' in html
        assert 'name="viewport"' in html
        assert "Online peer support group" in html
        assert "Every Monday and Friday at 1:00 PM, for 1 hour." in html
        assert "Every Wednesday at 7:30 PM, for 1 hour 30 minutes." in html
        assert "Friday, February 13, 2026, 1:00 PM</time> to" in html
        assert re.search(
            r"Monday, February 16, 2026</time></span>\s*<span class=\"note\">"
            r"No meeting: Family Day \(public holiday\)",
            html,
        )
        assert '<a href="https://example.org/groups">' in html
        assert "All times are Toronto time." in html
        assert ">EST</abbr>" in html
        assert "Text GROUPS to the line for the phone number" in html
        assert "call or text 988" in html
        # Names come from a coordinator's file: escaped, never markup.
        assert "Evening circle &lt;for everyone&gt;" in html
        assert 'href="/groups.ics"' in html

    def test_page_has_no_external_assets(self, app: Flask) -> None:
        html = app.test_client().get("/groups").get_data(as_text=True)
        assert "<script" not in html
        assert "<link" not in html
        assert " src=" not in html
        assert "@import" not in html

    def test_a_cancelled_meeting_is_noted(
        self, app: Flask, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(groups, "utcnow", lambda: at("2026-03-10"))
        html = " ".join(app.test_client().get("/groups").get_data(as_text=True).split())
        assert re.search(
            r"Friday, March 13, 2026</time></span>\s*<span class=\"note\">"
            r"No meeting: cancelled",
            html,
        )
        assert ">EDT</abbr>" in html

    def test_page_without_groups(self, tmp_path: Path) -> None:
        redis = FakeRedis(server=FakeServer())
        line = make_line(make_settings(tmp_path), redis)
        try:
            app = create_app(line=line)
            if "groups" not in app.blueprints:
                app.register_blueprint(groups.bp)
            client = app.test_client()
            assert "no group meetings scheduled" in client.get("/groups").get_data(as_text=True)
            feed = icalendar.Calendar.from_ical(client.get("/groups.ics").data)
            assert feed.walk("VEVENT") == []
        finally:
            line.db.engine.dispose()
            redis.close()


class TestCalendarFile:
    def fetch(
        self, app: Flask, monkeypatch: pytest.MonkeyPatch, now: datetime
    ) -> icalendar.Calendar:
        monkeypatch.setattr(groups, "utcnow", lambda: now)
        response = app.test_client().get("/groups.ics")
        assert response.status_code == 200
        assert response.mimetype == "text/calendar"
        return icalendar.Calendar.from_ical(response.data)

    def test_events_skip_holidays_and_cancellations(
        self, app: Flask, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        feed = self.fetch(app, monkeypatch, at("2026-02-01"))
        assert [tz["TZID"] for tz in feed.walk("VTIMEZONE")] == ["America/Toronto"]
        events = [e for e in feed.walk("VEVENT") if str(e["SUMMARY"]) == ONLINE]
        starts = [e.decoded("DTSTART") for e in events]
        days = {s.date() for s in starts}
        # Twelve weeks from February 1: 24 Mondays and Fridays less Family Day, March 13 and
        # Good Friday.
        assert len(events) == 21
        assert date(2026, 2, 16) not in days
        assert date(2026, 3, 13) not in days
        assert {date(2026, 2, 13), date(2026, 3, 9), date(2026, 4, 20)} <= days
        for event, start in zip(events, starts, strict=True):
            assert event["DTSTART"].params["TZID"] == "America/Toronto"
            assert start.tzinfo is not None and start.time() == time(13, 0)
            assert event.decoded("DTEND") - start == timedelta(hours=1)
            assert str(event["URL"]) == "https://example.org/groups"
        # Spring forward on March 8 moves the meetings in UTC, not in Toronto.
        utc = {s.date(): s.astimezone(UTC).hour for s in starts}
        assert utc[date(2026, 3, 6)] == 18 and utc[date(2026, 3, 9)] == 17

    def test_good_friday_and_christmas_are_left_out(
        self, app: Flask, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        spring = self.fetch(app, monkeypatch, at("2026-03-20"))
        winter = self.fetch(app, monkeypatch, at("2026-12-01"))
        days = {e.decoded("DTSTART").date() for f in (spring, winter) for e in f.walk("VEVENT")}
        assert date(2026, 4, 3) not in days
        assert date(2026, 12, 25) not in days and date(2027, 1, 1) not in days
        assert date(2026, 12, 21) in days and date(2026, 12, 23) in days

    def test_uids_are_stable_per_group_and_date(
        self, app: Flask, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        first = self.fetch(app, monkeypatch, at("2026-02-01"))
        later = self.fetch(app, monkeypatch, at("2026-02-20", "08:00"))
        uid_of = {
            (str(e["SUMMARY"]), e.decoded("DTSTART").date()): str(e["UID"])
            for f in (first, later)
            for e in f.walk("VEVENT")
        }
        uids = [str(e["UID"]) for e in first.walk("VEVENT")]
        assert len(uids) == len(set(uids))
        for event in later.walk("VEVENT"):
            key = (str(event["SUMMARY"]), event.decoded("DTSTART").date())
            assert str(event["UID"]) == uid_of[key]
        assert all(re.fullmatch(r"group-[0-9a-f]{16}-\d{8}@localhost", uid) for uid in uids)
