"""Peerline's benchmarks: each measures the line as its users feel it, against a baseline.

Run them all with ``python -m benchmarks`` (full figures, a few minutes) or
``python -m benchmarks --smoke`` (seconds; what CI runs to check that they still work).
Every benchmark starts its own throw-away PostgreSQL and Redis (``tests/support/servers.py``)
and, where it needs one, a local Twilio (``tests/support/fake_twilio.py``); nothing leaves the
loopback interface.

- ``webhooks``: signed inbound SMS through gunicorn vs a bare Flask route under the same gunicorn.
- ``first_offer``: from the YES webhook to the offer at Twilio vs an empty RQ job's round trip.
- ``matching``: one matching round with 10 to 10,000 supporters and 10 to 100,000 waiting.
- ``fanout``: 10,000 reminders written and enqueued, then sent through the shared rate limiter.
- ``memory``: resident memory of a web worker and a job worker after warm-up.
"""
