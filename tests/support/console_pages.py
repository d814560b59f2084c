"""Seed what the blocklist, call-back and alert pages show, and a provider serving recordings."""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import select

from peerline.service.models import Alert, Block, Conversation, Supporter, utcnow
from peerline.service.services import LineServices
from peerline.service.voice.models import CallbackRequest
from tests.support.seed import ConversationSpec, add_conversation

ACCOUNT = "AC" + "0" * 31 + "1"
# A few bytes that start like an MP3 frame: the console passes them on untouched.
AUDIO = b"\xff\xfb\x90\x64" + bytes(range(256)) * 64


def add_block_review(line: LineServices, supporter: str = "Rosa") -> tuple[int, int, str]:
    """Block a texter as a supporter's #block does; return (block id, alert id, alias)."""
    conversation_id = add_conversation(line, ConversationSpec(created_at=utcnow()))
    with line.db.session() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        alias = conversation.contact.alias
        block = Block(
            phone_hash=conversation.contact.phone_hash,
            reason=f"#block by {supporter}",
            status="review",
            created_by=supporter,
        )
        alert = Alert(
            kind="block_review",
            conversation_id=conversation_id,
            detail=f"{alias}: blocked by {supporter}",
        )
        session.add_all([block, alert])
        session.flush()
        return block.id, alert.id, alias


def add_callback(
    line: LineServices,
    reference: str,
    *,
    supporter: str | None = None,
    status: str = "open",
    recording: str | None = None,
    seconds: int = 12,
) -> int:
    """Leave a voicemail asking for a call back; return the request's id."""
    conversation_id = add_conversation(line, ConversationSpec(created_at=utcnow()))
    with line.db.session() as session:
        conversation = session.get(Conversation, conversation_id)
        assert conversation is not None
        taken = (
            session.scalar(select(Supporter).where(Supporter.name == supporter))
            if supporter
            else None
        )
        request = CallbackRequest(
            reference=reference,
            kind="voicemail",
            contact_id=conversation.contact_id,
            language="en",
            recording_sid=recording.rsplit("/", 1)[-1] if recording else None,
            recording_url_enc=line.vault.encrypt(recording) if recording else None,
            recording_seconds=seconds if recording else None,
            status=status,
            supporter_id=taken.id if taken else None,
            attempts=1 if taken else 0,
        )
        session.add(request)
        session.flush()
        return request.id


def recording_url(number: int) -> str:
    """Return a recording address as Twilio gives it (no extension)."""
    return f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE{number:032x}"


@dataclass
class Provider:
    """What the stand-in provider was asked for."""

    base_url: str = ""
    paths: list[str] = field(default_factory=list)
    refused: int = 0


@contextmanager
def recordings_provider(account: str, token: str) -> Iterator[Provider]:
    """Serve recordings' MP3s like Twilio's API: Basic auth by the account, else 401."""
    seen = Provider()
    expected = "Basic " + base64.b64encode(f"{account}:{token}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.paths.append(self.path)
            if self.headers.get("Authorization") != expected:
                seen.refused += 1
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if not self.path.endswith(".mp3"):
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "audio/mpeg")
            self.send_header("Content-Length", str(len(AUDIO)))
            self.end_headers()
            self.wfile.write(AUDIO)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen.base_url = f"http://127.0.0.1:{server.server_port}"
    try:
        yield seen
    finally:
        server.shutdown()
        thread.join(5)
        server.server_close()
