"""Debrief requests (issue 21) in headless Chromium: at a desk and on a 390 px phone."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from peerline.service.models import utcnow
from peerline.service.services import LineServices
from tests.browser.test_console_browser import sign_in
from tests.support.records import chat_with_record
from tests.support.seed import EMAIL

if TYPE_CHECKING:
    from playwright.sync_api import Page


def test_a_coordinator_sees_debrief_requests_and_marks_one_done(
    page: Page, demo_line: LineServices, serve: Callable[..., str], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    folder = Path(os.environ.get("PEERLINE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    now = utcnow()
    chat_with_record(demo_line, now - timedelta(minutes=25), "Rosa", debrief=True)
    chat_with_record(demo_line, now - timedelta(hours=3), "Alex", debrief=True)
    chat_with_record(demo_line, now - timedelta(days=2), "Sam", debrief=True, done=True)
    base = serve(demo_line)
    sign_in(page, base)

    # At a desk: the page is one link in the navigation; open requests come first.
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Debriefs").click()
    expect(page.get_by_role("heading", name="Debrief requests", level=1)).to_be_visible()
    rows = page.locator("table.data tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Rosa")
    expect(rows.nth(2)).to_contain_text("Sam")
    expect(rows.nth(2)).to_contain_text("by earlier@example.org")
    page.screenshot(path=str(folder / "debriefs.png"), full_page=True)

    # Marking Rosa's done: the keyboard alone can do it, and the page says who did.
    rosa = page.get_by_role("row", name=re.compile("Rosa"))
    rosa.get_by_role("button", name=re.compile("Mark done")).focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Debrief with Rosa marked done.")).to_be_visible()
    rosa = page.get_by_role("row", name=re.compile("Rosa"))
    expect(rosa).to_contain_text(f"by {EMAIL}")
    expect(rosa.get_by_role("button")).to_have_count(0)
    # The chat it was about opens its (metadata) page.
    alex = page.get_by_role("row", name=re.compile("Alex"))
    alex.get_by_role("link", name=re.compile(r"\(#\d+\)")).click()
    expect(page.get_by_role("heading", name=re.compile("Conversation"))).to_be_visible()

    # On a phone: the page fits the screen (only the marked table region scrolls sideways)
    # and the remaining request can still be marked done.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/console/debriefs/")
    expect(page.get_by_role("heading", name="Debrief requests", level=1)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(folder / "debriefs-phone.png"), full_page=True)
    button = page.get_by_role("row", name=re.compile("Alex")).get_by_role("button")
    button.scroll_into_view_if_needed()
    button.click()
    expect(page.get_by_text("Debrief with Alex marked done.")).to_be_visible()
    expect(page.get_by_role("button", name=re.compile("Mark done"))).to_have_count(0)
    for name in ("debriefs", "debriefs-phone"):
        assert (folder / f"{name}.png").stat().st_size > 5_000
