"""Coordinators signing in and out: argon2 passwords, throttled failures, audited sessions."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, current_user, login_user, logout_user
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from peerline.console.common import audit, line
from peerline.console.forms import LoginForm, SignOutForm
from peerline.service.models import Coordinator

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)
login_manager = LoginManager()
login_manager.login_view = "console.auth.login"
login_manager.login_message = "Please sign in to use the console."
login_manager.login_message_category = "info"
# A session stolen to another browser or network is dropped rather than trusted.
login_manager.session_protection = "strong"

hasher = PasswordHasher()


@dataclass(frozen=True)
class CoordinatorUser:
    """The signed-in coordinator, as Flask-Login sees them: plain values, no ORM row."""

    id: int
    email: str
    session_key: str

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        """Return the id kept in the session; it changes when the password does."""
        return f"{self.id}.{self.session_key}"


def session_key(password_hash: str) -> str:
    """Return a short digest of the password hash, so a password reset ends old sessions."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


@login_manager.user_loader
def load_user(user_id: str) -> CoordinatorUser | None:
    """Return the coordinator a session names, if they still exist, are active, and match."""
    raw_id, _, key = user_id.partition(".")
    if not raw_id.isascii() or not raw_id.isdigit() or len(raw_id) > 9:
        return None
    with line().db.session() as db:
        row = db.get(Coordinator, int(raw_id))
        if row is None or not row.active:
            return None
        if not hmac.compare_digest(session_key(row.password_hash), key):
            return None
        return CoordinatorUser(row.id, row.email, key)


@login_manager.unauthorized_handler
def unauthorized() -> BaseResponse:
    """Send a browser to the sign-in page; tell a script it needs to sign in."""
    if request.headers.get("X-Requested-With") == "fetch" or request.accept_mimetypes.best == (
        "application/json"
    ):
        return Response('{"error": "sign in required"}', status=401, mimetype="application/json")
    if request.method == "GET":
        flash(login_manager.login_message, "info")
        return redirect(url_for("console.auth.login", next=request.full_path.rstrip("?")))
    return redirect(url_for("console.auth.login"))


class LoginThrottle:
    """Count failed sign-ins per email and address, per email and per address, in Redis.

    Each counter lives for a window from its first failure; reaching the limit locks that
    combination until the window ends. Emails are kept as keyed digests, never in the clear.
    """

    def __init__(self, redis: Redis, limit: int, window_seconds: int, key: bytes) -> None:
        self.redis = redis
        self.limit = limit
        self.window = window_seconds
        self.key = key

    def _keys(self, email: str, address: str) -> list[tuple[str, int]]:
        who = hmac.new(self.key, email.encode(), hashlib.sha256).hexdigest()[:32]
        prefix = "peerline:console:login-failures"
        # One address may try several emails, and one email be tried from many addresses:
        # each pair gets the tight limit, each side alone a looser one.
        return [
            (f"{prefix}:pair:{who}:{address}", self.limit),
            (f"{prefix}:email:{who}", self.limit * 4),
            (f"{prefix}:address:{address}", self.limit * 4),
        ]

    def locked_for(self, email: str, address: str) -> int:
        """Return the seconds until sign-in is allowed again, or 0 when it is allowed now."""
        keys = self._keys(email, address)
        counts = self.redis.mget([key for key, _ in keys])
        waits = [
            max(int(self.redis.ttl(key)), 1)
            for (key, limit), count in zip(keys, counts, strict=True)
            if count is not None and int(count) >= limit
        ]
        return max(waits, default=0)

    def failed(self, email: str, address: str) -> bool:
        """Count one failure; return True when it locks sign-in."""
        locked = False
        for key, limit in self._keys(email, address):
            pipe = self.redis.pipeline()
            pipe.incr(key)
            pipe.ttl(key)
            count, ttl = pipe.execute()
            if int(ttl) < 0:
                # The first failure starts the window; a counter must never outlive it.
                self.redis.expire(key, self.window)
            locked = locked or int(count) == limit
        return locked

    def succeeded(self, email: str, address: str) -> None:
        """Forget the pair's failures after a good sign-in."""
        self.redis.delete(self._keys(email, address)[0][0])


def throttle() -> LoginThrottle:
    """Return the throttle for the running app."""
    config = current_app.config
    return LoginThrottle(
        line().redis,
        limit=int(config["CONSOLE_LOGIN_LIMIT"]),
        window_seconds=int(config["CONSOLE_LOGIN_WINDOW_SECONDS"]),
        key=str(current_app.secret_key).encode(),
    )


@functools.cache
def _dummy_hash() -> str:
    return hasher.hash("peerline: no such coordinator")


def verify(password_hash: str | None, password: str) -> bool:
    """Check a password against an argon2 hash, taking as long when there is no hash."""
    try:
        return hasher.verify(password_hash or _dummy_hash(), password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def _safe_next(target: str | None) -> str:
    """Return where to go after signing in: only a console path on this site."""
    fallback = url_for("console.dashboard.index")
    if not target:
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console/"):
        return fallback
    if parts.path.rstrip("/") in ("/console/login", "/console/logout") or "\\" in target:
        return fallback
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> BaseResponse | tuple[str, int] | str:
    """Show the sign-in form and sign a coordinator in."""
    if current_user.is_authenticated:
        return redirect(url_for("console.dashboard.index"))
    form = LoginForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("console/login.html", form=form), status
    email = (form.email.data or "").strip().lower()
    password = form.password.data or ""
    address = request.remote_addr or "unknown"
    guard = throttle()
    try:
        wait = guard.locked_for(email, address)
    except RedisError:
        # The counters are a brake, not a gate: argon2 stays slow without them.
        log.warning("login throttle unavailable; checking the password anyway")
        wait = 0
    if wait:
        minutes = max(1, round(wait / 60))
        form.form_errors.append(
            f"Too many failed sign-ins. Try again in about {minutes} minute"
            f"{'s' if minutes != 1 else ''}."
        )
        return render_template("console/login.html", form=form), 429
    with line().db.session() as db:
        row = db.scalar(select(Coordinator).where(Coordinator.email == email))
        good = verify(row.password_hash if row else None, password)
        if not good or row is None or not row.active:
            locked = False
            try:
                locked = guard.failed(email, address)
            except RedisError:
                log.warning("login throttle unavailable; failure not counted")
            audit(
                db,
                "sign_in.locked" if locked else "sign_in.failed",
                f"coordinator {email}"[:120],
                f"from {address}",
                who=email or "unknown",
            )
            form.form_errors.append("That email and password do not match an active account.")
            return render_template("console/login.html", form=form), 401
        if hasher.check_needs_rehash(row.password_hash):
            row.password_hash = hasher.hash(password)
        user = CoordinatorUser(row.id, row.email, session_key(row.password_hash))
        audit(db, "sign_in", f"coordinator {row.email}", f"from {address}", who=row.email)
    try:
        guard.succeeded(email, address)
    except RedisError:
        log.warning("login throttle unavailable; failures not cleared")
    # A fresh session on sign-in, so nothing set before it (fixation) survives.
    session.clear()
    login_user(user)
    return redirect(_safe_next(request.args.get("next")))


@bp.post("/logout")
def logout() -> BaseResponse:
    """Sign the coordinator out."""
    form = SignOutForm()
    if form.validate_on_submit() and current_user.is_authenticated:
        with line().db.session() as db:
            audit(db, "sign_out", f"coordinator {current_user.email}")
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("console.auth.login"))
