"""Endpoints for load balancers and Prometheus: /readyz and /metrics (/healthz is the app's)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator

from flask import Blueprint, Response, abort, current_app, jsonify, request
from redis.exceptions import RedisError
from rq import Queue
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from peerline.service import lanes, metrics
from peerline.service.inbound import FAILED_KEY
from peerline.service.job_queue import WORKER_QUEUES
from peerline.service.models import OUT_PENDING, OUT_SENDING, OutboundMessage
from peerline.service.services import LineServices

bp = Blueprint("ops", __name__)
log = logging.getLogger(__name__)

Samples = Iterator[tuple[dict[str, str], float]]


@bp.get("/readyz")
def ready() -> tuple[Response, int]:
    """Say whether this process can reach the database and Redis (503 when either fails)."""
    line: LineServices = current_app.extensions["peerline"]
    checks = {"database": "ok", "redis": "ok"}
    try:
        with line.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        checks["database"] = type(exc).__name__
    try:
        line.redis.ping()
    except RedisError as exc:
        checks["redis"] = type(exc).__name__
    failed = [name for name, state in checks.items() if state != "ok"]
    for name in failed:
        metrics.backend_error(name)
    return jsonify(status="unavailable" if failed else "ok", **checks), 503 if failed else 200


@bp.get("/metrics")
def metrics_page() -> Response:
    """Serve Prometheus metrics to a scraper holding PEERLINE_METRICS_TOKEN."""
    line: LineServices = current_app.extensions["peerline"]
    token = line.settings.metrics_token
    if not token:
        abort(404)  # off unless configured: queue sizes are nobody else's business
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        abort(401, description="/metrics needs Authorization: Bearer <PEERLINE_METRICS_TOKEN>")
    live = metrics.LiveGauges(
        {
            "peerline_texts_waiting": (
                "Work waiting in Redis: RQ jobs by queue, inbound texts not yet read",
                lambda: _waiting(line),
            ),
            "peerline_outbox_texts": (
                "Outgoing texts not yet handed to the provider, by status and send lane",
                lambda: _outbox(line),
            ),
        }
    )
    return Response(metrics.exposition(live), mimetype="text/plain; version=0.0.4")


def send_lane(purpose: str) -> str:
    """Name the send lane a text goes out in (the outbox's lanes, by name)."""
    return lanes.NAMES[lanes.lane_of(purpose)]


def _waiting(line: LineServices) -> Samples:
    for name in WORKER_QUEUES:
        yield {"queue": name}, float(Queue(name, connection=line.redis).count)
    yield {"queue": "inbound-texts"}, float(line.inbound.size())
    yield {"queue": "inbound-failed"}, float(line.redis.llen(FAILED_KEY))


def _outbox(line: LineServices) -> Samples:
    counts: dict[tuple[str, str], float] = {
        (status, lane): 0.0
        for status in (OUT_PENDING, OUT_SENDING)
        for lane in lanes.NAMES
    }
    with line.db.session() as session:
        rows = session.execute(
            select(OutboundMessage.status, OutboundMessage.purpose, func.count())
            .where(OutboundMessage.status.in_((OUT_PENDING, OUT_SENDING)))
            .group_by(OutboundMessage.status, OutboundMessage.purpose)
        ).all()
    for status, purpose, number in rows:
        key = (status, send_lane(purpose))
        counts[key] = counts.get(key, 0.0) + float(number)
    for (status, lane), total in sorted(counts.items()):
        yield {"status": status, "lane": lane}, total
