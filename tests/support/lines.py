"""Line files the tests load: small, with fictitious numbers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from peerline.service.linefile import DEMO_LINE_FILE

# The demo line file's groups, defined once there: the tests' line files end with them.
DEMO_GROUPS = DEMO_LINE_FILE[DEMO_LINE_FILE.index("groups:\n") :]

SAM = "+14165550101"
RIA = "+14165550102"
TEXTER = "+14165550199"
TEXTER_2 = "+14165550198"

# The smallest line file: Sam on Mondays, nine to five; tests add to it or change it.
SAM_MONDAYS = f"""\
timezone: America/Toronto
supporters:
  - name: Sam
    phone: "{SAM}"
    shifts:
      - {{days: [mon], start: "09:00", end: "17:00"}}
"""

# Sam is always on shift, so journeys do not depend on the hour the tests run.
ALWAYS_OPEN = f"""\
timezone: America/Toronto
supporters:
  - name: Sam
    phone: "{SAM}"
    languages: [en]
    shifts:
      - {{days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "24:00"}}
{DEMO_GROUPS}"""

# Two supporters always on: Sam speaks English, Ria Spanish and English.
TWO_ON = ALWAYS_OPEN.replace(
    "groups:",
    f"""  - name: Ria
    phone: "{RIA}"
    languages: [es, en]
    shifts:
      - {{days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "24:00"}}
groups:""",
    1,
)

# TWO_ON with Ria also the on-call coordinator, who hears the line's alerts.
ON_CALL = TWO_ON.replace(f'phone: "{RIA}"\n', f'phone: "{RIA}"\n    on_call: true\n')

# Nobody on shift, ever: Sam has no shifts at all.
NEVER_OPEN = f"""\
timezone: America/Toronto
supporters:
  - name: Sam
    phone: "{SAM}"
"""


ALL_WEEK_SHIFT = '      - {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "24:00"}'


def always_on(count: int, first_phone: int, capacity: Callable[[int], int] | None = None) -> str:
    """Return a line file with `count` supporters (Peer00, Peer01, ...) on shift all week,
    their numbers +1416555 followed by `first_phone`, `first_phone` + 1, ..."""
    rows = ["timezone: America/Toronto", "supporters:"]
    for n in range(count):
        rows += [f"  - name: Peer{n:02d}", f'    phone: "+1416555{first_phone + n}"']
        if capacity is not None:
            rows.append(f"    capacity: {capacity(n)}")
        rows += [
            "    shifts:",
            '      - {days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "24:00"}',
        ]
    return "\n".join(rows) + "\n"


def sam_covers(day: date) -> str:
    """Return a line file where Sam covers 10:00 to 14:00 on one day and Ria is on call."""
    return f"""\
timezone: America/Toronto
supporters:
  - name: Sam
    phone: "{SAM}"
    cover:
      - {{date: "{day}", start: "10:00", end: "14:00"}}
  - name: Ria
    phone: "{RIA}"
    on_call: true
"""
