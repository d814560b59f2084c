"""3. Matching at scale: one matching round with 10 to 10,000 supporters and up to 100,000 waiting.

The line is busy, as it is whenever texters wait: every supporter on shift holds a chat (their
capacity, without relay numbers) except one, who has just become free. A round must find the
oldest waiting texter without a pending offer, rank the free supporters on shift, lock the
chosen one, count their load again and write the offer and its text: exactly one offer.
Each round runs `Runtime.match()` (what the `match_queue` job runs) and commits; its offer and
text are then deleted, untimed, so every round sees the same state. Data goes in with COPY; the
supporter count changes by switching supporters inactive (which also changes the rota version).

Figures: the median round once the process's rota cache is warm, the first round after a rota
change ("cold") and how many statements a warm round sends. Baseline, in the same run: the
cheapest transaction the stack can do, a session reading one supporter by primary key. The
plans of the queue and candidate queries at 1,000 supporters and the largest queue are printed
in full mode (EXPLAIN ANALYZE).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import delete, event, text

from benchmarks.common import Context, Outcome, ms
from peerline.service.availability import bump_rota_version
from peerline.service.services import LineServices
from peerline.service.models import Base, Offer, OutboundMessage, Supporter, utcnow
from peerline.service.runtime import Runtime
from peerline.service.settings import from_env
from peerline.service.job_queue import redis_client
from tests.support.line import make_line

NAME = "matching"
TITLE = "Matching at scale: one round, one free supporter, PostgreSQL"
GOAL_MS = 0.005
GOAL_AT = (1000, 100_000)
# Closed chats in the database, spread over the supporters and the last 90 days.
HISTORY = 100_000
HISTORY_DAYS = 90


def _columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
        "AND column_default IS NULL ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [name for (name,) in rows if name != "id"]


def copy_rows(
    conn: psycopg.Connection[Any], table: str, rows: Iterable[dict[str, Any]], now: datetime
) -> None:
    """COPY rows into a table, filling every other column as the model's defaults would."""
    model = Base.metadata.tables[table]
    names = _columns(conn, table)
    fill: dict[str, Any] = {}
    for name in names:
        column = model.columns.get(name)
        default = column.default if column is not None else None
        if default is not None and getattr(default, "is_scalar", False):
            fill[name] = getattr(default, "arg", None)
        elif default is not None and column is not None and not column.nullable:
            fill[name] = now  # created_at and kin: the only callable defaults
        else:
            fill[name] = None
    with conn.cursor().copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row.get(name, fill[name]) for name in names])


class Scene:
    """A line's database being filled for the benchmark."""

    def __init__(self, ctx: Context, line: LineServices, dbname: str, supporters: int) -> None:
        self.ctx, self.line, self.dbname = ctx, line, dbname
        self.now = utcnow()
        self.waiting = 0
        self.contacts = 0
        token = line.vault.encrypt("+14165550000")
        with ctx.postgres.connect(dbname) as conn:
            copy_rows(
                conn,
                "supporters",
                (
                    {
                        "name": f"Peer{n}",
                        "phone_hash": line.vault.lookup_hash(f"+1416{5550000 + n}"),
                        "phone_enc": token,
                        "languages": "en,es" if n % 5 == 0 else "en",
                        "last_chat_ended_at": self.now - timedelta(minutes=n % 300),
                    }
                    for n in range(1, supporters + 1)
                ),
                self.now,
            )
            copy_rows(
                conn,
                "shifts",
                (
                    {
                        "supporter_id": n,
                        "days": "mon,tue,wed,thu,fri,sat,sun",
                        "start_minute": 0,
                        "end_minute": 1440,
                    }
                    for n in range(1, supporters + 1)
                ),
                self.now,
            )
            # Everyone but supporter 1 is in a chat (a line with people waiting is busy).
            first = self._contacts(conn, supporters - 1)
            copy_rows(
                conn,
                "conversations",
                (
                    {
                        "contact_id": first + n,
                        "supporter_id": n + 2,
                        "state": "active",
                        "queued_at": self.now - timedelta(hours=1),
                        "matched_at": self.now - timedelta(minutes=30 + n % 60),
                    }
                    for n in range(supporters - 1)
                ),
                self.now,
            )
            history = 1000 if ctx.smoke else HISTORY
            # Chats long closed: a line's history, which the queries must not wade through.
            copy_rows(
                conn,
                "conversations",
                (
                    {
                        "contact_id": first + n % (supporters - 1),
                        "supporter_id": 1 + n % supporters,
                        "state": "closed",
                        "queued_at": self.now - timedelta(days=HISTORY_DAYS * n / history),
                        "matched_at": self.now - timedelta(days=HISTORY_DAYS * n / history),
                        "closed_at": self.now
                        - timedelta(days=HISTORY_DAYS * n / history)
                        + timedelta(minutes=30),
                    }
                    for n in range(history)
                ),
                self.now,
            )
            # Each chat began with an accepted offer; history the queries must not wade through.
            copy_rows(
                conn,
                "offers",
                (
                    {
                        "conversation_id": n + 1,
                        "supporter_id": n + 2,
                        "status": "accepted",
                        "created_at": self.now - timedelta(minutes=31),
                        "expires_at": self.now - timedelta(minutes=29),
                    }
                    for n in range(supporters - 1)
                ),
                self.now,
            )
            conn.execute("ANALYZE")
            conn.commit()

    def _contacts(self, conn: psycopg.Connection[Any], count: int) -> int:
        """Add contacts; return the id of the first (ids are 1, 2, ... in a fresh table)."""
        token = self.line.vault.encrypt("+16475550000")
        first = self.contacts + 1
        copy_rows(
            conn,
            "contacts",
            (
                {"phone_hash": f"bench-{n}", "phone_enc": token, "alias": f"M{n}"}
                for n in range(first, first + count)
            ),
            self.now,
        )
        self.contacts += count
        return first

    def wait(self, total: int) -> None:
        """Bring the queue up to `total` waiting conversations (oldest first, a few in crisis)."""
        more = total - self.waiting
        with self.ctx.postgres.connect(self.dbname) as conn:
            first = self._contacts(conn, more)
            start = self.now - timedelta(days=1)
            copy_rows(
                conn,
                "conversations",
                (
                    {
                        "contact_id": first + n,
                        "state": "queued",
                        "priority": 1 if (self.waiting + n) % 997 == 500 else 0,
                        "queued_at": start + timedelta(milliseconds=self.waiting + n),
                    }
                    for n in range(more)
                ),
                self.now,
            )
            # One in five waited through an offer that expired: history for the anti-join.
            ids = conn.execute(
                "SELECT id FROM conversations WHERE state = 'queued' ORDER BY id OFFSET %s",
                (self.waiting,),
            ).fetchall()
            copy_rows(
                conn,
                "offers",
                (
                    {
                        "conversation_id": cid,
                        "supporter_id": 2 + cid % 7,
                        "status": "expired",
                        "created_at": self.now - timedelta(hours=1),
                        "expires_at": self.now - timedelta(minutes=58),
                    }
                    for n, (cid,) in enumerate(ids)
                    if n % 5 == 1
                ),
                self.now,
            )
            conn.commit()
        with self.ctx.postgres.connect(self.dbname, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE offers")
            conn.execute("VACUUM ANALYZE conversations")
            conn.execute("VACUUM ANALYZE contacts")
        self.waiting = total

    def on_shift(self, count: int) -> None:
        """Leave the first `count` supporters active (on shift), the rest inactive."""
        with self.line.db.session() as session:
            session.execute(text("UPDATE supporters SET active = (id <= :n)"), {"n": count})
            # Those off the rota have finished their chats: only supporters on shift hold any.
            session.execute(
                text(
                    "UPDATE conversations SET state = CASE WHEN supporter_id <= :n "
                    "THEN 'active' ELSE 'closed' END "
                    "WHERE supporter_id IS NOT NULL AND closed_at IS NULL"
                ),
                {"n": count},
            )
            bump_rota_version(session)  # a change behind the ORM's back must say so
        with self.ctx.postgres.connect(self.dbname, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE supporters")
            conn.execute("VACUUM ANALYZE conversations")


def one_round(line: LineServices, watch: list[tuple[str, Any]] | None = None) -> tuple[float, int]:
    """Time one matching round, commit it as the job does, then undo its writes; return
    (seconds, offers). The round's own statements go into `watch`, when given."""
    session = line.db.sessions()
    try:
        runtime = Runtime(line, session)
        with captured(line, watch) if watch is not None else nullcontext():
            started = time.perf_counter()
            offers = runtime.match()
            took = time.perf_counter() - started
        # Committed, not rolled back: psycopg drops a connection's prepared statements on
        # every rollback, and the match job commits, so a rolled-back round would plan every
        # statement anew where production does not.
        session.commit()
        session.execute(delete(OutboundMessage).where(OutboundMessage.id.in_(runtime.after_commit.sends)))
        session.execute(delete(Offer).where(Offer.id.in_([o.offer_id for o in offers])))
        session.commit()
        return took, len(offers)
    finally:
        session.close()


def count_statements(line: LineServices) -> int:
    """Return how many statements one (warm) matching round sends to the database."""
    statements: list[tuple[str, Any]] = []
    one_round(line, statements)
    return len(statements)


def floor_round(line: LineServices) -> float:
    """Time the cheapest transaction: a session reading one supporter by primary key."""
    session = line.db.sessions()
    try:
        started = time.perf_counter()
        session.get(Supporter, 1)
        session.commit()  # as the round's, so that both keep their prepared statements
        return time.perf_counter() - started
    finally:
        session.close()


@contextmanager
def captured(line: LineServices, statements: list[tuple[str, Any]]) -> Iterator[None]:
    """Collect the statements (and parameters) sent to the database inside the block."""

    def before(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool
    ) -> None:
        statements.append((statement, parameters))

    event.listen(line.db.engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        event.remove(line.db.engine, "before_cursor_execute", before)


def explain_round(line: LineServices) -> str:
    """Return EXPLAIN ANALYZE of every SELECT one matching round sends."""
    statements: list[tuple[str, Any]] = []
    one_round(line, statements)
    out = []
    for statement, parameters in statements:
        head = " ".join(statement.split())
        if not head.startswith("SELECT") or "line_settings" in head:
            continue
        session = line.db.sessions()
        try:
            plan = session.connection().exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters
            )
            lines = [str(row[0]) for row in plan]
        finally:
            session.rollback()
            session.close()
        out.append(f"-- {_shorten(head, 400)}")
        out += [_shorten(line_, 160) for line_ in lines]
        out.append("")
    return "\n".join(out)


def _shorten(text_: str, width: int) -> str:
    return text_ if len(text_) <= width else text_[: width - 5] + "[...]"


def run(ctx: Context) -> Outcome:
    out = Outcome(NAME, TITLE)
    supporters = (10, 100) if ctx.smoke else (10, 100, 1000, 10_000)
    waiting = (10, 1000) if ctx.smoke else (10, 1000, 10_000, 100_000)
    rounds = 3 if ctx.smoke else 25
    folder = ctx.folder(NAME)
    url = ctx.postgres.create_database()
    env = {
        "DATABASE_URL": url,
        "REDIS_URL": ctx.redis.url,
        "SECRET_KEY": "benchmark-secret",
        "PEERLINE_INSTANCE": str(folder),
    }
    line = make_line(from_env(env), redis_client(ctx.redis.url))
    scene = Scene(ctx, line, url.rsplit("/", 1)[1], max(supporters))
    warm: dict[tuple[int, int], float] = {}
    cold: dict[tuple[int, int], float] = {}
    statements: dict[tuple[int, int], int] = {}
    plans = ""
    try:
        for w in waiting:
            scene.wait(w)
            for s in supporters:
                scene.on_shift(s)
                first, offers = one_round(line)
                if offers != 1:
                    raise RuntimeError(f"{s} supporters, {w} waiting: {offers} offers, not 1")
                cold[s, w] = first
                warm[s, w] = statistics.median(one_round(line)[0] for _ in range(rounds))
                statements[s, w] = count_statements(line)
                if not ctx.smoke and (s, w) == GOAL_AT:
                    plans = explain_round(line)
        floor = statistics.median(floor_round(line) for _ in range(50))
    finally:
        line.db.engine.dispose()

    for s in supporters:
        out.figure(
            f"{s:>6} supporters: warm round at {', '.join(f'{w:,}' for w in waiting)} waiting",
            " | ".join(ms(warm[s, w]) for w in waiting),
        )
    for s in supporters:
        out.figure(
            f"{s:>6} supporters: first round after a rota change",
            " | ".join(ms(cold[s, w]) for w in waiting),
        )
    counts = sorted(set(statements.values()))
    out.figure(
        "statements in one warm round",
        f"{counts[0]} at every size" if len(counts) == 1 else ", ".join(map(str, counts)),
    )
    out.base("one-row primary-key read in a session", ms(floor))
    at = GOAL_AT if GOAL_AT in warm else (max(supporters), max(waiting))
    out.ratio(f"round at {at[0]:,} supporters, {at[1]:,} waiting / one-row read", warm[at] / floor)
    w_lo, w_hi = min(waiting), max(waiting)
    s_ref = at[0]
    grow_w = warm[s_ref, w_hi] / warm[s_ref, w_lo]
    out.ratio(f"{w_hi:,} / {w_lo:,} waiting at {s_ref:,} supporters", grow_w)
    s_lo, s_hi = min(supporters), max(supporters)
    grow_s = warm[s_hi, w_hi] / warm[s_lo, w_hi]
    out.ratio(f"{s_hi:,} / {s_lo:,} supporters at {w_hi:,} waiting", grow_s)
    # Logarithmic growth: a queue 10,000 times longer may cost log(100000)/log(10) = 5 times more.
    bound = max(1.0, _log_ratio(w_hi, w_lo))
    met_time = out.goal(f"round < {ms(GOAL_MS)} at {at[0]:,} supporters, {at[1]:,} waiting",
                        warm[at] < GOAL_MS)  # fmt: skip
    met_growth = out.goal(
        f"queue growth {w_lo:,} -> {w_hi:,} costs at most log-ratio ({bound:.1f}x)", grow_w <= bound
    )
    out.notes.append(
        f"supporter growth {s_lo:,} -> {s_hi:,}: {grow_s:.1f}x (log-ratio "
        f"{_log_ratio(s_hi, s_lo):.1f}x); the round ranks every free supporter on shift"
    )
    if plans:
        out.notes.append("query plans at 1,000 supporters, 100,000 waiting:\n" + plans)
        (folder / "plans.txt").write_text(plans)
    out.row(
        f"Matching round, {at[0]:,} supporters, {at[1]:,} waiting",
        ms(warm[at]),
        f"{ms(floor)} (one-row read)",
        f"< {ms(GOAL_MS)}",
        met_time,
    )
    out.row(
        f"Matching, queue {w_lo:,} -> {w_hi:,} waiting",
        f"{grow_w:.2f}x",
        "",
        f"<= {bound:.0f}x (logarithmic)",
        met_growth,
    )
    out.row(
        "Statements in one matching round",
        "-".join(map(str, (counts[0], counts[-1]) if len(counts) > 1 else counts)),
        "1 (one-row read)",
        "",
        None,
    )
    out.row(
        f"Matching, {s_lo:,} -> {s_hi:,} supporters",
        f"{ms(warm[s_lo, w_hi])} -> {ms(warm[s_hi, w_hi])}",
        "",
        "",
        None,
    )
    return out


def _log_ratio(high: int, low: int) -> float:
    return math.log(high) / math.log(low)
