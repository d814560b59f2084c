"""Personal data at rest: keyed hashes for look-up, ciphertext for reading back."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
from datetime import UTC, datetime

import phonenumbers
from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class BadPhoneNumber(ValueError):
    """A phone number that does not parse."""


def normalise_phone(raw: str, region: str = "US") -> str:
    """Return a phone number in E.164, or raise BadPhoneNumber."""
    return _normalised(raw, region)


# Every webhook parses two numbers, mostly the line's own and people already writing, at some
# 20 us each. Only numbers that parsed are kept (an exception is not cached), as many as a busy
# hour brings; the process holds each one anyway while it answers its webhook.
@functools.lru_cache(maxsize=4096)
def _normalised(raw: str, region: str) -> str:
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise BadPhoneNumber(f"{raw!r} is not a phone number") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise BadPhoneNumber(f"{raw!r} is not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret.encode()
    )


# A sealed entry: this mark (no Fernet token starts with it), a key id, a nonce, AES-GCM.
SEALED = b"s1:"
KEY_ID = 4
NONCE = 12


class Vault:
    """Hash and encrypt personal data with keys derived from the secret keys."""

    def __init__(self, secret_keys: list[str]) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is needed")
        # The first key writes; every key still reads, so keys can rotate without a migration.
        self._fernet = MultiFernet(
            [Fernet(base64.urlsafe_b64encode(_derive(k, b"peerline-encrypt"))) for k in secret_keys]
        )
        self._hash_keys = [_derive(k, b"peerline-lookup-hash") for k in secret_keys]
        # Sealed entries (see `seal`) name their key by a short id, so a rotation that moves
        # a key down the list still reads what it sealed.
        self._seal_keys: dict[bytes, AESGCM] = {}
        for k in secret_keys:
            key = _derive(k, b"peerline-seal")
            self._seal_keys.setdefault(hashlib.sha256(key).digest()[:KEY_ID], AESGCM(key))
        self._seal_id = next(iter(self._seal_keys))

    def lookup_hash(self, value: str) -> str:
        """Return the keyed hash, under the newest key, used to find a row by a phone number."""
        return hmac.new(self._hash_keys[0], value.encode(), hashlib.sha256).hexdigest()

    def lookup_hashes(self, value: str) -> list[str]:
        """Return the value's hash under every key, to find rows not yet re-keyed."""
        return [hmac.new(k, value.encode(), hashlib.sha256).hexdigest() for k in self._hash_keys]

    def encrypt(self, value: str) -> str:
        """Return the ciphertext of a text."""
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str | bytes) -> str:
        """Return the text of a ciphertext (as stored, or as Redis returns it)."""
        raw = token if isinstance(token, bytes) else token.encode()
        try:
            return self._fernet.decrypt(raw).decode()
        except InvalidToken as exc:
            raise ValueError("ciphertext was not written with any known key") from exc

    def seal(self, value: str) -> bytes:
        """Return the ciphertext of a text that lives seconds, not years (a queued entry)."""
        # AES-GCM in one call: a fifth of Fernet's cost on the webhook (no base64, no
        # separate HMAC, no timestamp). The entry is Fernet-encrypted again when it is stored.
        nonce = os.urandom(NONCE)
        box = self._seal_keys[self._seal_id]
        return SEALED + self._seal_id + nonce + box.encrypt(nonce, value.encode(), None)

    def unseal(self, token: str | bytes) -> str:
        """Return the text of a sealed entry, or of a Fernet one (written before seals)."""
        raw = token if isinstance(token, bytes) else token.encode()
        if not raw.startswith(SEALED):
            return self.decrypt(raw)
        head = len(SEALED) + KEY_ID
        box = self._seal_keys.get(raw[len(SEALED) : head])
        if box is None:
            raise ValueError("ciphertext was not written with any known key")
        try:
            return box.decrypt(raw[head : head + NONCE], raw[head + NONCE :], None).decode()
        except InvalidTag as exc:
            raise ValueError("sealed entry was altered or its key is not this one") from exc

    def written_at(self, token: str | bytes) -> datetime:
        """Return when a ciphertext was written (Fernet keeps the time in the token)."""
        raw = token if isinstance(token, bytes) else token.encode()
        try:
            return datetime.fromtimestamp(self._fernet.extract_timestamp(raw), UTC)
        except InvalidToken as exc:
            raise ValueError("ciphertext was not written with any known key") from exc

    def rotate(self, token: str) -> str:
        """Return the ciphertext re-encrypted under the newest key."""
        return self._fernet.rotate(token.encode()).decode()


def mask_phone(e164: str) -> str:
    """Return a number with all but its last two digits hidden, for coordinators' lists."""
    return "•" * max(len(e164) - 3, 0) + e164[-2:]
