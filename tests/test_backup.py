"""`peerline backup`: a dump restores into a fresh database and reads back with the keys."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakeredis import FakeRedis
from sqlalchemy import select

from peerline.app import create_app
from peerline.cli import main
from peerline.service.backup import find_pg_dump, fingerprint
from peerline.service.models import Conversation, InboundMessage
from peerline.service.privacy import Vault
from tests.support import lines
from tests.support.chat import run_jobs
from tests.support.console import Console
from tests.support.line import Webhooks, load_line_file, make_line, make_settings
from tests.support.seed import add_coordinator
from tests.support.servers import PostgresServer

KEYS = ("newest-key-" + "n" * 40, "older-key-" + "o" * 40)
WORDS = "it has been a really hard week at the new job"


@pytest.mark.servers
def test_a_backup_restores_into_a_fresh_database_and_reads_back_with_the_keys(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    env = {
        "DATABASE_URL": postgres_server.create_database(),
        "PEERLINE_ENCRYPTION_KEYS": ",".join(KEYS),
        "SECRET_KEY": "backup-test-secret",
    }
    line = make_line(make_settings(tmp_path / "first", **env), FakeRedis())
    load_line_file(line, lines.ALWAYS_OPEN)
    hooks = Webhooks(create_app(line=line).test_client(), line.settings)
    hooks.sms(lines.TEXTER, "hi")
    hooks.sms(lines.TEXTER, "yes")
    run_jobs(line)
    hooks.sms(lines.SAM, "#take")
    hooks.sms(lines.TEXTER, WORDS)
    hooks.sms(lines.SAM, "I'm glad you texted")
    add_coordinator(line)
    line.db.engine.dispose()

    dump = tmp_path / "backups" / "peerline.dump"
    result = CliRunner().invoke(
        main, ["backup", "--output", str(dump)], env={**env, "PEERLINE_INSTANCE": str(tmp_path)}
    )
    assert result.exit_code == 0, result.output
    assert dump.stat().st_mode & 0o777 == 0o600
    note = dump.with_name("peerline.dump.keys.txt").read_text()
    # The note names both keys by fingerprint, in order; neither the note, the command's
    # output nor the dump holds a key.
    assert re.findall(r"fingerprint (\w+)", note) == [fingerprint(k) for k in KEYS]
    for key in KEYS:
        assert key not in note and key not in result.output
        assert key.encode() not in dump.read_bytes()
    assert WORDS.encode() not in dump.read_bytes()  # the words are ciphertext in the dump

    # Restore as the note says, into a database that has never seen the line.
    fresh = postgres_server.create_database()
    bindir = Path(find_pg_dump()).parent
    restored = subprocess.run(
        [
            str(bindir / "pg_restore"), "--no-owner", "--no-privileges",
            "--dbname", fresh.replace("postgresql+psycopg://", "postgresql://"), str(dump),
        ],  # fmt: skip
        capture_output=True,
        text=True,
    )
    assert restored.returncode == 0, restored.stderr
    again = make_line(
        make_settings(tmp_path / "second", **{**env, "DATABASE_URL": fresh}), FakeRedis()
    )
    with again.db.session() as session:
        conversation = session.scalars(select(Conversation)).one()
        body = session.scalars(
            select(InboundMessage.body_enc).where(InboundMessage.conversation_id == conversation.id)
        ).all()
    # A coordinator reads the transcript back through the console, with the keys.
    console = Console(create_app(line=again).test_client())
    assert console.sign_in().status_code == 302
    console.get(f"/console/conversations/{conversation.id}")
    page = console.post(
        f"/console/conversations/{conversation.id}/transcript",
        {"reason": "Checking last night's backup restores"},
    )
    text = page.get_data(as_text=True)
    assert page.status_code == 200, text[-500:]
    assert WORDS in text and "glad you texted" in text
    # Without the keys, the restored rows are ciphertext and nothing more.
    with pytest.raises(ValueError, match="not written with any known key"):
        Vault(["some-other-key-" + "x" * 40]).decrypt(body[-1])
    again.db.engine.dispose()


def test_a_line_without_encryption_keys_names_the_secret_key(tmp_path: Path) -> None:
    env = {"SECRET_KEY": "the-secret-key-that-encrypts", "PEERLINE_INSTANCE": str(tmp_path)}
    dump = tmp_path / "line.db.backup"
    make_line(make_settings(tmp_path, **env), FakeRedis())
    result = CliRunner().invoke(main, ["backup", "-o", str(dump)], env=env)
    assert result.exit_code == 0, result.output
    note = dump.with_name(dump.name + ".keys.txt").read_text()
    assert "SECRET_KEY" in note and fingerprint(env["SECRET_KEY"]) in note
    assert env["SECRET_KEY"] not in note + result.output
    assert dump.stat().st_size > 0
    fingerprints = CliRunner().invoke(main, ["keys", "fingerprint"], env=env)
    assert fingerprint(env["SECRET_KEY"]) in fingerprints.output

