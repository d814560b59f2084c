"""The application factory: builds the line from settings and binds every part to the app."""

from __future__ import annotations

import logging

from flask import Flask, Request, Response, abort, g, jsonify
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from redis import Redis
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map

from peerline.service import metrics, redis_connect
from peerline.service.services import LineServices
from peerline.service.settings import Settings, SettingsError, from_env, production_missing
from peerline.service.transport import Transport
from peerline.webhooks.signing import checks_fields, current_request
from peerline.webhooks.sms_door import SmsDoor

# PostgreSQL's INTEGER: an id in a URL beyond it matches no route (404) instead of failing
# in the database (500).
MAX_ID = 2**31 - 1

# A webhook's outcome for metrics, by status, where the handler did not name it (g).
_OUTCOMES = {200: "ok", 204: "ok", 400: "bad_request", 403: "bad_signature", 404: "not_found"}


WEBHOOKS = "/webhooks/"
FORMS = frozenset(("application/x-www-form-urlencoded", "multipart/form-data"))


def _holds_nul(fields: MultiDict[str, str]) -> bool:
    """Say whether a name or a value holds a NUL character."""
    return any("\x00" in k or "\x00" in v for k, v in fields.items(multi=True))


class CookieSessionsForPeople(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, but none for Twilio's webhooks."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        # Twilio sends no cookie and reads none: opening and saving a session on every webhook
        # only costs time (a signing serializer built and a cookie checked per request).
        if request.path.startswith(WEBHOOKS):
            return self.null_session_class()
        return super().open_session(app, request)


# Pages carry people's words: no framing, no sniffing, no leaking where they came from.
SECURITY_HEADERS = (
    (
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'self'; "
        "form-action 'self'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
)
HSTS = ("Strict-Transport-Security", "max-age=31536000; includeSubDomains")



def _security(settings: Settings) -> tuple[tuple[str, str], ...]:
    """Return the headers every answer carries: HSTS too when the line is served on https."""
    https = settings.public_base_url.startswith("https://")
    return (*SECURITY_HEADERS, HSTS) if https else SECURITY_HEADERS


class DatabaseId(IntegerConverter):
    """An `<int:...>` URL part that fits a database integer column."""

    def __init__(self, url_map: Map, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)  # type: ignore[arg-type]


def create_app(
    settings: Settings | None = None,
    *,
    redis: Redis | None = None,
    transport: Transport | None = None,
    line: LineServices | None = None,
) -> Flask:
    """Create the Peerline web application."""
    settings = settings or (line.settings if line else from_env())
    if settings.embedded and not (settings.simulator or settings.testing):
        # Without Twilio the line would run on the simulator, which shows every number: only
        # `peerline serve` on loopback may do that, never a web process such as gunicorn's.
        missing = [name for name in production_missing() if name.startswith("TWILIO_")]
        raise SettingsError(
            "refusing to start a web process without Twilio credentials: set "
            + ", ".join(missing or ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"])
            + " (for the local phone simulator, run `peerline serve`)"
        )
    app = Flask(__name__, instance_path=settings.instance_path)
    app.url_map.converters["int"] = DatabaseId
    app.session_interface = CookieSessionsForPeople()
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.testing,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.public_base_url.startswith("https://"),
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    if line is None:
        if redis is None:
            if settings.redis_url is None:
                raise ValueError("REDIS_URL is not set: use `peerline serve` for embedded mode")
            redis = redis_connect.connect(settings)
        line = LineServices(settings, redis, transport=transport)
    app.extensions["peerline"] = line
    # The usual inbound SMS (signed, well formed, taken into Redis) is answered before Flask;
    # everything else reaches Flask as sent (peerline/webhooks/sms_door.py).
    app.wsgi_app = SmsDoor(  # type: ignore[method-assign]
        app.wsgi_app, line, _security(settings), app.config["MAX_CONTENT_LENGTH"]
    )
    if settings.proxy_hops:
        # Only the configured proxies' X-Forwarded-* are believed: the client address that
        # sign-in throttling counts is then the real one, and a client cannot forge it.
        hops = settings.proxy_hops
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops
        )

    from peerline.webhooks import calendar, groups, ops, sms, voice

    _ = settings.voice  # parsed here, once: a malformed voice setting fails at start-up
    app.register_blueprint(sms.bp)
    app.register_blueprint(voice.bp)
    app.register_blueprint(calendar.bp)
    app.register_blueprint(groups.bp)
    app.register_blueprint(ops.bp)
    if settings.embedded and settings.simulator:
        from peerline import simulator

        app.register_blueprint(simulator.bp)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        # Twilio and people alike get the reason, never an HTML page or a stack trace.
        return jsonify(error=exc.name, reason=exc.description), exc.code or 500

    security = _security(settings)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        # A view may set its own (a stricter policy, say): only the missing ones are added.
        present = {name.lower() for name in response.headers.keys()}
        response.headers.extend([(k, v) for k, v in security if k.lower() not in present])
        return response

    @app.after_request
    def _count_webhook(response: Response) -> Response:
        req = current_request()  # each read through the proxy costs about 1 us
        if req.path.startswith(WEBHOOKS):
            outcome = g.get("webhook_outcome") or _OUTCOMES.get(response.status_code, "other")
            metrics.webhook_answered(req.endpoint or "none", outcome)
        return response

    @app.before_request
    def _no_nul() -> None:
        # PostgreSQL cannot store a NUL character and no person types one: refuse it at the
        # door, in the path, the query string or a form, rather than fail deep inside (500).
        # Every webhook passes here: one look at each part, the query only when there is one,
        # the form only when the view does not check it itself (Twilio's webhooks do).
        req = current_request()
        if (
            "\x00" in req.path
            or (req.query_string and _holds_nul(req.args))
            or (
                req.mimetype in FORMS
                and not checks_fields(app.view_functions.get(req.endpoint or ""))
                and _holds_nul(req.form)
            )
        ):
            abort(400, description="the request holds a NUL character")

    @app.get("/healthz")
    def _health() -> Response:
        return jsonify(status="ok")

    logging.getLogger("peerline").setLevel(logging.INFO)
    # Last: the console exempts every webhook blueprint registered above from CSRF.
    from peerline import console

    console.init_app(app)
    return app
