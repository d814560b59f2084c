"""Settings read once from the environment, strictly, with embedded defaults."""

from __future__ import annotations

import math
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from peerline.service.privacy import BadPhoneNumber, normalise_phone
from peerline.service.ratelimit import parse_rates
from peerline.service.rota import parse_time

VOICE_ENV = {
    "PEERLINE_VOICE_STRATEGY": "voice_strategy",
    "PEERLINE_VOICE_RING_SECONDS": "voice_ring_seconds",
    "PEERLINE_VOICE_MAX_ROUNDS": "voice_max_rounds",
    "PEERLINE_CRISIS_LINE_NUMBER": "voice_crisis_number",
    "PEERLINE_VOICE_CALLS_DURING_CHAT": "voice_calls_during_chat",
    "PEERLINE_VOICEMAIL_SECONDS": "voice_voicemail_seconds",
    "PEERLINE_VOICE_WHISPER_SECONDS": "voice_whisper_seconds",
    "PEERLINE_VOICE_MESSAGES": "voice_messages_file",
    "PEERLINE_VOICE_MISSED_CALL_TEXT": "voice_missed_call_text",
}


# The topic words of a supporter's #note (PEERLINE_NOTE_TOPICS): short, so a phone can send
# them, and together within NOTE_TOPICS_MAX characters, so the after-chat text stays two SMS.
NOTE_TOPICS_MAX = 100
DEFAULT_NOTE_TOPICS = (
    "lonely",
    "family",
    "partner",
    "work",
    "money",
    "health",
    "grief",
    "anxiety",
    "housing",
    "substance",
    "selfharm",
    "other",
)


class SettingsError(ValueError):
    """A malformed setting: raised at start-up, never at 3 a.m."""


# Twilio's test credentials accept any auth token; embedded mode signs the simulator's requests
# with this token, which is never valid anywhere else.
EMBEDDED_AUTH_TOKEN = "peerline-embedded-simulator-token"
EMBEDDED_ACCOUNT_SID = "AC" + "0" * 32
EMBEDDED_LINE_NUMBER = "+15550100000"


@dataclass(frozen=True)
class Settings:
    """Every setting the line reads, already parsed and checked."""

    database_url: str
    redis_url: str | None
    secret_key: str
    public_base_url: str
    twilio_account_sid: str
    twilio_auth_token: str
    twilio_phone_number: str
    twilio_relay_numbers: tuple[str, ...] = ()
    twilio_api_base_url: str | None = None
    line_timezone: str = "America/Toronto"
    offer_timeout_seconds: int = 120
    instance_path: str = "instance"
    default_region: str = "US"
    # Keys for personal data at rest, newest first: the first writes, all read (rotation).
    encryption_keys: tuple[str, ...] = ()
    # A coordinator's YAML laid over the packaged texts (crisis resources, wording).
    messages_file: str | None = None
    crisis_file: str | None = None
    crisis_repeat_minutes: int = 60
    retention_days: int = 30
    flood_per_minute: int = 12
    # A queued texter's place in line is repeated to them at most once in this many minutes.
    still_waiting_minutes: int = 10
    # Segments per second per sender type, shared by every worker ("long_code=1,...").
    send_rates: tuple[tuple[str, float], ...] = ()
    # A Twilio Messaging Service to send the line's texts through (its pool picks the number,
    # sticky sender keeps each person on one), and the pool's combined segments per second.
    twilio_messaging_service_sid: str | None = None
    service_rate: float | None = None
    # Reminders and timers.
    group_reminder_minutes: int = 120
    shift_reminder_minutes: int = 60
    quiet_hours: tuple[int, int] = (21 * 60, 8 * 60)
    reply_nudge_minutes: int = 10
    idle_close_minutes: int = 60
    # After a chat flagged for safety its supporter gets no offer for this long (0: none)
    # unless they text #ready; and the topic words a supporter's #note may name.
    crisis_pause_minutes: int = 5
    note_topics: tuple[str, ...] = DEFAULT_NOTE_TOPICS
    # Reliability knobs: how old unsent work must be before the sweep re-enqueues it, how
    # long a person's send lock lasts (longer than the API client's 30 s time-out), and the
    # pauses between retries of a send that failed for a passing reason.
    sweep_stale_seconds: int = 30
    send_lock_seconds: int = 60
    send_retry_seconds: tuple[int, ...] = (2, 5, 15, 60, 300)
    # Routing: "single" offers one supporter at a time; "several" offers up to
    # offer_fanout at once and the first #take wins.
    offer_strategy: str = "single"
    offer_fanout: int = 3
    auto_away_after: int = 3
    shift_chat_cap: int = 8
    wait_update_seconds: int = 600
    unmatched_alert_seconds: int = 900
    # True when no Twilio credentials are set: the simulator stands in for the phone network.
    embedded: bool = True
    # The phone simulator and embedded mode: only `peerline serve` sets this, on loopback.
    simulator: bool = False
    # Proxies in front of the web process whose X-Forwarded-* headers are trusted (ProxyFix).
    proxy_hops: int = 0
    # /metrics answers only when set, to `Authorization: Bearer <token>` (issue 20).
    metrics_token: str | None = None
    # `peerline worker` serves its own /metrics on this port when set (no token: bind note).
    worker_metrics_port: int | None = None
    testing: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Redis through Sentinel (REDIS_SENTINELS, REDIS_SENTINEL_MASTER): REDIS_URL then gives
    # only the database number and password. A text taken into Redis is acknowledged to Twilio
    # once a replica has it too, waiting at most redis_wait_ms (0: no replica to wait for).
    redis_sentinels: tuple[tuple[str, int], ...] = ()
    redis_sentinel_master: str | None = None
    redis_wait_ms: int = 0
    # The Sentinels' own password (their `requirepass`), not the master's (REDIS_URL's).
    redis_sentinel_password: str | None = None

    @property
    def tz(self) -> ZoneInfo:
        """Return the line's time zone."""
        return ZoneInfo(self.line_timezone)

    @cached_property
    def voice(self) -> VoiceSettings:
        """Return the voice line's settings, parsed from `extra` once, raising SettingsError."""
        return VoiceSettings.from_settings(self)

    def with_changes(self, **changes: Any) -> Settings:
        """Return a copy with some settings changed (for tests)."""
        return replace(self, **changes)


def _phone(name: str, value: str, region: str) -> str:
    try:
        return normalise_phone(value, region)
    except BadPhoneNumber as exc:
        # phonenumbers' own reason, when it gave one, says what to fix.
        why = f" ({exc.__cause__})" if exc.__cause__ is not None else ""
        raise SettingsError(f"{name}: {exc}{why}") from exc


def _url(name: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise SettingsError(f"{name}: {value!r} must be a URL starting with {' or '.join(schemes)}")
    return value.rstrip("/")


def _pause_minutes(value: str) -> int:
    """Parse PEERLINE_CRISIS_PAUSE_MINUTES: a whole number of minutes, 0 for no pause."""
    name = "PEERLINE_CRISIS_PAUSE_MINUTES"
    if not value.strip().isdigit():
        raise SettingsError(f"{name}: {value!r} must be a whole number of minutes (0 for none)")
    return int(value)


def _topics(value: str | None) -> tuple[str, ...]:
    """Parse PEERLINE_NOTE_TOPICS: comma-separated words of letters and hyphens, at most
    NOTE_TOPICS_MAX characters in all."""
    if not value or not value.strip():
        return DEFAULT_NOTE_TOPICS
    words = tuple(dict.fromkeys(part.strip().lower() for part in value.split(",") if part.strip()))
    bad = [w for w in words if not re.fullmatch(r"[a-z][a-z-]{1,19}", w)]
    if bad or not words or len(", ".join(words)) > NOTE_TOPICS_MAX:
        raise SettingsError(
            f"PEERLINE_NOTE_TOPICS: comma-separated words of 2-20 letters, {NOTE_TOPICS_MAX}"
            f" characters in all (not {', '.join(bad) or value!r})"
        )
    return words


def _positive_int(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise SettingsError(f"{name}: {value!r} is not a whole number") from exc
    if number <= 0:
        raise SettingsError(f"{name}: must be greater than zero, not {number}")
    return number


def _hops(value: str | None) -> int:
    try:
        hops = int(value or "0")
    except ValueError as exc:
        raise SettingsError(f"PEERLINE_PROXY_HOPS: {value!r} is not a whole number") from exc
    if not 0 <= hops <= 5:
        raise SettingsError(f"PEERLINE_PROXY_HOPS: must be between 0 and 5, not {hops}")
    return hops


def production_missing(environ: Mapping[str, str] | None = None) -> list[str]:
    """Return the variables a web process must have and lacks (Twilio and Redis)."""
    env = os.environ if environ is None else environ
    names = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_PHONE_NUMBER", "REDIS_URL")
    return [name for name in names if not env.get(name, "").strip()]


def _rates(value: str | None) -> tuple[tuple[str, float], ...]:
    try:
        rates = parse_rates(value or "")
    except ValueError as exc:
        raise SettingsError(f"PEERLINE_SEND_RATES: {exc}") from exc
    if any(rate <= 0 for rate in rates.values()):
        raise SettingsError("PEERLINE_SEND_RATES: every rate must be above zero")
    return tuple(sorted(rates.items()))


def _sentinels(value: str | None) -> tuple[tuple[str, int], ...]:
    found = []
    for part in (value or "").split(","):
        host, _, port = part.strip().rpartition(":")
        if not part.strip():
            continue
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(f"REDIS_SENTINELS: {part.strip()!r} is not host:port")
        found.append((host.strip("[]"), int(port)))
    return tuple(found)


def _wait_ms(value: str | None, sentinels: bool) -> int:
    if value is None:
        return 500 if sentinels else 0
    return 0 if value == "0" else _positive_int("REDIS_WAIT_MS", value)


def _service_rate(value: str | None) -> float | None:
    if not (value or "").strip():
        return None
    try:
        rate = float(str(value))
    except ValueError as exc:
        raise SettingsError(f"PEERLINE_SERVICE_RATE: not a number: {value!r}") from exc
    if not (rate > 0 and math.isfinite(rate)):
        raise SettingsError("PEERLINE_SERVICE_RATE: must be a positive number")
    return rate


def _quiet(value: str) -> tuple[int, int]:
    start, sep, end = value.partition("-")
    try:
        if not sep:
            raise ValueError(value)
        return parse_time(start.strip()), parse_time(end.strip())
    except ValueError as exc:
        raise SettingsError(f"PEERLINE_QUIET_HOURS: {value!r} must look like 21:00-08:00") from exc


def _existing_file(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if not Path(value).is_file():
        raise SettingsError(f"{name}: {value!r} is not a file")
    return value


def _secret_key(instance: Path) -> str:
    # A first run on embedded defaults keeps one random key in the instance folder, so
    # encrypted data and sessions survive a restart without the newcomer setting anything.
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def _secret_file(name: str, path: str) -> str:
    """Return a secret kept in a file (NAME_FILE, e.g. a compose secret): a password in a file
    is not shown by `podman inspect` or the process environment."""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from the environment, refusing malformed values."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str | None:
        value = env.get(name, "").strip()
        if not value and env.get(f"{name}_FILE", "").strip():
            value = _secret_file(name, env[f"{name}_FILE"].strip())
        return value or None

    instance = Path(get("PEERLINE_INSTANCE") or "instance").resolve()
    region = (get("PEERLINE_DEFAULT_REGION") or "US").upper()

    database_url = get("DATABASE_URL") or f"sqlite:///{instance / 'peerline.db'}"
    if database_url.startswith("postgres://"):
        # Heroku-style URLs name a scheme SQLAlchemy no longer accepts.
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgres://")
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url.removeprefix("postgresql://")
    if not database_url.startswith(("sqlite:", "postgresql+psycopg:")):
        raise SettingsError(f"DATABASE_URL: unsupported database {database_url.split(':')[0]!r}")

    redis_url = get("REDIS_URL")
    sentinels = _sentinels(get("REDIS_SENTINELS"))
    sentinel_master = get("REDIS_SENTINEL_MASTER")
    if bool(sentinels) != bool(sentinel_master):
        raise SettingsError("REDIS_SENTINELS and REDIS_SENTINEL_MASTER must be set together")
    if get("REDIS_SENTINEL_PASSWORD") and not sentinels:
        raise SettingsError("REDIS_SENTINEL_PASSWORD is for REDIS_SENTINELS, which is not set")
    if sentinels and redis_url is None:
        redis_url = f"redis://{sentinel_master}/0"  # the host part is not used with Sentinel
    if redis_url is not None:
        redis_url = _url("REDIS_URL", redis_url, ("redis", "rediss", "unix"))

    sid, token, number = (
        get("TWILIO_ACCOUNT_SID"),
        get("TWILIO_AUTH_TOKEN"),
        get("TWILIO_PHONE_NUMBER"),
    )
    given = [n for n, v in (("TWILIO_ACCOUNT_SID", sid), ("TWILIO_AUTH_TOKEN", token)) if v]
    if len(given) == 1:
        missing = {"TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"} - set(given)
        raise SettingsError(f"{missing.pop()} must be set together with {given[0]}")
    embedded = sid is None
    if sid is not None and not (sid.startswith("AC") and len(sid) == 34):
        raise SettingsError("TWILIO_ACCOUNT_SID: must be an account SID starting with AC")
    if not embedded and number is None:
        raise SettingsError("TWILIO_PHONE_NUMBER: required when Twilio credentials are set")

    line_number = _phone("TWILIO_PHONE_NUMBER", number or EMBEDDED_LINE_NUMBER, region)
    relays = tuple(
        _phone("TWILIO_RELAY_NUMBERS", part.strip(), region)
        for part in (get("TWILIO_RELAY_NUMBERS") or "").split(",")
        if part.strip()
    )

    tz_name = get("LINE_TIMEZONE") or "America/Toronto"
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SettingsError(f"LINE_TIMEZONE: {tz_name!r} is not a known time zone") from exc

    api_base = get("TWILIO_API_BASE_URL")
    if api_base is not None:
        api_base = _url("TWILIO_API_BASE_URL", api_base, ("http", "https"))

    port = get("PORT") or "5000"
    public = _url(
        "PUBLIC_BASE_URL", get("PUBLIC_BASE_URL") or f"http://localhost:{port}", ("http", "https")
    )

    strategy = (get("PEERLINE_OFFER_STRATEGY") or "single").lower()
    if strategy not in ("single", "several"):
        raise SettingsError(f"PEERLINE_OFFER_STRATEGY: {strategy!r} must be single or several")

    def whole(name: str, default: int) -> int:
        return _positive_int(name, get(name) or str(default))

    return Settings(
        offer_strategy=strategy,
        offer_fanout=whole("PEERLINE_OFFER_FANOUT", 3),
        auto_away_after=whole("PEERLINE_AUTO_AWAY_AFTER", 3),
        shift_chat_cap=whole("PEERLINE_SHIFT_CHAT_CAP", 8),
        wait_update_seconds=whole("PEERLINE_WAIT_UPDATE_SECONDS", 600),
        unmatched_alert_seconds=whole("PEERLINE_UNMATCHED_ALERT_SECONDS", 900),
        database_url=database_url,
        redis_url=redis_url,
        secret_key=get("SECRET_KEY") or _secret_key(instance),
        public_base_url=public,
        twilio_account_sid=sid or EMBEDDED_ACCOUNT_SID,
        twilio_auth_token=token or EMBEDDED_AUTH_TOKEN,
        twilio_phone_number=line_number,
        twilio_relay_numbers=relays,
        twilio_api_base_url=api_base,
        line_timezone=tz_name,
        offer_timeout_seconds=_positive_int(
            "OFFER_TIMEOUT_SECONDS", get("OFFER_TIMEOUT_SECONDS") or "120"
        ),
        instance_path=str(instance),
        default_region=region,
        encryption_keys=tuple(
            k.strip() for k in (get("PEERLINE_ENCRYPTION_KEYS") or "").split(",") if k.strip()
        ),
        messages_file=_existing_file("PEERLINE_MESSAGES", get("PEERLINE_MESSAGES")),
        crisis_file=_existing_file("PEERLINE_CRISIS_PHRASES", get("PEERLINE_CRISIS_PHRASES")),
        crisis_repeat_minutes=whole("PEERLINE_CRISIS_REPEAT_MINUTES", 60),
        retention_days=whole("PEERLINE_RETENTION_DAYS", 30),
        flood_per_minute=whole("PEERLINE_FLOOD_PER_MINUTE", 12),
        still_waiting_minutes=whole("PEERLINE_STILL_WAITING_MINUTES", 10),
        send_rates=_rates(get("PEERLINE_SEND_RATES")),
        twilio_messaging_service_sid=(get("TWILIO_MESSAGING_SERVICE_SID") or "").strip() or None,
        service_rate=_service_rate(get("PEERLINE_SERVICE_RATE")),
        group_reminder_minutes=whole("PEERLINE_GROUP_REMINDER_MINUTES", 120),
        shift_reminder_minutes=whole("PEERLINE_SHIFT_REMINDER_MINUTES", 60),
        quiet_hours=_quiet(get("PEERLINE_QUIET_HOURS") or "21:00-08:00"),
        reply_nudge_minutes=whole("PEERLINE_REPLY_NUDGE_MINUTES", 10),
        idle_close_minutes=whole("PEERLINE_IDLE_CLOSE_MINUTES", 60),
        crisis_pause_minutes=_pause_minutes(get("PEERLINE_CRISIS_PAUSE_MINUTES") or "5"),
        note_topics=_topics(get("PEERLINE_NOTE_TOPICS")),
        sweep_stale_seconds=whole("PEERLINE_SWEEP_STALE_SECONDS", 30),
        send_lock_seconds=whole("PEERLINE_SEND_LOCK_SECONDS", 60),
        send_retry_seconds=tuple(
            _positive_int("PEERLINE_SEND_RETRY_SECONDS", part.strip())
            for part in (get("PEERLINE_SEND_RETRY_SECONDS") or "2,5,15,60,300").split(",")
        ),
        embedded=embedded,
        proxy_hops=_hops(get("PEERLINE_PROXY_HOPS")),
        metrics_token=get("PEERLINE_METRICS_TOKEN") or None,
        worker_metrics_port=whole("PEERLINE_WORKER_METRICS_PORT", 1)
        if get("PEERLINE_WORKER_METRICS_PORT")
        else None,
        # Parsed strictly, once, into `Settings.voice` (VoiceSettings below).
        extra={key: value for env_name, key in VOICE_ENV.items() if (value := get(env_name))},
        redis_sentinels=sentinels,
        redis_sentinel_master=sentinel_master,
        redis_wait_ms=_wait_ms(get("REDIS_WAIT_MS"), bool(sentinels)),
        redis_sentinel_password=get("REDIS_SENTINEL_PASSWORD"),
    )


# The crisis line to transfer to by the line's country, as a full E.164 number: a three-digit
# code such as 988 may not route through the provider. US and Canada: the 988 Lifeline's
# ten-digit number (what is said stays "9 8 8").
CRISIS_NUMBERS = {"US": "+18002738255", "CA": "+18002738255"}


@dataclass(frozen=True)
class VoiceSettings:
    """The voice line's settings, parsed once from `Settings.extra` with defaults, strictly."""

    strategy: str = "ring_all"  # ring_all: up to ten at once; sequential: one after another
    ring_seconds: int = 20  # short enough that a personal voicemail does not answer first
    max_rounds: int = 3
    crisis_number: str = CRISIS_NUMBERS["US"]
    calls_during_chat: bool = False
    # Text a caller who hung up before leaving a message (off: they may not want a text).
    missed_call_text: bool = False
    voicemail_seconds: int = 120
    whisper_seconds: int = 8
    messages_file: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> VoiceSettings:
        """Return the voice settings, raising SettingsError for a malformed value."""
        extra: Mapping[str, Any] = settings.extra

        def number(key: str, default: int, low: int, high: int) -> int:
            value = extra.get(key, default)
            try:
                parsed = int(value)
            except (TypeError, ValueError) as exc:
                raise SettingsError(f"{key}: {value!r} is not a whole number") from exc
            if not low <= parsed <= high:
                raise SettingsError(f"{key}: must be between {low} and {high}, not {parsed}")
            return parsed

        strategy = str(extra.get("voice_strategy", cls.strategy)).lower().replace("-", "_")
        if strategy not in ("ring_all", "sequential"):
            raise SettingsError(f"voice_strategy: {strategy!r} must be ring_all or sequential")
        crisis = _crisis_number(extra.get("voice_crisis_number"), settings.default_region)
        during_chat = _flag(extra.get("voice_calls_during_chat", cls.calls_during_chat))
        messages = extra.get("voice_messages_file")
        return cls(
            strategy=strategy,
            # <Dial timeout> runs from 5 to 600 seconds.
            ring_seconds=number("voice_ring_seconds", cls.ring_seconds, 5, 600),
            max_rounds=number("voice_max_rounds", cls.max_rounds, 1, 20),
            crisis_number=crisis,
            calls_during_chat=during_chat,
            missed_call_text=_flag(extra.get("voice_missed_call_text", False)),
            voicemail_seconds=number("voice_voicemail_seconds", cls.voicemail_seconds, 10, 600),
            whisper_seconds=number("voice_whisper_seconds", cls.whisper_seconds, 3, 30),
            messages_file=str(messages) if messages else None,
        )


def _flag(value: Any) -> bool:
    """Return a yes/no setting, as written in the environment or a mapping."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _crisis_number(value: Any, region: str) -> str:
    """Return the crisis line's number in E.164, checked; by the line's country by default."""
    if value is None or not str(value).strip():
        default = CRISIS_NUMBERS.get(region.upper())
        if default is None:
            raise SettingsError(
                f"voice_crisis_number: no default crisis line for region {region!r}; "
                "set PEERLINE_CRISIS_LINE_NUMBER to its full number"
            )
        return default
    raw = str(value).strip()
    if not re.fullmatch(r"\+?[\d\s().-]{3,24}", raw):
        raise SettingsError(f"voice_crisis_number: {raw!r} is not a number to dial")
    try:
        parsed = phonenumbers.parse(raw, region.upper())
    except phonenumbers.NumberParseException as exc:
        raise SettingsError(f"voice_crisis_number: {raw!r} is not a number to dial") from exc
    if not phonenumbers.is_valid_number(parsed):
        # 988 and other short codes land here: they may not route from a provider's line.
        raise SettingsError(
            f"voice_crisis_number: {raw!r} is not a full phone number; use the crisis "
            "line's ten-digit (E.164) number, like +18002738255 for 988 in the US and Canada"
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
