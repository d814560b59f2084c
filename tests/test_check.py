"""`peerline check`: the live chats the senders carry, against the rota's peak, on PostgreSQL."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fakeredis import FakeRedis

from peerline.cli import main
from peerline.service import capacity
from peerline.service.availability import load_line_rotas
from peerline.service.settings import from_env
from tests.support.line import load_line_file, make_line, make_settings
from tests.support.servers import PostgresServer

ALL_WEEK = "[mon, tue, wed, thu, fri, sat, sun]"


def rota(supporters: int, *, chats: int = 1, evening_only: int = 0) -> str:
    """Return a line file: `supporters` on shift all week, and some only from 18:00 to 22:00."""
    people = []
    for n in range(supporters + evening_only):
        hours = '"18:00", end: "22:00"' if n >= supporters else '"00:00", end: "24:00"'
        people.append(
            f"""  - name: Peer{n}
    phone: "+1416555{n:04d}"
    capacity: {chats}
    shifts:
      - {{days: {ALL_WEEK}, start: {hours}}}
"""
        )
    return "timezone: America/Toronto\nsupporters:\n" + "".join(people)


def run_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, *args: str, **env: str
) -> Result:
    for name, value in {"DATABASE_URL": url, "PEERLINE_INSTANCE": str(tmp_path), **env}.items():
        monkeypatch.setenv(name, value)
    return CliRunner().invoke(main, ["check", *args])


def deploy(tmp_path: Path, postgres: PostgresServer, text: str, **env: str) -> str:
    url = postgres.create_database()
    line = make_line(make_settings(tmp_path, DATABASE_URL=url, **env), FakeRedis())
    load_line_file(line, text)
    line.db.engine.dispose()
    return url


def test_one_long_code_carries_eight_chats_and_three_supporters_fit(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1 segment/s shared by both sides, a text each way per 20 s, 20% kept: 8 chats."""
    url = deploy(tmp_path, postgres_server, rota(3))
    result = run_check(tmp_path, monkeypatch, url)
    assert result.exit_code == 0, result.output
    assert "carry 8 live chats" in result.output
    assert "3 supporters on shift holding up to 3 chats" in result.output
    assert "OK: the senders carry the rota's peak." in result.output


def test_a_rota_planning_more_than_the_senders_carry_is_warned(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six all week and six more in the evening: the evening's 12 chats are over 8."""
    url = deploy(tmp_path, postgres_server, rota(6, evening_only=6))
    result = run_check(tmp_path, monkeypatch, url)
    assert result.exit_code == 1
    assert "12 supporters on shift holding up to 12 chats, from" in result.output
    # The peak is the evening's, told in the line's time.
    when = re.search(r"from \w+ \d{4}-\d\d-\d\d (\d\d):(\d\d) E[SD]T", result.output)
    assert when is not None and 18 <= int(when[1]) < 22, result.output
    assert "WARNING: the rota plans 12 chats at once but the senders carry 8" in result.output


def test_relay_numbers_carry_the_supporters_side_and_let_each_hold_more_chats(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A toll-free line number (3/s) and two relays: each side has its own budget."""
    relays = "+14165559001,+14165559002"
    url = deploy(tmp_path, postgres_server, rota(4, chats=3), TWILIO_RELAY_NUMBERS=relays)
    env = {
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "token",
        "TWILIO_PHONE_NUMBER": "+18005550100",
        "TWILIO_RELAY_NUMBERS": relays,
    }
    result = run_check(tmp_path, monkeypatch, url, "--pace", "30", **env)
    # Texters' side: 3/s x 0.8 x 30 s = 72; supporters' side: 2 x 1/s x 0.8 x 30 s = 48.
    assert "carry 48 live chats" in result.output, result.output
    # Each supporter holds at most as many chats as there are relay numbers: 4 x 2.
    assert "4 supporters on shift holding up to 8 chats" in result.output
    assert result.exit_code == 0


def test_the_peak_is_read_across_a_change_of_the_clocks(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """Across the night the clocks go back in Toronto, the evening shift is found at 18:00."""
    url = deploy(tmp_path, postgres_server, rota(1, evening_only=2))
    settings = from_env({"DATABASE_URL": url, "PEERLINE_INSTANCE": str(tmp_path)})
    line = make_line(settings, FakeRedis())
    with line.db.session() as session:
        rotas = load_line_rotas(session, settings.line_timezone)
        start = datetime(2026, 10, 31, 12, 0, tzinfo=UTC)  # clocks go back on 1 November
        peak = capacity.planned_peak(session, rotas, (), start, days=2)
        after = datetime(2026, 11, 1, 23, 0, tzinfo=UTC)  # 18:00 EST, the day after
        on_after = len(rotas.on_shift(after)), len(rotas.on_shift(after - timedelta(hours=1)))
    line.db.engine.dispose()
    assert (peak.chats, peak.supporters) == (3, 3)
    assert peak.at == datetime(2026, 10, 31, 22, 0, tzinfo=UTC)  # 18:00 EDT
    assert on_after == (3, 1)  # 18:00 EST all three; 17:00 EST only the all-day one


def test_bad_options_get_a_clear_answer(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = deploy(tmp_path, postgres_server, rota(1))
    result = run_check(tmp_path, monkeypatch, url, "--pace", "0")
    assert result.exit_code != 0
    assert "--pace and --segments must be above 0" in result.output


def test_a_messaging_service_carries_the_texters_side_at_its_combined_rate(
    tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A service of five long codes (5 segments/s): no relays, so both sides share it."""
    url = deploy(tmp_path, postgres_server, rota(12))
    env = {
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "token",
        "TWILIO_PHONE_NUMBER": "+14165550100",
        "TWILIO_MESSAGING_SERVICE_SID": "MG" + "1" * 32,
        "PEERLINE_SERVICE_RATE": "5",
    }
    result = run_check(tmp_path, monkeypatch, url, **env)
    # 5/s x 0.8 x 20 s / 2 sides = 40 chats; the rota's 12 fit.
    assert "service" in result.output and "5/s" in result.output
    assert "carry 40 live chats" in result.output, result.output
    assert result.exit_code == 0
