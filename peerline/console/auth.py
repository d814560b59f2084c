"""Coordinators signing in and out: argon2 passwords, throttled attempts, server-side sessions."""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
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
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from peerline.console.common import audit, line
from peerline.console.forms import LoginForm, SignOutForm
from peerline.service.models import ConsoleSession, Coordinator, utcnow

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
    session_token: str
    password_key: str
    role: str = "coordinator"
    transcripts: bool = False

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def get_id(self) -> str:
        """Return the id kept in the cookie: the account, its password's key, its session."""
        return f"{self.id}.{self.password_key}.{self.session_token}"

    @property
    def is_admin(self) -> bool:
        """Say whether this account manages accounts (and does all a coordinator does)."""
        return self.role == ADMIN


ADMIN, COORDINATOR = "admin", "coordinator"
ROLES = (ADMIN, COORDINATOR)
# A session lasts this long from sign-in, however busy, as the cookie's own signature does.
SESSION_LIFETIME = timedelta(hours=12)
# How stale `last_seen_at` may get before a request writes it again.
SEEN_EVERY = timedelta(minutes=1)


def session_key(password_hash: str) -> str:
    """Return a short digest of the password hash, so a reset out of band ends sessions too."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(db: Session, coordinator_id: int) -> str:
    """Open a server-side session for an account; return the token for its cookie."""
    token = secrets.token_urlsafe(32)
    moment = utcnow()
    db.add(
        ConsoleSession(
            id=_digest(token), coordinator_id=coordinator_id, created_at=moment, last_seen_at=moment
        )
    )
    return token


def end_sessions(db: Session, coordinator_id: int, reason: str, *, keep: str | None = None) -> int:
    """End an account's open sessions (all but the one `keep` names); return how many."""
    query = update(ConsoleSession).where(
        ConsoleSession.coordinator_id == coordinator_id, ConsoleSession.ended_at.is_(None)
    )
    if keep is not None:
        query = query.where(ConsoleSession.id != _digest(keep))
    result = db.execute(query.values(ended_at=utcnow(), end_reason=reason))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def end_session(db: Session, token: str, reason: str) -> None:
    """End one session, named by its token."""
    db.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == _digest(token), ConsoleSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
    )


@login_manager.user_loader
def load_user(user_id: str) -> CoordinatorUser | None:
    """Return the coordinator whose open session the cookie names, checked on every request."""
    raw_id, _, rest = user_id.partition(".")
    key, _, token = rest.partition(".")
    if not (raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 9) or not token:
        return None
    if len(token) > 100:
        return None
    now = utcnow()
    with line().db.session() as db:
        held = db.get(ConsoleSession, _digest(token))
        if held is None or held.ended_at is not None or held.coordinator_id != int(raw_id):
            return None
        if held.created_at < now - SESSION_LIFETIME:
            return None
        row = db.get(Coordinator, held.coordinator_id)
        if row is None or not row.active:
            return None
        if not hmac.compare_digest(session_key(row.password_hash), key):
            return None
        if held.last_seen_at < now - SEEN_EVERY:
            held.last_seen_at = now
        return CoordinatorUser(
            row.id, row.email, token, session_key(row.password_hash), row.role, row.transcripts
        )


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


# Count one sign-in attempt, atomically, before the password is checked: concurrent attempts
# each take a place, so none slips past the count. KEYS[1] counts, KEYS[2] holds when the next
# attempt may come; ARGV: free attempts, window (s), now (ms), base delay (ms), max delay (ms).
# Returns 0 when the attempt may go on, else the milliseconds to wait.
_ATTEMPT = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local free, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local now, base, cap = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if count >= free then
  local next_at = tonumber(redis.call('GET', KEYS[2]) or '0')
  if now < next_at then
    return next_at - now
  end
end
count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], window)
if count >= free then
  local delay = math.min(base * 2 ^ (count - free), cap)
  redis.call('SET', KEYS[2], now + delay, 'PX', window * 1000)
end
return 0
"""


# Count in a window that starts with the first count: INCR, and EXPIRE only then, atomically.
_COUNT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return {count, redis.call('TTL', KEYS[1])}
"""


class LoginThrottle:
    """Brake sign-in attempts per account and per address, separately, in Redis.

    An account under attack gets slower, never closed: after a few attempts each further one
    waits a doubling delay (at most a minute), whoever makes it, so the person it belongs to
    gets in within a minute of the attack's last try. An address trying too many times in the
    window (any emails, known or not) is refused until the window ends. Attempts are counted
    atomically before the password is checked, so concurrent ones cannot race past a limit.
    Emails are kept as keyed digests, never in the clear.
    """

    PREFIX = "peerline:console:login"

    def __init__(
        self,
        redis: Redis,
        limit: int,
        window_seconds: int,
        key: bytes,
        *,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
    ) -> None:
        self.redis = redis
        self.limit = limit
        self.window = window_seconds
        self.key = key
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._script = redis.register_script(_ATTEMPT)
        self._count = redis.register_script(_COUNT)

    def _account(self, email: str) -> tuple[str, str]:
        who = hmac.new(self.key, email.encode(), hashlib.sha256).hexdigest()[:32]
        return f"{self.PREFIX}:account:{who}", f"{self.PREFIX}:account-next:{who}"

    def _address(self, address: str) -> str:
        return f"{self.PREFIX}:address:{address[:64]}"

    def address_wait(self, address: str) -> int:
        """Count an attempt from an address; return seconds to wait (0: go on)."""
        count, ttl = self._count(keys=[self._address(address)], args=[self.window])
        if int(count) > self.limit * 4:
            return max(int(ttl), 1)
        return 0

    def account_wait(self, email: str) -> float:
        """Count an attempt on a known account; return seconds to wait (0: go on)."""
        counter, next_at = self._account(email)
        waited = self._script(
            keys=[counter, next_at],
            args=[
                self.limit,
                self.window,
                int(time.time() * 1000),
                int(self.base_delay * 1000),
                int(self.max_delay * 1000),
            ],
        )
        return float(waited) / 1000

    def succeeded(self, email: str) -> None:
        """Forget an account's attempts after a good sign-in."""
        self.redis.delete(*self._account(email))


def throttle() -> LoginThrottle:
    """Return the throttle for the running app."""
    config = current_app.config
    return LoginThrottle(
        line().redis,
        limit=int(config["CONSOLE_LOGIN_LIMIT"]),
        window_seconds=int(config["CONSOLE_LOGIN_WINDOW_SECONDS"]),
        key=str(current_app.secret_key).encode(),
        base_delay=float(config["CONSOLE_LOGIN_DELAY_SECONDS"]),
    )


# zxcvbn's score (0-4): 3 is "safely unguessable: moderate protection from offline attacks".
MIN_STRENGTH = 3


def password_problem(password: str, email: str = "") -> str | None:
    """Return why a new password is too weak, or None; strength by zxcvbn, not length only."""
    from zxcvbn import zxcvbn

    if len(password) < 12:
        return "Use at least 12 characters."
    # The estimator's time grows with length; the first 100 characters decide well enough.
    result = zxcvbn(password[:100], user_inputs=[email, *email.split("@"), "peerline"])
    if int(result["score"]) >= MIN_STRENGTH:
        return None
    warning = str(result["feedback"].get("warning") or "")
    advice = warning.rstrip(".") + ". " if warning else ""
    return f"{advice}Choose a password that is harder to guess: a few unrelated words work well."


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


def client_address() -> str:
    """Return the client's address: the peer's, or as the configured proxies passed it on."""
    return (request.remote_addr or "unknown")[:64]


def _wait_message(seconds: float) -> str:
    if seconds < 90:
        whole = max(1, round(seconds))
        return f"Too many sign-in attempts. Try again in {whole} second{'s' if whole != 1 else ''}."
    minutes = round(seconds / 60)
    return f"Too many sign-in attempts from this network. Try again in about {minutes} minutes."


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
    address = client_address()
    guard = throttle()
    with line().db.session() as db:
        row = db.scalar(select(Coordinator).where(Coordinator.email == email))
        try:
            # The address first (any email, known or not), then the account, if there is one.
            wait = guard.address_wait(address) or (guard.account_wait(email) if row else 0.0)
        except RedisError:
            # The counters are a brake, not a gate: argon2 stays slow without them.
            log.warning("login throttle unavailable; checking the password anyway")
            wait = 0
        if wait:
            audit(db, "sign_in.slowed", f"coordinator {email}"[:120], f"from {address}", who=email)
            form.form_errors.append(_wait_message(wait))
            response = render_template("console/login.html", form=form)
            return response, 429
        good = verify(row.password_hash if row else None, password)
        if not good or row is None or not row.active:
            audit(
                db,
                "sign_in.failed",
                f"coordinator {email}"[:120],
                f"from {address}",
                who=email or "unknown",
            )
            form.form_errors.append("That email and password do not match an active account.")
            return render_template("console/login.html", form=form), 401
        if hasher.check_needs_rehash(row.password_hash):
            row.password_hash = hasher.hash(password)
        token = start_session(db, row.id)
        key = session_key(row.password_hash)
        user = CoordinatorUser(row.id, row.email, token, key, row.role, row.transcripts)
        audit(db, "sign_in", f"coordinator {row.email}", f"from {address}", who=row.email)
    try:
        guard.succeeded(email)
    except RedisError:
        log.warning("login throttle unavailable; attempts not cleared")
    # A fresh session on sign-in, so nothing set before it (fixation) survives.
    session.clear()
    login_user(user)
    return redirect(_safe_next(request.args.get("next")))


@bp.post("/logout")
def logout() -> BaseResponse:
    """Sign the coordinator out, ending the session on the server too."""
    form = SignOutForm()
    if form.validate_on_submit() and current_user.is_authenticated:
        with line().db.session() as db:
            end_session(db, current_user.session_token, "signed_out")
            audit(db, "sign_out", f"coordinator {current_user.email}")
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("console.auth.login"))
