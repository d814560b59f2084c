"""One small query the services and console share: an aggregate per key, as a dict."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session


def grouped(
    session: Session, key: Any, value: ColumnElement[Any], *where: ColumnElement[bool]
) -> dict[Any, Any]:
    """Return {key: value} over the rows that match `where`, grouped by `key`; `value` is an
    aggregate such as func.count() or func.max(column)."""
    return dict(session.execute(select(key, value).where(*where).group_by(key)).all())
