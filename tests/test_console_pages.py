"""The blocklist, call-backs, groups and alert pages, and the fixes coordinators asked for."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import holidays
import pytest
from fakeredis import FakeRedis
from flask import Flask
from markupsafe import escape
from sqlalchemy import select

from peerline.console.audit_words import WORDS, in_words
from peerline.service import routing
from peerline.service.availability import load_line_rotas
from peerline.service.models import Alert, Block, Group, Supporter, TimeOff, utcnow
from peerline.service.retention import purge
from peerline.service.services import LineServices
from peerline.service.voice.models import CallbackRequest
from peerline.service.voice.recordings import RecordingUnavailable, media_url
from tests.support.console import Console, audit_entries, signed_in
from tests.support.console_pages import (
    AUDIO,
    add_block_review,
    add_callback,
    recording_url,
    recordings_provider,
)
from tests.support.line import load_line_file, make_line, make_settings
from tests.support.seed import (
    EMAIL,
    ConversationSpec,
    add_alert,
    add_conversation,
    add_coordinator,
)

LISTENER_NOT = "nolisten@example.org"


@pytest.fixture
def line(tmp_path: Path) -> Iterator[LineServices]:
    """Return a line on SQLite with the demo rota, an admin and a coordinator without
    the transcript permission."""
    line = make_line(make_settings(tmp_path), FakeRedis())
    load_line_file(line)
    add_coordinator(line)
    add_coordinator(line, LISTENER_NOT, role="coordinator", transcripts=False)
    yield line
    line.db.engine.dispose()


# -- 5. the root, the audit log's words, the forms -------------------------------------------


def test_the_root_redirects_to_the_console(app: Flask) -> None:
    answer = app.test_client().get("/")
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/console/"


def test_audit_entries_read_as_words(console: Console) -> None:
    page = console.get("/console/audit/").get_data(as_text=True)
    assert "signed in" in page
    assert "<code>sign_in</code>" not in page
    assert in_words("sign_in") == "signed in"
    assert in_words("something_new.done") == "something new: done"
    # Every code the console writes has its words.
    source = "".join(p.read_text() for p in Path("peerline/console").glob("*.py"))
    written = set(re.findall(r'audit\(\s*\w+,\s*"([a-z_.]+)"', source))
    assert written and written <= set(WORDS), written - set(WORDS)


def test_time_fields_are_typed_24_hour_times(console: Console) -> None:
    for path in ("/console/rota/shifts/new", "/console/rota/cover/new", "/console/groups/"):
        page = console.get(path).get_data(as_text=True)
        assert 'type="time"' not in page, path
        assert re.search(r'id="[\w-]*start"[^>]*pattern="\(\[01\]', page) or re.search(
            r'pattern="\(\[01\][^"]*"[^>]*id="[\w-]*start"', page
        ), path
    rosa = supporter(console, "Rosa")
    answer = console.post(
        "/console/rota/shifts/new",
        {"supporter_id": rosa, "days": ["tue"], "start": "7:30 PM", "end": "21:00"},
    )
    assert answer.status_code == 400


def supporter(console: Console, name: str) -> int:
    page = console.get("/console/supporters/").get_data(as_text=True)
    found = re.search(
        rf"/console/supporters/(\d+)/edit\"[^>]*>Edit<span class=\"sr-only\"> {name}", page
    )
    assert found, name
    return int(found.group(1))


def test_the_focus_ring_meets_3_to_1_against_its_backgrounds() -> None:
    light, dark = "", ""
    for sheet in ("palette.css", "console.css"):  # the shared colours, then the console's
        css = Path("peerline/static/console", sheet).read_text()
        sheet_light, sheet_dark = css.split("@media (prefers-color-scheme: dark)", 1)
        light, dark = light + sheet_light, dark + sheet_dark.split("}", 1)[0]

    def colours(block: str) -> dict[str, str]:
        return dict(re.findall(r"--([\w-]+):\s*(#[0-9a-fA-F]{6})", block))

    def luminance(hex_colour: str) -> float:
        def channel(c: int) -> float:
            v = c / 255
            return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

        r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
        return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)

    def contrast(a: str, b: str) -> float:
        hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
        return (hi + 0.05) / (lo + 0.05)

    light_colours = colours(light)
    dark_colours = {**light_colours, **colours(dark)}
    for scheme in (light_colours, dark_colours):
        for background in ("panel", "bg", "accent-soft", "alert-bg", "warn-bg"):
            ratio = contrast(scheme["focus"], scheme[background])
            assert ratio >= 3.0, (background, ratio)


# -- 5. time off, part of a day, takes effect at once ----------------------------------------


@pytest.mark.parametrize(
    "times", [{"from_time": "00:00", "to_time": "00:00"}, {}], ids=["part of a day", "whole day"]
)
def test_time_off_today_takes_the_supporter_off_shift_at_once(
    console: Console, line: LineServices, times: dict[str, str]
) -> None:
    sam = supporter(console, "Sam")
    moment = utcnow()
    with line.db.session() as session:
        assert sam in load_line_rotas(session, "America/Toronto").on_shift(moment)
        tz = line.timezone(session)
    today = moment.astimezone(tz).date()
    answer = console.post(
        "/console/rota/time-off/new",
        {
            "supporter_id": sam,
            "start": today.isoformat(),
            "end": today.isoformat(),
            **times,
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    with line.db.session() as session:
        off = session.scalars(select(TimeOff).where(TimeOff.supporter_id == sam)).one()
        assert (off.start_minute, off.end_minute) == ((0, 24 * 60) if times else (None, None))
        rotas = load_line_rotas(session, "America/Toronto")
        assert sam not in rotas.on_shift(utcnow())
        staff = routing.staffing(
            session, rotas, utcnow(), routing.policy_of(line.settings)
        ).supporters
        assert sam not in staff
    live = console.get("/console/live").get_data(as_text=True)
    assert "Sam" not in live.split('id="shift-h"', 1)[1].split("</section>", 1)[0]
    assert audit_entries(line, "time_off.added")[-1].detail.startswith(today.isoformat())


def test_part_day_time_off_needs_both_times_in_order(console: Console) -> None:
    rosa = supporter(console, "Rosa")
    base = {"supporter_id": rosa, "start": "2026-03-04", "end": "2026-03-04"}
    one = console.post("/console/rota/time-off/new", {**base, "from_time": "10:00"})
    assert one.status_code == 400 and "both times" in one.get_data(as_text=True)
    backwards = console.post(
        "/console/rota/time-off/new", {**base, "from_time": "14:00", "to_time": "10:00"}
    )
    assert backwards.status_code == 400
    fine = console.post(
        "/console/rota/time-off/new", {**base, "from_time": "10:00", "to_time": "14:00"}
    )
    assert fine.status_code == 302
    week = console.get("/console/rota/?week=2026-03-02").get_data(as_text=True)
    assert "2026-03-04 10:00 to 14:00" in week


# -- 3. the blocklist ------------------------------------------------------------------------


def test_a_coordinator_blocks_a_typed_number_as_the_cli_stores_it(
    app: Flask, line: LineServices
) -> None:
    console = signed_in(app, LISTENER_NOT)
    console.get("/console/blocklist/")
    answer = console.post(
        "/console/blocklist/", {"number": "(416) 555-0199", "reason": "Abusive texts, twice"}
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    with line.db.session() as session:
        block = session.scalars(select(Block)).one()
        assert block.phone_hash == line.vault.lookup_hash("+14165550199")
        assert (block.status, block.created_by) == ("active", LISTENER_NOT)
    entry = audit_entries(line, "block.added")[-1]
    assert "0199" not in entry.subject and "+1416" not in entry.detail
    page = console.get("/console/blocklist/").get_data(as_text=True)
    assert "Abusive texts, twice" in page and "5550199" not in page


def test_a_number_that_is_not_one_is_refused_clearly(console: Console, line: LineServices) -> None:
    console.get("/console/blocklist/")
    answer = console.post(
        "/console/blocklist/", {"number": "not a number", "reason": "Abusive texts, twice"}
    )
    assert answer.status_code == 400
    assert "not a phone number" in answer.get_data(as_text=True)
    short = console.post("/console/blocklist/", {"number": "+14165550199", "reason": "x"})
    assert short.status_code == 400
    with line.db.session() as session:
        assert session.scalars(select(Block)).all() == []


def decided(line: LineServices, kept: tuple[int, int], lifted: tuple[int, int]) -> None:
    """Check one block (block id, alert id) was upheld and one lifted, each alert resolved
    by the coordinator with the decision as its encrypted outcome."""
    with line.db.session() as session:
        assert session.get(Block, kept[0]).status == "active"  # type: ignore[union-attr]
        assert session.get(Block, lifted[0]) is None
        for alert_id, words in ((kept[1], "upheld"), (lifted[1], "lifted")):
            alert = session.get(Alert, alert_id)
            assert alert is not None and alert.resolved_by == EMAIL
            assert alert.outcome_enc and words not in alert.outcome_enc
            assert words in line.vault.decrypt(alert.outcome_enc)


def test_a_block_review_is_upheld_or_lifted(console: Console, line: LineServices) -> None:
    kept, kept_alert, kept_alias = add_block_review(line)
    lifted, lifted_alert, _ = add_block_review(line)
    page = console.get("/console/blocklist/").get_data(as_text=True)
    assert "2 to review" in page and kept_alias in page
    too_short = console.post(f"/console/blocklist/{kept}/uphold", {"reason": "no"})
    assert too_short.status_code == 400
    assert (
        console.post(
            f"/console/blocklist/{kept}/uphold", {"reason": "Threats to the supporter"}
        ).status_code
        == 302
    )
    assert (
        console.post(
            f"/console/blocklist/{lifted}/lift", {"reason": "Supporter misread the texter"}
        ).status_code
        == 302
    )
    decided(line, (kept, kept_alert), (lifted, lifted_alert))
    assert "Threats to the supporter" in audit_entries(line, "block.upheld")[-1].detail
    assert "#block by Rosa; lifted:" in audit_entries(line, "block.lifted")[-1].detail
    assert (
        console.post("/console/blocklist/99999/lift", {"reason": "a good reason"}).status_code
        == 404
    )


# -- 3. call-backs and voicemails ------------------------------------------------------------


def test_call_backs_show_who_took_them_and_whether_done(
    console: Console, line: LineServices
) -> None:
    waiting = add_callback(line, "VM-1111")
    taken = add_callback(line, "VM-2222", supporter="Alex", status="calling")
    page = console.get("/console/callbacks/").get_data(as_text=True)
    assert "VM-1111" in page and "waiting" in page
    row = page.split('data-reference="VM-2222"', 1)[1].split("</tr>", 1)[0]
    assert "Alex" in row and "being called back" in row
    assert console.post(f"/console/callbacks/{taken}/done").status_code == 302
    with line.db.session() as session:
        done = session.get(CallbackRequest, taken)
        assert done is not None and done.status == "done" and done.completed_at is not None
        assert session.get(CallbackRequest, waiting).status == "open"  # type: ignore[union-attr]
    assert audit_entries(line, "callback.done")[-1].subject == "call-back VM-2222"
    assert console.post(f"/console/callbacks/{taken}/done?open=1").status_code == 302
    with line.db.session() as session:
        assert session.get(CallbackRequest, taken).status == "open"  # type: ignore[union-attr]


def test_a_recording_plays_only_for_those_allowed_each_play_audited(
    app: Flask, line: LineServices
) -> None:
    url = recording_url(7)
    request_id = add_callback(line, "VM-7777", recording=url)
    settings = line.settings
    with recordings_provider(settings.twilio_account_sid, settings.twilio_auth_token) as seen:
        line.settings = settings.with_changes(twilio_api_base_url=seen.base_url)
        # A coordinator without the transcript permission sees no Play and cannot play.
        other = signed_in(app, LISTENER_NOT)
        page = other.get("/console/callbacks/").get_data(as_text=True)
        assert "VM-7777" in page and "Play" not in page and "not allowed" in page
        assert other.post(f"/console/callbacks/{request_id}/listen").status_code == 403
        assert other.get(f"/console/callbacks/{request_id}/recording").status_code == 403
        # Allowed, but not yet pressed Play: nothing streams.
        allowed = signed_in(app)
        allowed.get("/console/callbacks/")
        assert allowed.get(f"/console/callbacks/{request_id}/recording").status_code == 403
        assert not audit_entries(line, "voicemail.listen")
        played = allowed.post(f"/console/callbacks/{request_id}/listen")
        assert played.status_code == 302
        page = allowed.get(played.headers["Location"]).get_data(as_text=True)
        assert "<audio" in page and "twilio.com" not in page and seen.base_url not in page
        # The raw client: the console helper reads every answer as a page for its form token.
        audio = allowed.client.get(
            f"/console/callbacks/{request_id}/recording",
            environ_base={"REMOTE_ADDR": allowed.address},
        )
        assert audio.status_code == 200 and audio.mimetype == "audio/mpeg"
        assert audio.get_data() == AUDIO
        assert audio.headers["Cache-Control"] == "no-store"
        assert seen.paths == [url.split("twilio.com", 1)[1] + ".mp3"] and seen.refused == 0
        listens = audit_entries(line, "voicemail.listen")
        assert [(e.actor, e.detail) for e in listens] == [(EMAIL, "VM-7777")]
        # A provider that is away is a clear 502, not a 500.
        line.settings = settings.with_changes(twilio_api_base_url="http://127.0.0.1:9")
        gone = allowed.client.get(
            f"/console/callbacks/{request_id}/recording",
            environ_base={"REMOTE_ADDR": allowed.address},
        )
        assert gone.status_code == 502
    line.settings = settings


def test_a_recording_answers_byte_ranges_for_seeking_audited_once_per_play(
    app: Flask, line: LineServices
) -> None:
    request_id = add_callback(line, "VM-7778", recording=recording_url(8))
    settings = line.settings
    path = f"/console/callbacks/{request_id}/recording"
    with recordings_provider(settings.twilio_account_sid, settings.twilio_auth_token) as seen:
        line.settings = settings.with_changes(twilio_api_base_url=seen.base_url)
        other = signed_in(app, LISTENER_NOT)
        other.get("/console/callbacks/")
        ranged = {"Range": "bytes=0-3"}
        refused = other.client.get(
            path, headers=ranged, environ_base={"REMOTE_ADDR": other.address}
        )
        assert refused.status_code == 403  # a range is no way round the permission
        allowed = signed_in(app)
        allowed.get("/console/callbacks/")
        assert allowed.post(f"/console/callbacks/{request_id}/listen").status_code == 302

        def fetch(**headers: str) -> Any:
            return allowed.client.get(
                path, headers=headers, environ_base={"REMOTE_ADDR": allowed.address}
            )

        full = fetch()
        assert full.status_code == 200 and full.headers["Accept-Ranges"] == "bytes"
        assert full.get_data() == AUDIO
        size = len(AUDIO)
        head = fetch(Range="bytes=0-3")
        assert head.status_code == 206 and head.get_data() == AUDIO[:4]
        assert head.headers["Content-Range"] == f"bytes 0-3/{size}"
        assert head.mimetype == "audio/mpeg" and head.headers["Cache-Control"] == "no-store"
        tail = fetch(Range="bytes=5-")
        assert tail.status_code == 206 and tail.get_data() == AUDIO[5:]
        assert tail.headers["Content-Range"] == f"bytes 5-{size - 1}/{size}"
        last = fetch(Range="bytes=-2")
        assert last.status_code == 206 and last.get_data() == AUDIO[-2:]
        assert fetch(Range=f"bytes={size + 10}-").status_code == 416
        assert fetch(Range="bytes=banana").status_code == 200  # unreadable: the whole file
        # The grant lives on the server, for this session only: another sign-in of the same
        # account has pressed no Play, and the cookie carries no grant.
        assert len(line.redis.keys("peerline:recording-grant:*")) == 1
        again = signed_in(app)
        again.get("/console/callbacks/")
        assert (
            again.client.get(
                path, headers=ranged, environ_base={"REMOTE_ADDR": again.address}
            ).status_code
            == 403
        )
        # One play, however many ranges the player asked for.
        listens = audit_entries(line, "voicemail.listen")
        assert [(e.actor, e.detail) for e in listens] == [(EMAIL, "VM-7778")]
    line.settings = settings


def test_only_twilio_recording_addresses_are_fetched() -> None:
    good = recording_url(3)
    assert media_url(good, None) == good + ".mp3"
    assert media_url(good, "http://fake:1").startswith("http://fake:1/2010-04-01/Accounts/")
    for bad in (
        "https://evil.example/2010-04-01/Accounts/AC/Recordings/RE1",
        "https://api.twilio.com.evil.example/x",
        good.replace("Recordings", "Messages"),
        good + "/../../Calls",
    ):
        with pytest.raises(RecordingUnavailable):
            media_url(bad, None)


# -- 3. groups and holidays ------------------------------------------------------------------


def group_id(line: LineServices, name: str = "Online peer support group") -> int:
    with line.db.session() as session:
        found = session.scalar(select(Group.id).where(Group.name == name))
        assert found is not None
        return found


def cancel_date(console: Console, line: LineServices, gid: int, day: date) -> str:
    """Cancel a group's meeting on a date through the page; return its cancelled dates."""
    answer = console.post(
        f"/console/groups/{gid}/cancel",
        {f"c{gid}-csrf_token": console.token, f"c{gid}-day": day.isoformat()},
    )
    assert answer.status_code == 302
    with line.db.session() as session:
        group = session.get(Group, gid)
        assert group is not None
        return group.cancelled


def test_a_coordinator_edits_a_group_and_cancels_a_date(
    console: Console, line: LineServices
) -> None:
    gid = group_id(line)
    page = console.get("/console/groups/").get_data(as_text=True)
    assert "Next meetings" in page and "peerline export" in page
    answer = console.post(
        f"/console/groups/{gid}",
        {
            f"g{gid}-csrf_token": console.token,
            f"g{gid}-name": "Online peer support group",
            f"g{gid}-days": ["tue", "thu"],
            f"g{gid}-start": "18:30",
            f"g{gid}-minutes": "90",
            f"g{gid}-skip_holidays": "ca-on",
            f"g{gid}-join": "https://example.org/join",
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    with line.db.session() as session:
        group = session.get(Group, gid)
        assert group is not None
        assert (group.days, group.start_minute, group.minutes) == ("tue,thu", 18 * 60 + 30, 90)
        assert group.skip_holidays == "CA-ON"
        tz = line.timezone(session)
    # Cancel the next Tuesday: it shows as cancelled among the next meetings.
    today = utcnow().astimezone(tz).date()
    tuesday = today + timedelta(days=(1 - today.weekday()) % 7 or 7)
    console.get("/console/groups/")
    assert cancel_date(console, line, gid, tuesday) == tuesday.isoformat()
    page = console.get("/console/groups/").get_data(as_text=True)
    assert re.search(rf'<span class="cancelled"><time datetime="{tuesday.isoformat()}', page)
    public = console.get("/groups").get_data(as_text=True)
    assert "cancelled" in public.split("<footer", 1)[0]
    # A date the group does not meet on is refused; restoring puts the meeting back.
    monday = tuesday - timedelta(days=1)
    assert cancel_date(console, line, gid, monday) == tuesday.isoformat()
    restored = console.post(f"/console/groups/{gid}/restore?day={tuesday.isoformat()}")
    assert restored.status_code == 302, restored.headers
    with line.db.session() as session:
        assert session.get(Group, gid).cancelled == ""  # type: ignore[union-attr]
    words = [e.action for e in audit_entries(line, "group.edited")] + [
        e.detail for e in audit_entries(line, "group.cancelled")
    ]
    assert words == ["group.edited", tuesday.isoformat()]


def test_a_bad_group_form_is_a_400_that_says_why(console: Console, line: LineServices) -> None:
    gid = group_id(line)
    console.get("/console/groups/")
    answer = console.post(
        f"/console/groups/{gid}",
        {
            f"g{gid}-csrf_token": console.token,
            f"g{gid}-name": "Online peer support group",
            f"g{gid}-days": ["tue"],
            f"g{gid}-start": "25:99",
            f"g{gid}-minutes": "60",
            f"g{gid}-skip_holidays": "XX-YY",
        },
    )
    assert answer.status_code == 400
    text = answer.get_data(as_text=True)
    assert "There is a problem" in text
    added = console.post(
        "/console/groups/",
        {
            "new-csrf_token": console.token,
            "new-name": "Evening circle",
            "new-days": ["wed"],
            "new-start": "19:00",
            "new-minutes": "60",
        },
    )
    assert added.status_code == 302
    assert group_id(line, "Evening circle")


# -- 4. alerts you can act on ----------------------------------------------------------------


def test_an_alert_links_to_its_conversation_and_keeps_an_outcome(
    console: Console, line: LineServices
) -> None:
    conversation = add_conversation(line, ConversationSpec(created_at=utcnow()))
    alert = add_alert(line, "crisis", "Crisis language in a chat", conversation)
    live = console.get("/console/live").get_data(as_text=True)
    assert f'href="/console/conversations/{conversation}"' in live
    # The conversation page asks for a reason before the transcript opens (and audits it).
    assert "Why do you need to read this conversation?" in console.get(
        f"/console/conversations/{conversation}"
    ).get_data(as_text=True)
    answer = console.post(
        f"/console/alerts/{alert}/resolve", {"outcome": "Called the texter back; they are safe"}
    )
    assert answer.status_code == 302
    with line.db.session() as session:
        row = session.get(Alert, alert)
        assert row is not None and row.resolved_by == EMAIL and row.resolved_at is not None
        assert row.outcome_enc and "safe" not in row.outcome_enc
    entry = audit_entries(line, "alert.resolved")[-1]
    assert "safe" not in entry.detail and "with a note" in entry.detail
    live = console.get("/console/live").get_data(as_text=True)
    resolved = live.split('data-testid="resolved-alerts"', 1)[1]
    assert f"resolved by {EMAIL}" in resolved
    assert "Called the texter back; they are safe" in resolved
    too_long = console.post(f"/console/alerts/{alert}/resolve", {"outcome": "x" * 501})
    assert too_long.status_code == 400


def test_a_block_review_alert_points_to_the_blocklist(console: Console, line: LineServices) -> None:
    add_block_review(line)
    live = console.get("/console/live").get_data(as_text=True)
    assert 'href="/console/blocklist/"' in live


def test_resolving_a_block_review_alert_on_the_dashboard_decides_the_block(
    console: Console, line: LineServices
) -> None:
    kept, kept_alert, _ = add_block_review(line)
    lifted, lifted_alert, _ = add_block_review(line)
    live = console.get("/console/live").get_data(as_text=True)
    # The alert offers the decision itself, not a "Resolve" that would leave it waiting.
    assert f'data-testid="block-review-{kept_alert}"' in live
    assert 'value="uphold"' in live and 'value="lift"' in live
    resolve = f"/console/alerts/{kept_alert}/resolve"
    assert console.post(resolve, {"outcome": "Threats, kept"}).status_code == 400  # no decision
    assert console.post(resolve, {"outcome": "no", "decision": "uphold"}).status_code == 400
    with line.db.session() as session:
        assert session.get(Alert, kept_alert).resolved_at is None  # type: ignore[union-attr]
    reason = "Threats to the supporter, kept"
    assert console.post(resolve, {"outcome": reason, "decision": "uphold"}).status_code == 302
    lift = {"outcome": "Supporter misread the texter", "decision": "lift"}
    assert console.post(f"/console/alerts/{lifted_alert}/resolve", lift).status_code == 302
    decided(line, (kept, kept_alert), (lifted, lifted_alert))
    assert reason in audit_entries(line, "block.upheld")[-1].detail
    assert "Supporter misread the texter" in audit_entries(line, "block.lifted")[-1].detail
    page = console.get("/console/blocklist/").get_data(as_text=True)
    assert "to review" not in page


def test_the_navigation_lists_the_new_pages(console: Console) -> None:
    page = console.get("/console/").get_data(as_text=True)
    nav = page.split('aria-label="Console"', 1)[1].split("</nav>", 1)[0]
    for label in ("Call-backs", "Groups", "Blocklist", "Crisis review", "Audit log"):
        assert f">{label}</a>" in nav
    assert nav.count('class="group-start"') == 3
    assert 'aria-label="Your account"' in page and ">Accounts</a>" in page


def test_whole_day_time_off_keeps_its_meaning(line: LineServices) -> None:
    # Whole days stop the shifts starting on them, as before (tests/test_rota.py covers more).
    with line.db.session() as session:
        alex = session.scalars(select(Supporter).where(Supporter.name == "Alex")).one()
        assert [(t.start_date, t.start_minute) for t in alex.time_off] == [
            (date(2026, 12, 24), None)
        ]


def test_an_alert_outcome_goes_with_the_transcript_at_retention(
    console: Console, line: LineServices
) -> None:
    long_ago = utcnow() - timedelta(days=400)
    conversation = add_conversation(line, ConversationSpec(created_at=long_ago, wait=30))
    alert = add_alert(line, "crisis", "Crisis language in a chat", conversation)
    console.post(f"/console/alerts/{alert}/resolve", {"outcome": "Spoke with their sister"})
    with line.db.session() as session:
        assert session.get(Alert, alert).outcome_enc  # type: ignore[union-attr]
        assert purge(session, utcnow(), line.settings.retention_days) >= 1
    with line.db.session() as session:
        row = session.get(Alert, alert)
        assert row is not None and row.outcome_enc is None and row.resolved_by == EMAIL


def test_the_groups_page_lists_the_public_holidays_ahead(
    console: Console, line: LineServices
) -> None:
    with line.db.session() as session:
        today = utcnow().astimezone(line.timezone(session)).date()
    ontario = holidays.country_holidays("CA", subdiv="ON")
    expected = [
        today + timedelta(days=n) for n in range(56) if today + timedelta(days=n) in ontario
    ]
    page = console.get("/console/groups/").get_data(as_text=True)
    assert "The line's calendar is CA-ON" in page
    for day in expected:
        assert f'<time datetime="{day.isoformat()}">' in page
        assert str(escape(ontario[day].split(";")[0])) in page
    if not expected:
        assert "None in the next eight weeks." in page
