"""Gunicorn's settings for the container: `gunicorn -c python:peerline.gunicorn_conf`."""

from __future__ import annotations

import gc
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from gunicorn.glogging import Logger  # type: ignore[import-untyped]

# prometheus_client picks its multiprocess mode when it is first imported, so the folder is
# named here, in the master, before the app (and so the client) is loaded in any web worker.
# Only the web processes share it; `peerline worker` keeps its own registry.
METRICS_DIR = Path(
    os.environ.setdefault(
        "PROMETHEUS_MULTIPROC_DIR", str(Path(tempfile.gettempdir()) / "peerline-metrics")
    )
)

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
accesslog = "-"
# Access logs carry the path only: no query string, so no number or words; and a path's
# secrets (a calendar feed's token) are masked by the logger below.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
# A path segment of 20 or more URL-safe characters is a secret: the calendar feed's token (32).
_SECRET = re.compile(r"(?<=/)[A-Za-z0-9_-]{20,}")
# The atoms that can carry the path or the query, whatever the format asks for.
_PATH_ATOMS = ("U", "r", "f", "{raw_uri}e", "{path_info}e", "{request_uri}e")
_QUERY_ATOMS = ("q", "{query_string}e")


def redact(text: str) -> str:
    """Return a path (or request line) with its secret segments and query string masked."""
    path, mark, rest = text.partition("?")
    tail = rest.partition(" ")[2]  # a request line's protocol after the query, if any
    masked = _SECRET.sub("[token]", path)
    return f"{masked}?[query] {tail}".rstrip() if mark else masked


class RedactingLogger(Logger):
    """Gunicorn's logger, with paths' tokens and query strings masked in the access log."""

    def atoms(self, resp: Any, req: Any, environ: Any, request_time: Any) -> dict[str, Any]:
        """Return the access log's atoms with every path masked and the query left out."""
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for key in _PATH_ATOMS:
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        for key in _QUERY_ATOMS:
            if key in atoms:
                atoms[key] = "-"
        return atoms


logger_class = RedactingLogger
# Twilio gives a webhook 15 s; a request still running after 30 s is stuck, not slow.
timeout = 30
graceful_timeout = 20


def on_starting(server: Any) -> None:
    """Start with an empty metrics folder: files left by an earlier run would count twice."""
    shutil.rmtree(METRICS_DIR, ignore_errors=True)
    METRICS_DIR.mkdir(parents=True, mode=0o700)


def post_worker_init(worker: Any) -> None:
    """Keep the loaded app out of the collector's sweeps: it lives as long as the worker."""
    # A web worker holds some 200,000 objects once the app, the phrase lists and the model are
    # loaded; every full collection walked them all in the middle of a webhook.
    gc.collect()  # what start-up let go of, before the rest is set aside for good
    gc.freeze()


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead web worker's live gauges, as prometheus_client's multiprocess mode asks."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
