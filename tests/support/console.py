"""A browser-like client for the coordinator console, with CSRF on as in production."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from peerline.service.models import AuditEvent
from peerline.service.services import LineServices
from tests.support.seed import EMAIL, PASSWORD

TOKEN = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')


class Console:
    """A browser-like client: keeps cookies and sends the last page's CSRF token."""

    def __init__(self, client: FlaskClient, address: str = "203.0.113.5") -> None:
        self.client = client
        self.address = address
        self.token = ""

    def get(self, path: str, **kwargs: object) -> TestResponse:
        """Fetch a page and remember its form token."""
        response = self.client.get(
            path,
            environ_base={"REMOTE_ADDR": self.address},
            **kwargs,  # type: ignore[arg-type]
        )
        found = TOKEN.search(response.get_data(as_text=True))
        if found:
            self.token = found.group(1)
        return response

    def post(
        self,
        path: str,
        data: dict[str, object] | None = None,
        *,
        token: bool = True,
        **kwargs: object,
    ) -> TestResponse:
        """Post a form, with the remembered token unless told not to."""
        form = dict(data or {})
        if token:
            form.setdefault("csrf_token", self.token)
        return self.client.post(
            path,
            data=form,
            environ_base={"REMOTE_ADDR": self.address},
            **kwargs,  # type: ignore[arg-type]
        )

    def sign_in(self, email: str = EMAIL, password: str = PASSWORD) -> TestResponse:
        """Sign in through the form."""
        self.get("/console/login")
        response = self.post("/console/login", {"email": email, "password": password})
        if response.status_code == 302:
            # Signing in starts a new session: the next form needs the new page's token.
            self.get(response.headers["Location"])
        return response


def signed_in(app: Flask, email: str = EMAIL) -> Console:
    """Return a client signed in as `email` through the form, its dashboard fetched."""
    client = Console(app.test_client())
    response = client.sign_in(email)
    assert response.status_code == 302, response.get_data(as_text=True)
    client.get("/console/")
    return client


def audit_entries(line: LineServices, action: str | None = None) -> list[AuditEvent]:
    """Return audit entries (of one action, if given), oldest first."""
    with line.db.session() as session:
        query = select(AuditEvent).order_by(AuditEvent.id)
        if action:
            query = query.where(AuditEvent.action == action)
        return list(session.scalars(query))
