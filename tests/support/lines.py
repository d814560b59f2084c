"""Line files the tests load: small, with fictitious numbers."""

from __future__ import annotations

from peerline.service.linefile import DEMO_LINE_FILE

# The demo line file's groups, defined once there: the tests' line files end with them.
DEMO_GROUPS = DEMO_LINE_FILE[DEMO_LINE_FILE.index("groups:\n") :]

SAM = "+14165550101"
RIA = "+14165550102"
TEXTER = "+14165550199"
TEXTER_2 = "+14165550198"

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

# Nobody on shift, ever: Sam has no shifts at all.
NEVER_OPEN = f"""\
timezone: America/Toronto
supporters:
  - name: Sam
    phone: "{SAM}"
"""
