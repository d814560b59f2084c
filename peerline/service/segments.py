"""Count SMS segments the way carriers bill them: GSM-7 or UCS-2."""

from __future__ import annotations

# GSM 03.38 basic character set, and the extension table whose characters cost two septets.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


def is_gsm7(text: str) -> bool:
    """Say whether every character of the text has a GSM-7 encoding."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text)


def count(text: str) -> int:
    """Return how many segments the text is sent as."""
    if is_gsm7(text):
        units = sum(2 if ch in GSM7_EXTENDED else 1 for ch in text)
        single, part = 160, 153
    else:
        # UCS-2 counts UTF-16 code units: an emoji outside the BMP takes two.
        units = len(text.encode("utf-16-le")) // 2
        single, part = 70, 67
    if units <= single:
        return 1
    return -(-units // part)


#: The longest body Twilio takes in one message (longer is refused: error 21617).
MAX_BODY = 1600


def split_body(text: str, limit: int = MAX_BODY) -> list[str]:
    """Return a text in parts Twilio takes (at most `limit` characters), cut at a space in the
    second half of a part where there is one: a relayed 1,600-character text with its sender's
    name before it is one character too long."""
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind(" ", limit // 2, limit + 1)
        if cut <= 0:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    parts.append(text)
    return parts
