"""The `peerline` command: serve, migrate, work, and keep the line file."""

from __future__ import annotations

import ipaddress
import logging
import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from prometheus_client import start_http_server
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import delete, func, select

from peerline.service import backup as backups
from peerline.service import capacity, linefile, redis_connect
from peerline.service.availability import load_line_rotas
from peerline.service.job_queue import WORKER_QUEUES
from peerline.service.keys import rotate
from peerline.service.models import Block, Coordinator, Supporter, utcnow
from peerline.service.privacy import BadPhoneNumber, normalise_phone
from peerline.service.redis_connect import connect
from peerline.service.retention import purge
from peerline.service.services import LineServices
from peerline.service.settings import Settings, SettingsError, from_env
from peerline.workers.context import get_line, set_line

if TYPE_CHECKING:
    from werkzeug.serving import WSGIRequestHandler


def _settings(port: int | None = None) -> Settings:
    env = dict(os.environ)
    if port is not None:
        env["PORT"] = str(port)
    try:
        return from_env(env)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


def _line(settings: Settings, redis: Redis | None = None) -> LineServices:
    if redis is None:
        if settings.redis_url:
            redis = connect(settings)
        else:
            from fakeredis import FakeRedis

            redis = FakeRedis()
    return LineServices(settings, redis)


SENTINEL_WORKER_TTL = 35  # seconds
SENTINEL_MAINTENANCE_SECONDS = 15


def _free_scheduler_locks(rq_worker: Any) -> None:
    """Let go of the scheduler locks of a worker whose loop ended on a lost master: promoted
    with the replica, they would keep every scheduler (this worker's next one too) from
    enqueueing scheduled jobs until they lapse, and RQ tries again only every 10 minutes."""
    scheduler = rq_worker.scheduler
    if scheduler is None:
        return
    process = scheduler._process
    if process is not None and process.is_alive():
        process.terminate()
        process.join(5)
    deadline = time.monotonic() + redis_connect.RELEASE_PATIENCE
    while True:
        try:
            scheduler.release_locks()  # only the locks this scheduler holds
            return
        except RedisError:
            if time.monotonic() > deadline:
                return  # they lapse on their own
            time.sleep(0.5)


def _loopback(host: str) -> bool:
    """Say whether an address to listen on is this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _phone(number: str, settings: Settings) -> str:
    try:
        return normalise_phone(number, settings.default_region)
    except BadPhoneNumber as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def main() -> None:
    """Run and look after a Peerline support line."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


@main.command()
@click.option("--port", type=int, default=None, help="Port to listen on (default $PORT or 5000).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
def serve(port: int | None, host: str) -> None:
    """Run the whole line in one process on embedded defaults."""
    from werkzeug.serving import run_simple

    from peerline.app import create_app
    from peerline.service import linesync
    from peerline.service.migrate import upgrade
    from peerline.workers.embedded import EmbeddedWorkers

    port = port or int(os.environ.get("PORT", "5000"))
    settings = _settings(port)
    if settings.embedded:
        if not _loopback(host):
            raise click.ClickException(
                f"--host {host}: without Twilio credentials the phone simulator shows every "
                "number, so it listens only on this machine (127.0.0.1, ::1 or localhost)"
            )
        settings = settings.with_changes(simulator=True)
    if settings.redis_url:
        redis = connect(settings)
    else:
        from fakeredis import FakeRedis, FakeServer

        # One in-memory Redis shared by the web threads, the worker and the scheduler.
        redis = FakeRedis(server=FakeServer())
    upgrade(settings.database_url)
    line = LineServices(settings, redis)
    line.crisis.spend_memory_on_speed()  # the worker's checks run in this process too
    with line.db.session() as session:
        if not session.scalar(select(func.count()).select_from(Supporter)):
            demo = linefile.parse(linefile.DEMO_LINE_FILE, settings.default_region)
            linesync.import_line(session, line.vault, demo)
            click.echo("Loaded the demo line file (three supporters, one group).")
    set_line(line)
    workers = EmbeddedWorkers(redis)
    workers.start()
    app = create_app(line=line)
    base = settings.public_base_url
    click.echo(f"Peerline is running at {base}/")
    if settings.embedded:
        click.echo(f"Open the phone simulator at {base}/simulator")
    try:
        run_simple(
            host, port, app, threaded=True, use_reloader=False, request_handler=path_only_handler()
        )
    finally:
        workers.stop()


def path_only_handler() -> type[WSGIRequestHandler]:
    """Return the development server's request handler, logging each request's path without
    its query string (as `gunicorn_conf`'s access format does): the phone simulator's own
    queries name a phone number, which no log line may hold."""
    from werkzeug.serving import WSGIRequestHandler

    class PathOnly(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            # The request's environ was built from the path before the response; only the
            # access line reads it now.
            if isinstance(getattr(self, "path", None), str):
                self.path = self.path.partition("?")[0]
            super().log_request(code, size)

    return PathOnly


@main.group()
def db() -> None:
    """Manage the database."""


@db.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply the database migrations."""
    from peerline.service.migrate import upgrade

    upgrade(_settings().database_url, revision)
    click.echo("Database is up to date.")


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@click.option("--sweep-every", type=float, default=30.0, show_default=True)
def worker(burst: bool, sweep_every: float) -> None:
    """Run an RQ worker with its scheduler, and a sweep that rebuilds lost work."""
    from rq import Queue

    from peerline.workers import jobs
    from peerline.workers.line_worker import LineWorker

    line = get_line()
    # Every text's check runs here: the crisis model names categories from packed weights.
    line.crisis.spend_memory_on_speed()
    # Jobs run in this process (below), but RQ's scheduler (`with_scheduler`) runs in a
    # forked child: it must not reuse the parent's database connections.
    if line.settings.worker_metrics_port:
        # Counters of this process only; a scraper reaches it inside the private network.
        start_http_server(line.settings.worker_metrics_port)
    os.register_at_fork(after_in_child=line.db.dispose)
    stopping = threading.Event()

    def sweep_forever() -> None:
        while not stopping.wait(sweep_every):
            try:
                jobs.sweep()
            except Exception:
                logging.getLogger("peerline.sweep").exception("sweep failed")

    if not burst:
        threading.Thread(target=sweep_forever, name="sweep", daemon=True).start()
    # Texts whose sender's next slot is in the future are sent by this loop at that slot.
    threading.Thread(
        target=jobs.sender_loop, args=(stopping,), name="senders", daemon=True
    ).start()
    # In order: texts waiting to be read first, then everything else.
    queues = [Queue(name, connection=line.redis) for name in WORKER_QUEUES]
    log = logging.getLogger("peerline.worker")
    try:
        while True:
            # Jobs are short and take ids only: running them in this process keeps the
            # database and Redis connections warm instead of forking a work horse per job.
            # With Sentinel, a worker blocked on a master that went silent (its host cut off)
            # gives up within WORKER_TTL - 15 s, and retries a lost master every 2 s at most,
            # so it follows a failover in seconds (RQ's defaults: 405 s and 60 s).
            sentinel = bool(line.settings.redis_sentinels)
            rq_worker: LineWorker | None = None
            try:
                # RQ names itself to Redis as it is built: with no master, that fails too.
                rq_worker = LineWorker(
                    queues,
                    connection=line.redis,
                    worker_ttl=SENTINEL_WORKER_TTL if sentinel else None,
                )
                if sentinel:
                    rq_worker.max_connection_wait_time = 2.0
                    # RQ restarts a scheduler that died (with its master) at maintenance
                    # only, every 10 minutes by default: scheduled jobs would wait that long.
                    rq_worker.maintenance_interval = SENTINEL_MAINTENANCE_SECONDS
                rq_worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
            except RedisError as exc:
                log.warning("redis unavailable (%s)", exc)
            # RQ's loop quits on a lost connection; unless we were asked to stop, wait for
            # Redis to come back and work again rather than leave the queue unserved.
            asked = rq_worker is not None and (
                rq_worker._stop_requested or rq_worker._shutdown_requested_date is not None
            )
            if burst or asked:
                break
            if rq_worker is not None and sentinel:
                _free_scheduler_locks(rq_worker)
            log.warning("worker loop ended without a stop request: restarting in 1 s")
            time.sleep(1)
    finally:
        stopping.set()


@main.command("replay")
def replay_command() -> None:
    """Feed webhooks spooled while the database was down through the normal path."""
    from peerline.service.runtime import replay_spooled

    line = _line(_settings())
    click.echo(f"Replayed {replay_spooled(line)} webhooks.")


@main.command("inbound")
@click.option("--retry-failed", is_flag=True, help="Put texts kept aside back in line.")
def inbound_command(retry_failed: bool) -> None:
    """Show the texts waiting for a worker, and those kept aside after an error."""
    line = _line(_settings())
    if retry_failed:
        click.echo(f"Put back {line.inbound.retry_failed()} texts.")
    click.echo(f"Waiting: {line.inbound.size()}. Kept aside: {line.inbound.failed()}.")


@main.command("sweep")
def sweep_command() -> None:
    """Re-enqueue work that Redis lost, once."""
    from peerline.workers import jobs

    click.echo(jobs.sweep())


@main.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(path: Path) -> None:
    """Load supporters, the rota and groups from a line file."""
    from peerline.service import linesync
    from peerline.service.migrate import upgrade

    settings = _settings()
    try:
        spec = linefile.parse(path.read_text("utf-8"), settings.default_region)
    except linefile.LineFileError as exc:
        raise click.ClickException(f"{path}:\n{exc}") from exc
    upgrade(settings.database_url)
    line = _line(settings)
    with line.db.session() as session:
        report = linesync.import_line(session, line.vault, spec)
        # Each new supporter hears how the line works before their first offer.
        welcomes = linesync.welcome_supporters(line, session, report.added_ids)
    welcomes.dispatch(line)
    if not report.changed:
        click.echo("Nothing changed: the line already matches the file.")
        return
    for label, names in (
        ("added", report.added),
        ("updated", report.updated),
        ("deactivated", report.deactivated),
        ("groups changed", report.groups_changed),
        ("settings changed", report.settings_changed),
    ):
        if names:
            click.echo(f"{label}: {', '.join(names)}")


@main.command("export")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None)
def export_command(output: Path | None) -> None:
    """Write the line file (supporters, rota, groups) to stdout or a file."""
    from peerline.service import linesync

    settings = _settings()
    line = _line(settings)
    with line.db.session() as session:
        text = linefile.dump(linesync.export_line(session, line.vault, settings.line_timezone))
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, "utf-8")
        output.chmod(0o600)  # it holds supporters' phone numbers


@main.group()
def rota() -> None:
    """Look at the rota."""


@rota.command("who")
@click.option("--at", "at_text", default=None, help="A time, ISO 8601 (default: now).")
def rota_who(at_text: str | None) -> None:
    """Print who is on shift."""
    settings = _settings()
    line = _line(settings)
    with line.db.session() as session:
        tz = line.timezone(session)
        at = datetime.now(UTC)
        if at_text:
            try:
                at = datetime.fromisoformat(at_text)
            except ValueError as exc:
                raise click.ClickException(f"--at: {at_text!r} is not an ISO 8601 time") from exc
            at = at.replace(tzinfo=tz) if at.tzinfo is None else at
        ids = load_line_rotas(session, settings.line_timezone).on_shift(at)
        local = at.astimezone(tz).strftime("%a %Y-%m-%d %H:%M %Z")
        if not ids:
            click.echo(f"Nobody is on shift at {local}.")
            return
        click.echo(f"On shift at {local}:")
        for supporter in session.scalars(select(Supporter).where(Supporter.id.in_(ids))):
            state = "away" if supporter.away else "available"
            click.echo(f"  {supporter.name} ({state})")


@rota.command("feeds")
def rota_feeds() -> None:
    """Print each supporter's private calendar feed URL (give each only to its owner)."""
    from peerline.service.calendar import new_token

    settings = _settings()
    line = _line(settings)
    with line.db.session() as session:
        for supporter in session.scalars(select(Supporter).where(Supporter.active.is_(True))):
            if supporter.calendar_token is None:
                supporter.calendar_token = new_token()
            url = f"{settings.public_base_url}/calendar/{supporter.calendar_token}.ics"
            click.echo(f"{supporter.name}: {url}")


@main.group()
def keys() -> None:
    """Manage the keys that protect personal data."""


@keys.command("generate")
def keys_generate() -> None:
    """Print a new random key to put first in PEERLINE_ENCRYPTION_KEYS."""
    import secrets

    click.echo(secrets.token_urlsafe(48))


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt and re-hash all personal data under the first key of PEERLINE_ENCRYPTION_KEYS."""
    settings = _settings()
    line = _line(settings)
    with line.db.session() as session:
        report = rotate(session, line.vault)
    click.echo(
        f"Re-encrypted {report.encrypted} values and re-hashed {report.rehashed} rows. "
        "Older keys can be removed from PEERLINE_ENCRYPTION_KEYS once every process restarted."
    )


@keys.command("fingerprint")
def keys_fingerprint() -> None:
    """Print the fingerprints of this line's keys (never the keys), to match a backup's note."""
    settings = _settings()
    for n, key in enumerate(settings.encryption_keys, 1):
        click.echo(f"PEERLINE_ENCRYPTION_KEYS {n}: {backups.fingerprint(key)}")
    if not settings.encryption_keys:
        click.echo(f"SECRET_KEY (encrypts data): {backups.fingerprint(settings.secret_key)}")


@main.command("backup")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The dump to write (pg_dump custom format); a note of the keys it needs goes beside it.",
)
def backup_command(output: Path) -> None:
    """Dump the database with pg_dump, and note which keys a restore needs (not the keys)."""
    try:
        made = backups.backup(_settings(), output)
    except backups.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Wrote {made.dump} ({made.size} bytes) and {made.note}.")
    click.echo("Keep the keys it names apart from the dump: without them it cannot be read.")


@main.command("purge")
def purge_command() -> None:
    """Delete transcripts older than PEERLINE_RETENTION_DAYS, keeping anonymous counts."""
    settings = _settings()
    line = _line(settings)
    total = 0
    while True:
        with line.db.session() as session:
            done = purge(session, utcnow(), settings.retention_days)
        total += done
        if done == 0:
            break
    aside = line.inbound.purge_failed(utcnow() - timedelta(days=settings.retention_days))
    click.echo(f"Purged {total} transcripts and stray messages, and {aside} texts kept aside.")


@main.group()
def block() -> None:
    """Manage the numbers the line does not answer."""


@block.command("add")
@click.argument("number")
@click.option("--reason", required=True, help="Why, for the other coordinators.")
@click.option("--by", "actor", default="cli", show_default=True)
def block_add(number: str, reason: str, actor: str) -> None:
    """Block a number (its messages are kept but never answered)."""
    settings = _settings()
    phone = _phone(number, settings)
    line = _line(settings)
    with line.db.session() as session:
        hashes = line.vault.lookup_hashes(phone)
        existing = session.scalar(select(Block).where(Block.phone_hash.in_(hashes)))
        if existing is not None:
            existing.status, existing.reason = "active", reason
        else:
            session.add(Block(phone_hash=hashes[0], reason=reason, created_by=actor))
    click.echo("Blocked.")


@block.command("remove")
@click.argument("number")
def block_remove(number: str) -> None:
    """Lift a block."""
    settings = _settings()
    phone = _phone(number, settings)
    line = _line(settings)
    with line.db.session() as session:
        result = session.execute(
            delete(Block).where(Block.phone_hash.in_(line.vault.lookup_hashes(phone)))
        )
    click.echo("Unblocked." if result.rowcount else "That number was not blocked.")  # type: ignore[attr-defined]


@main.group()
def coordinator() -> None:
    """Manage coordinators' console accounts."""


@coordinator.command("create")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--role",
    type=click.Choice(["admin", "coordinator"]),
    default=None,
    help="A new account's role (default: admin for the first account, else coordinator).",
)
@click.option("--transcripts", is_flag=True, help="Let a new account open transcripts.")
def coordinator_create(
    email: str, password_stdin: bool, role: str | None, transcripts: bool
) -> None:
    """Create (or reset the password of) a coordinator; a reset ends their sessions."""
    from argon2 import PasswordHasher

    from peerline.console.auth import end_sessions, password_problem
    from peerline.service.migrate import upgrade

    if not password_stdin:
        raise click.ClickException("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    if "@" not in email:
        raise click.ClickException(f"{email!r} is not an email address")
    problem = password_problem(password, email.lower())
    if problem:
        raise click.ClickException(f"the password is too weak: {problem}")
    settings = _settings()
    upgrade(settings.database_url)
    line = _line(settings)
    with line.db.session() as session:
        existing = session.scalar(select(Coordinator).where(Coordinator.email == email.lower()))
        hashed = PasswordHasher().hash(password)
        if existing is None:
            admins = session.scalar(
                select(func.count()).select_from(Coordinator).where(Coordinator.role == "admin")
            )
            chosen = role or ("coordinator" if admins else "admin")
            session.add(
                Coordinator(
                    email=email.lower(), password_hash=hashed, role=chosen, transcripts=transcripts
                )
            )
            click.echo(f"Coordinator {email} created ({chosen}).")
        else:
            existing.password_hash = hashed
            end_sessions(session, existing.id, "password_changed")
            click.echo(f"Password of {email} reset; their sessions have ended.")
    line.db.engine.dispose()


@main.command("check")
@click.option("--pace", default=20.0, show_default=True, help="Seconds between texts each way.")
@click.option("--segments", default=1.0, show_default=True, help="Segments per chat text.")
@click.option(
    "--headroom", default=0.2, show_default=True, help="Share kept for the line's own texts."
)
@click.option("--days", default=14, show_default=True, help="How far ahead to read the rota.")
def check_command(pace: float, segments: float, headroom: float, days: int) -> None:
    """Print how many live chats the senders carry, and warn where the rota plans more."""
    if pace <= 0 or segments <= 0 or not 0 <= headroom < 1 or days < 1:
        raise click.ClickException(
            "--pace and --segments must be above 0, --headroom from 0 to below 1, --days 1 or more"
        )
    settings = _settings()
    budget = capacity.budget(settings)
    carried = budget.chats(pace, segments, headroom)
    click.echo("Senders (segments a second):")
    for side, senders in (
        ("to texters", budget.to_texters),
        ("to supporters", budget.to_supporters),
    ):
        for sender in senders:
            click.echo(f"  {side:<14} {sender.kind:<10} {sender.rate:g}/s")
    if budget.shared:
        click.echo("  (no relay pool: one number carries both sides of every chat)")
    click.echo(
        f"At one text of {segments:g} segment(s) each way every {pace:g} s, keeping {headroom:.0%}"
        f" for the line's own texts, the senders carry {carried} live chats at once."
    )
    line = _line(settings)
    try:
        with line.db.session() as session:
            rotas = load_line_rotas(session, settings.line_timezone)
            # From the last quarter hour: shifts start on it, so the peak's time reads as one.
            now = datetime.now(UTC).replace(second=0, microsecond=0)
            start = now - timedelta(minutes=now.minute % 15)
            peak = capacity.planned_peak(session, rotas, settings.twilio_relay_numbers, start, days)
            tz = line.timezone(session)
    finally:
        line.db.engine.dispose()
    if peak.at is None:
        click.echo(f"The rota plans nobody on shift in the next {days} days.")
        return
    when = peak.at.astimezone(tz).strftime("%a %Y-%m-%d %H:%M %Z")
    click.echo(
        f"The rota's peak in the next {days} days: {peak.supporters} supporters on shift holding"
        f" up to {peak.chats} chats, from {when}."
    )
    if peak.chats > carried:
        click.echo(
            f"WARNING: the rota plans {peak.chats} chats at once but the senders carry {carried}:"
            " add relay numbers, a Messaging Service or a faster sender, or plan fewer supporters.",
            err=True,
        )
        raise SystemExit(1)
    click.echo("OK: the senders carry the rota's peak.")
