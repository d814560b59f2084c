"""Gunicorn's settings for the container: `gunicorn -c python:peerline.gunicorn_conf`."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

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
# Access logs carry the path only: no query string, so no number or words.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
# Twilio gives a webhook 15 s; a request still running after 30 s is stuck, not slow.
timeout = 30
graceful_timeout = 20


def on_starting(server: Any) -> None:
    """Start with an empty metrics folder: files left by an earlier run would count twice."""
    shutil.rmtree(METRICS_DIR, ignore_errors=True)
    METRICS_DIR.mkdir(parents=True, mode=0o700)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead web worker's live gauges, as prometheus_client's multiprocess mode asks."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
