"""Views of the line the flow tests step against: open with a short wait, or closed."""

from __future__ import annotations

from peerline.flows import texter

OPEN = texter.LineStatus(open_now=True, position=2, wait_minutes=5, groups="Group: Mon 1 PM")
CLOSED = texter.LineStatus(open_now=False, next_opening="tomorrow at 9:00 AM (EST)")
