"""The webhook benchmark's baseline: the least a Flask app can do for Twilio under gunicorn.

One route answers every POST to /webhooks/sms with the same empty TwiML that Peerline answers,
without reading the form, checking the signature or touching a database. Served with the same
gunicorn command as the line, it is the fastest the stack can go on this machine.
"""

from __future__ import annotations

from flask import Flask, Response

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'


def create_app() -> Flask:
    """Return the bare app: one webhook route and a health check."""
    app = Flask(__name__)

    @app.post("/webhooks/sms")
    def sms() -> Response:
        return Response(EMPTY_TWIML, mimetype="text/xml")

    @app.get("/healthz")
    def health() -> Response:
        return Response("ok", mimetype="text/plain")

    return app
