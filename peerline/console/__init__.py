"""The coordinator console: supporters, rota, live queue, conversations, reports, audit log.

One blueprint, `bp`, under `/console`, made of a blueprint per part. Every page needs a signed-in
coordinator unless it is listed in `PUBLIC_ENDPOINTS`, so a new page is protected by default.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Flask, abort, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from peerline.console import (
    accounts,
    audit,
    auth,
    blocklist,
    callbacks,
    conversations,
    crisis_review,
    dashboard,
    debriefs,
    group_pages,
    reports,
    rota,
    supporters,
)

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    static_folder="../static/console",
    static_url_path="/static",
)
for part in (auth, dashboard, supporters, rota, conversations, reports, audit, crisis_review):
    bp.register_blueprint(part.bp)
for part in (blocklist, callbacks, group_pages, debriefs):
    bp.register_blueprint(part.bp)
bp.register_blueprint(accounts.own)
bp.register_blueprint(accounts.bp)

csrf = CSRFProtect()

PUBLIC_ENDPOINTS = frozenset({"console.static", "console.auth.login"})
# Pages only an admin opens (accounts), and those that need the transcript permission.
ADMIN_PREFIX = "console.accounts."
TRANSCRIPT_ENDPOINTS = frozenset(
    {
        "console.conversations.open_transcript",
        "console.callbacks.listen",
        "console.callbacks.recording",
    }
)

# Scripts and styles come from our own files only; charts are inline SVG markup, not styles.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)

# Blueprints that Twilio (or the simulator standing in for it) posts to: signed, not CSRF'd.
WEBHOOK_BLUEPRINTS = frozenset({"sms", "voice", "simulator"})


@bp.before_request
def _require_coordinator() -> BaseResponse | None:
    """Refuse every console page to anyone not signed in (but sign-in), or without the role."""
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        response: BaseResponse = auth.login_manager.unauthorized()
        return response
    if endpoint.startswith(ADMIN_PREFIX) and not current_user.is_admin:
        abort(403, description="Only an admin manages accounts.")
    if endpoint in TRANSCRIPT_ENDPOINTS and not current_user.transcripts:
        abort(403, description="Your account may not open transcripts. An admin can allow it.")
    return None


@bp.after_request
def _security_headers(response: BaseResponse) -> BaseResponse:
    """Keep console pages out of caches and frames, and scripts to our own."""
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    # Same-origin, not no-referrer: CSRF checks over HTTPS compare the Referer with the host.
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "console.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(CSRFError)
def _csrf_error(error: CSRFError) -> tuple[str, int]:
    """Explain an expired or missing form token instead of a bare 400."""
    return (
        render_template(
            "console/error.html",
            code=400,
            title="This form has expired",
            message="The page was open too long or came from elsewhere. Go back, reload the "
            "page, and try again.",
        ),
        400,
    )


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> tuple[str, int]:
    """Show console errors as pages, not JSON."""
    return (
        render_template(
            "console/error.html",
            code=error.code or 500,
            title=error.name,
            message=error.description or "",
        ),
        error.code or 500,
    )


# (endpoint, label, prefix marking the current section, group): the tab bar shows the
# groups in this order; on a narrow screen it wraps by group instead of scrolling the page.
NAVIGATION = (
    ("console.dashboard.index", "Dashboard", "console.dashboard.", "Now"),
    ("console.conversations.index", "Conversations", "console.conversations.", "Now"),
    ("console.callbacks.index", "Call-backs", "console.callbacks.", "Now"),
    ("console.supporters.index", "Supporters", "console.supporters.", "People"),
    ("console.rota.index", "Rota", "console.rota.", "People"),
    ("console.rota.coverage", "Coverage", "console.rota.coverage", "People"),
    ("console.group_pages.index", "Groups", "console.group_pages.", "People"),
    ("console.blocklist.index", "Blocklist", "console.blocklist.", "Safety"),
    ("console.crisis_review.index", "Crisis review", "console.crisis_review.", "Safety"),
    ("console.debriefs.index", "Debriefs", "console.debriefs.", "Safety"),
    ("console.reports.index", "Reports", "console.reports.", "Records"),
    ("console.audit.index", "Audit log", "console.audit.", "Records"),
    ("console.account.index", "Account", "console.account.", "You"),
    ("console.accounts.list_accounts", "Accounts", "console.accounts.", "You"),
)


@bp.context_processor
def _navigation() -> dict[str, object]:
    """Give every console page its navigation, with the current section marked."""
    here = request.endpoint or ""
    # The longest matching prefix wins, so the coverage page is not also "Rota".
    matches = [prefix for _, _, prefix, _ in NAVIGATION if here.startswith(prefix)]
    best = max(matches, key=len, default=None)
    admin = bool(getattr(current_user, "is_admin", False))
    return {
        "navigation": [
            (url_for(endpoint), label, prefix == best, group)
            for endpoint, label, prefix, group in NAVIGATION
            if admin or prefix != ADMIN_PREFIX
        ]
    }


def _to_console() -> BaseResponse:
    """Send a visitor to the line's root on to the console."""
    return redirect(url_for("console.dashboard.index"))


def init_app(app: Flask) -> None:
    """Register the console and bind sign-in and CSRF protection to the app.

    Call it after every other blueprint is registered: it exempts the webhook and simulator
    blueprints from CSRF, since Twilio signs those requests instead.
    """
    app.config.setdefault("CONSOLE_LOGIN_LIMIT", 5)
    app.config.setdefault("CONSOLE_LOGIN_WINDOW_SECONDS", 15 * 60)
    # The first delay an account under attack imposes; it doubles, up to a minute.
    app.config.setdefault("CONSOLE_LOGIN_DELAY_SECONDS", 1.0)
    app.config.setdefault("CONSOLE_REFRESH_SECONDS", 5)
    # A form left open over a long shift should still submit; the token is tied to the session.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 12 * 3600)
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    app.config.setdefault("REMEMBER_COOKIE_SECURE", app.config.get("SESSION_COOKIE_SECURE", False))
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    if app.config["PERMANENT_SESSION_LIFETIME"] == timedelta(days=31):
        # Flask's default month is long for a console that opens transcripts: a signed-in
        # session (its signature, not only its cookie) expires twelve hours after sign-in.
        app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=12)
    app.register_blueprint(bp)
    if not any(rule.rule == "/" for rule in app.url_map.iter_rules()):
        app.add_url_rule("/", "root", _to_console)
    auth.login_manager.init_app(app)
    csrf.init_app(app)
    for name, blueprint in app.blueprints.items():
        prefix = blueprint.url_prefix or ""
        if (
            name in WEBHOOK_BLUEPRINTS
            or prefix.startswith("/webhooks")
            or blueprint.import_name.startswith("peerline.webhooks.")
        ):
            csrf.exempt(blueprint)
