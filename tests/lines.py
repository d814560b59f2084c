"""Line files the tests load: small, with fictitious numbers."""

from __future__ import annotations

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
groups:
  - name: Online peer support group
    days: [mon, fri]
    start: "13:00"
    minutes: 60
    skip_holidays: CA-ON
    join: "https://example.org/groups"
"""

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
