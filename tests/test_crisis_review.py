"""The console's crisis review: a supporter's alert the detector missed teaches the detector."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from flask import Flask
from sqlalchemy import select

from peerline.app import create_app
from peerline.console.crisis_review import EXAMPLES_NAME, read_examples
from peerline.service.crisis_line import LineDetector
from peerline.service.models import AuditEvent, SafetyEvent, utcnow
from peerline.service.services import LineServices
from tests.support.console import Console
from tests.support.line import sqlite_line
from tests.support.seed import ConversationSpec, Said, add_conversation

# The model learned "been giving my records to my sister so she has them" in session 17.
MISSED = "left my records with my sister so she has them"


@pytest.fixture
def phrases(tmp_path: Path) -> Path:
    path = tmp_path / "line_phrases.yaml"
    path.write_text("# the line's own phrases\n", encoding="utf-8")
    return path


@pytest.fixture
def line(tmp_path: Path, phrases: Path) -> Iterator[LineServices]:
    with sqlite_line(tmp_path, coordinator=True, PEERLINE_CRISIS_PHRASES=str(phrases)) as line:
        yield line


@pytest.fixture
def console(line: LineServices) -> Console:
    app: Flask = create_app(line=line)
    console = Console(app.test_client())
    console.sign_in()
    return console


def alerted(line: LineServices, text: str, *, detector: bool = False) -> int:
    """Add a chat where the texter wrote `text` and a supporter then raised #alert."""
    started = utcnow() - timedelta(hours=1)
    conversation_id = add_conversation(
        line, ConversationSpec(created_at=started, messages=[Said("texter", text, 60)])
    )
    raised = [("detector", "wish_dead", 61)] if detector else []
    raised.append(("supporter", "supporter_alert", 120))
    with line.db.session() as session:
        session.add_all(
            SafetyEvent(
                conversation_id=conversation_id,
                source=source,
                category=category,
                created_at=started + timedelta(seconds=seconds),
            )
            for source, category, seconds in raised
        )
    return conversation_id


def audits(line: LineServices, action: str) -> list[AuditEvent]:
    with line.db.session() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == action)).all()
        session.expunge_all()
        return list(rows)


def test_review_lists_only_alerts_the_detector_missed(line: LineServices, console: Console) -> None:
    missed = alerted(line, MISSED)
    flagged = alerted(line, "i want to die", detector=True)
    page = console.get("/console/crisis-review/").get_data(as_text=True)
    assert f"(#{missed})" in page and f"(#{flagged})" not in page
    assert MISSED not in page  # metadata only until a reason is given
    assert console.get(f"/console/crisis-review/{flagged}").status_code == 404


def test_reading_needs_a_reason_and_is_audited(line: LineServices, console: Console) -> None:
    missed = alerted(line, MISSED)
    assert MISSED not in console.get(f"/console/crisis-review/{missed}").get_data(as_text=True)
    refused = console.post(f"/console/crisis-review/{missed}", {"reason": "short"})
    assert refused.status_code == 400 and MISSED not in refused.get_data(as_text=True)
    assert audits(line, "crisis_review.opened") == []
    shown = console.post(
        f"/console/crisis-review/{missed}", {"reason": "teaching the detector its miss"}
    )
    assert shown.status_code == 200 and MISSED in shown.get_data(as_text=True)
    [entry] = audits(line, "crisis_review.opened")
    assert entry.detail == "teaching the detector its miss"


def test_a_coordinator_adds_a_phrase_and_the_detector_learns_it(
    line: LineServices, console: Console, phrases: Path
) -> None:
    missed = alerted(line, MISSED)
    assert not line.crisis.detect(MISSED).matched
    console.post(f"/console/crisis-review/{missed}", {"reason": "teaching the detector its miss"})
    added = console.post(
        f"/console/crisis-review/{missed}/teach",
        {
            "text": "Left my records with my sister",
            "category": "preparation",
            "language": "en",
            "target": "phrase",
            "reason": "gifts before a goodbye",
        },
    )
    assert added.status_code == 302
    data = yaml.safe_load(phrases.read_text(encoding="utf-8"))
    assert data == {"phrases": {"en": {"preparation": ["left my records with my sister"]}}}
    detection = line.crisis.detect(MISSED)
    assert (detection.matched, detection.category) == (True, "preparation")
    [entry] = audits(line, "crisis_review.added")
    assert entry.detail == "phrase file, en/preparation: gifts before a goodbye"
    # an example goes to the examples file beside it, labelled
    console.post(f"/console/crisis-review/{missed}", {"reason": "teaching the detector its miss"})
    console.post(
        f"/console/crisis-review/{missed}/teach",
        {
            "text": "records with my sister",
            "category": "preparation",
            "language": "en",
            "target": "example",
            "reason": "for the next evaluation",
        },
    )
    # the words may be the texter's own: encrypted at rest, like a transcript
    stored = (phrases.parent / EXAMPLES_NAME).read_text(encoding="utf-8")
    assert "records" not in stored and "sister" not in stored
    items = read_examples(phrases.parent / EXAMPLES_NAME, line.vault)
    assert [(i["text"], i["label"], i["category"]) for i in items] == [
        ("records with my sister", True, "preparation")
    ]


def test_a_phrase_added_in_the_console_reaches_every_process(
    line: LineServices, console: Console, phrases: Path
) -> None:
    # A worker built its detector at start, before the coordinator taught the web process.
    worker = LineDetector(str(phrases))
    missed = alerted(line, MISSED)
    assert not worker.detect(MISSED).matched
    console.post(f"/console/crisis-review/{missed}", {"reason": "teaching the detector its miss"})
    console.post(
        f"/console/crisis-review/{missed}/teach",
        {
            "text": "left my records with my sister",
            "category": "preparation",
            "language": "en",
            "target": "phrase",
            "reason": "gifts before a goodbye",
        },
    )
    detection = worker.detect(MISSED)
    assert (detection.matched, detection.category) == (True, "preparation")
    # The worker's model names categories from packed weights, the reloaded one too.
    worker.spend_memory_on_speed()
    packed = worker.detector.model
    assert packed is not None and packed._packed is not None
    phrases.write_text(phrases.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    assert worker.reload() and worker.detector.model is not packed
    assert worker.detector.model is not None and worker.detector.model._packed is not None
    # a hand edit that breaks the file leaves the last good phrases in place
    phrases.write_text("phrases: [not, a, mapping]\n", encoding="utf-8")
    assert worker.detect(MISSED).matched


def test_a_phrase_that_is_not_words_is_refused(
    line: LineServices, console: Console, phrases: Path
) -> None:
    missed = alerted(line, MISSED)
    console.post(f"/console/crisis-review/{missed}", {"reason": "teaching the detector its miss"})
    before = phrases.read_text(encoding="utf-8")
    refused = console.post(
        f"/console/crisis-review/{missed}/teach",
        {
            "text": "(?:bad",
            "category": "preparation",
            "language": "en",
            "target": "phrase",
            "reason": "a typo",
        },
    )
    # punctuation is normalised away; what is left is a plain phrase, so nothing breaks
    assert refused.status_code in (302, 400)
    assert yaml.safe_load(phrases.read_text(encoding="utf-8")) in (
        yaml.safe_load(before),
        {"phrases": {"en": {"preparation": ["bad"]}}},
    )
