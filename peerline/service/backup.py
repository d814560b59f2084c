"""Back up the database with pg_dump, and say which keys a restore will need (never the keys).

Numbers and words are Fernet ciphertext in the dump and lookups are keyed hashes: a dump is
useless without PEERLINE_ENCRYPTION_KEYS (or SECRET_KEY, when no encryption keys are set), and
those are kept apart from it on purpose. The note beside the dump names them with fingerprints,
so whoever restores can check they hold the right ones.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from peerline.service.settings import Settings


class BackupError(Exception):
    """The backup could not be made."""


@dataclass(frozen=True)
class Backup:
    """What was written."""

    dump: Path
    note: Path
    size: int


def fingerprint(key: str) -> str:
    """Return a short fingerprint of a key: enough to tell keys apart, nothing to rebuild one."""
    return hashlib.sha256(b"peerline key fingerprint\0" + key.encode()).hexdigest()[:16]


def find_pg_dump() -> str:
    """Return the newest pg_dump installed (it must be at least the server's version)."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_dump"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if versions:
        return str(versions[-1])
    found = shutil.which("pg_dump")
    if found is None:
        raise BackupError("pg_dump not found: install PostgreSQL's client (postgresql-client)")
    return found


def key_note(settings: Settings, dump: Path, now: datetime) -> str:
    """Return the note kept beside a dump: which keys restore it, by fingerprint."""
    keys = list(settings.encryption_keys)
    if keys:
        listed = "\n".join(
            f"  {n}. fingerprint {fingerprint(k)}{'  (newest: writes)' if n == 1 else ''}"
            for n, k in enumerate(keys, 1)
        )
        needed = f"PEERLINE_ENCRYPTION_KEYS, all {len(keys)} keys in this order:\n{listed}"
    else:
        needed = (
            "SECRET_KEY (no PEERLINE_ENCRYPTION_KEYS were set, so it encrypts personal data):\n"
            f"  fingerprint {fingerprint(settings.secret_key)}"
        )
    return f"""Peerline backup {dump.name}, made {now:%Y-%m-%d %H:%M} UTC.

Phone numbers and message text in this dump are encrypted, and look-ups use keyed hashes. To
read it, the restored line needs the same {needed}

The keys themselves are not in this note nor in the dump: keep them in your password manager
or secret store, apart from the backups. `peerline keys fingerprint` prints the fingerprints
of the keys a line has now, to compare.

Restore into an empty database, then start the line with those keys:
  pg_restore --no-owner --no-privileges --dbname postgresql://USER@HOST/NEWDB {dump.name}
  peerline db upgrade
"""


def _conninfo(url: str) -> tuple[str, dict[str, str]]:
    """Return a libpq URL without the password, and the environment that carries it."""
    parsed = make_url(url)
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def backup(settings: Settings, output: Path, now: datetime | None = None) -> Backup:
    """Dump the database to `output` (pg_dump's custom format) and write the key note."""
    now = now or datetime.now(UTC)
    output.parent.mkdir(parents=True, exist_ok=True)
    url = settings.database_url
    # Owner-only from the first byte: the dump holds ciphertext and the line's whole history.
    output.touch(mode=0o600)
    output.chmod(0o600)
    if url.startswith("sqlite:"):
        source = make_url(url).database
        if not source:
            raise BackupError("an in-memory SQLite database cannot be backed up")
        with sqlite3.connect(source) as src, sqlite3.connect(output) as dst:
            src.backup(dst)
    else:
        target, env = _conninfo(url)
        result = subprocess.run(
            [find_pg_dump(), "--format=custom", "--no-owner", "--file", str(output), target],
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise BackupError(f"pg_dump failed ({result.returncode}): {result.stderr.strip()}")
    note = output.with_name(output.name + ".keys.txt")
    note.write_text(key_note(settings, output, now), "utf-8")
    return Backup(output, note, output.stat().st_size)
