"""The console's side of issue 21: debrief requests to mark done, a supporter's note shown only
with an audited transcript, and the after-chat report figures and CSV columns (counts only)."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from sqlalchemy import select

from peerline.console.record_stats import RecordFacts, build_record_figures
from peerline.service.models import DebriefRequest, Supporter, utcnow
from peerline.service.services import LineServices
from tests.support.console import Console, audit_entries, signed_in
from tests.support.records import chat_with_record
from tests.support.seed import EMAIL, add_coordinator

TZ = ZoneInfo("America/Toronto")
OTHER = "reader@example.org"
WORDS = "she talked about her brother a lot"


@pytest.fixture
def line(demo_line: LineServices) -> LineServices:
    """Return the demo line (Sam, Rosa, Alex) with one admin."""
    add_coordinator(demo_line)
    return demo_line


# -- debrief requests ------------------------------------------------------------------------


def test_debrief_requests_are_listed_and_marked_done_by_whoever_did(
    console: Console, line: LineServices
) -> None:
    ended = datetime(2026, 3, 3, 14, 0, tzinfo=TZ)
    open_one = chat_with_record(line, ended, "Rosa", debrief=True)
    chat_with_record(line, ended - timedelta(days=1), "Sam", debrief=True, done=True)
    page = console.get("/console/debriefs/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert html.count('<a href="/console/debriefs/"') == 1  # one link in the navigation
    assert html.index("Rosa") < html.index("Sam")  # open requests first
    assert f'href="/console/conversations/{open_one}"' in html
    assert "by earlier@example.org" in html and html.count("Mark done") == 1

    with line.db.session() as session:
        request_id = session.scalars(
            select(DebriefRequest.id).where(DebriefRequest.done_at.is_(None))
        ).one()
    # Without the form's token nothing changes.
    assert console.post(f"/console/debriefs/{request_id}/done", token=False).status_code == 400
    assert console.post("/console/debriefs/99999/done").status_code == 404
    done = console.post(f"/console/debriefs/{request_id}/done")
    assert done.status_code == 302
    with line.db.session() as session:
        request = session.get(DebriefRequest, request_id)
        assert request is not None and request.done_at is not None
        assert request.done_by == EMAIL
    assert [e.subject for e in audit_entries(line, "debrief.done")] == [f"debrief {request_id}"]
    html = console.get("/console/debriefs/").get_data(as_text=True)
    assert "Mark done" not in html and f"by {EMAIL}" in html
    # Marking it again changes nothing and writes no second entry.
    console.post(f"/console/debriefs/{request_id}/done")
    assert len(audit_entries(line, "debrief.done")) == 1


def test_the_debrief_page_says_when_there_are_none(console: Console) -> None:
    assert "No debrief requests yet" in console.get("/console/debriefs/").get_data(as_text=True)


# -- notes: only with the transcript, audited ---------------------------------------------------


def test_a_note_is_shown_only_with_an_audited_transcript(
    app: Flask, console: Console, line: LineServices
) -> None:
    ended = datetime(2026, 3, 3, 14, 0, tzinfo=TZ)
    chat = chat_with_record(line, ended, topics="family,grief", score=2, words=WORDS)
    # The conversation's metadata page, the debrief page and the reports never show the words.
    for path in (
        f"/console/conversations/{chat}",
        "/console/debriefs/",
        "/console/reports/?start=2026-03-01&end=2026-03-07",
        "/console/reports/export.csv?start=2026-03-01&end=2026-03-07",
    ):
        assert WORDS not in console.get(path).get_data(as_text=True), path
    console.get(f"/console/conversations/{chat}")
    opened = console.post(
        f"/console/conversations/{chat}/transcript", {"reason": "following up a debrief"}
    )
    html = opened.get_data(as_text=True)
    assert opened.status_code == 200
    assert WORDS in html and "2 of 5" in html and "family, grief" in html
    assert audit_entries(line, "transcript.opened")[-1].detail == "following up a debrief"

    # An account without the transcript permission cannot read it.
    add_coordinator(line, OTHER, role="coordinator", transcripts=False)
    other = signed_in(app, OTHER)
    other.get(f"/console/conversations/{chat}")
    refused = other.post(
        f"/console/conversations/{chat}/transcript", {"reason": "curious about it"}
    )
    assert refused.status_code == 403 and WORDS not in refused.get_data(as_text=True)


# -- reports -------------------------------------------------------------------------------


def test_reports_show_topics_debrief_share_and_load_by_week(
    console: Console, line: LineServices
) -> None:
    monday = datetime(2026, 3, 2, 15, 0, tzinfo=TZ)
    chat_with_record(line, monday, "Sam", topics="lonely,family", score=4, debrief=True)
    chat_with_record(line, monday + timedelta(days=1), "Sam", topics="lonely", referred=True)
    chat_with_record(line, monday + timedelta(days=8), "Rosa", topics="work", words=WORDS)
    chat_with_record(line, monday + timedelta(days=9), "Sam")
    page = console.get("/console/reports/?start=2026-03-02&end=2026-03-15")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'id="chart-topics"' in html
    assert "1 <small>25%</small>" in html  # one chat in four with a debrief
    assert "4.0 <small>of 5</small>" in html
    topics = html[html.index('id="topics-by-week"') :]
    assert '<th scope="row">lonely</th><td>2</td><td>0</td>' in topics
    assert '<th scope="row">work</th><td>0</td><td>1</td>' in topics
    load = html[html.index('id="load-by-week"') :]
    assert '<th scope="row">Sam</th><td>2</td><td>1</td>' in load
    assert '<th scope="row">Rosa</th><td>0</td><td>1</td>' in load

    exported = console.get("/console/reports/export.csv?start=2026-03-02&end=2026-03-15")
    text = exported.get_data(as_text=True)
    assert WORDS not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 14 and rows[0]["date"] == "2026-03-02"
    first = rows[0]
    assert (first["chats_ended"], first["with_debrief"], first["referred"]) == ("1", "1", "0")
    assert (first["topic_lonely"], first["topic_family"], first["topic_grief"]) == ("1", "1", "0")
    assert first["chats_by_Sam"] == "1" and first["chats_by_Rosa"] == "0"
    assert sum(int(r["chats_ended"]) for r in rows) == 4
    assert sum(int(r["referred"]) for r in rows) == 1
    assert sum(int(r["chats_by_Sam"]) for r in rows) == 3
    # Every column is a date or a count: nothing a person wrote.
    counts = [v for r in rows for k, v in r.items() if k != "date"]
    assert all(v == "" or v.replace(".", "", 1).isdigit() for v in counts)


def test_record_figures_count_by_the_local_day_and_week() -> None:
    late = datetime(2026, 3, 9, 3, 30, tzinfo=ZoneInfo("UTC"))  # Sunday 23:30 in Toronto (EDT)
    facts = [
        RecordFacts(late, "Sam", "grief", True, False, 3),
        RecordFacts(late + timedelta(hours=1), "Sam", "", False, True, None),  # Monday
        RecordFacts(None, "Sam", "grief", False, False, None),  # not ended: not counted
        RecordFacts(late + timedelta(days=30), "Sam", "grief", False, False, None),  # outside
    ]
    first = datetime(2026, 3, 2).date()
    figures = build_record_figures(facts, TZ, first, first + timedelta(days=13), ("grief",))
    assert figures.weeks == [first, first + timedelta(days=7)]
    assert figures.load_by_week() == {"Sam": [1, 1]}
    assert figures.topics_by_week() == {"grief": [1, 0]}
    assert figures.debrief_share == 0.5 and figures.score_average == 3


def test_the_dashboard_says_why_a_resting_supporter_is_not_free(
    console: Console, line: LineServices
) -> None:
    with line.db.session() as session:
        sam = session.scalars(select(Supporter).where(Supporter.name == "Sam")).one()
        sam.paused_until = utcnow() + timedelta(minutes=4)
    html = console.get("/console/").get_data(as_text=True)
    assert "resting after a crisis chat" in html
