"""A coordinator's journeys through the console in headless Chromium."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from peerline.service.services import LineServices
from peerline.service.models import QUEUED, Shift, Supporter, utcnow
from tests.support.seed import (
    EMAIL,
    PASSWORD,
    ConversationSpec,
    Said,
    add_alert,
    add_conversation,
    seed_history,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page


def sign_in(page: Page, base: str, password: str = PASSWORD) -> None:
    """Open the console and sign in through the form."""
    page.goto(f"{base}/console/")
    assert "/console/login" in page.url
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_coordinator_journey(page: Page, empty_line: LineServices, serve: Callable[..., str]) -> None:
    from playwright.sync_api import expect

    conversation = add_conversation(
        empty_line,
        ConversationSpec(
            created_at=utcnow() - timedelta(hours=3),
            wait=75,
            rating=5,
            messages=[
                Said("texter", "hello, is anyone there?", 0),
                Said("texter", "I could not sleep again", 120),
            ],
        ),
    )
    base = serve(empty_line)
    sign_in(page, base)
    expect(page.get_by_role("heading", name="Live dashboard")).to_be_visible()

    # Add a supporter: the list shows the number masked.
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Supporters").click()
    page.get_by_role("link", name="Add a supporter").click()
    page.get_by_label("First name or alias").fill("Jordan")
    page.get_by_label("Mobile number").fill("+1 416 555 0177")
    page.get_by_label("Languages").fill("en, fr")
    page.get_by_role("button", name="Add supporter").click()
    expect(page.get_by_text("Jordan added.")).to_be_visible()
    row = page.get_by_role("row", name=re.compile("Jordan"))
    expect(row).to_contain_text("•••••••••77")
    expect(row).not_to_contain_text("0177")

    # Give them a Wednesday shift, and see it in the week view.
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Rota").click()
    page.get_by_role("link", name="Add shift for Jordan").click()
    page.get_by_label("Wed").check()
    page.get_by_label("Starts").fill("09:00")
    page.get_by_label("Ends").fill("17:00")
    page.get_by_role("button", name="Add shift").click()
    expect(page.get_by_text("Shift added for Jordan.")).to_be_visible()
    jordan = page.locator('tr[data-supporter="Jordan"]')
    wednesday = jordan.locator("td").nth(2)
    expect(wednesday.get_by_role("link", name="09:00–17:00")).to_be_visible()
    expect(jordan.locator("td").nth(1)).not_to_contain_text("09:00")
    expect(jordan).to_contain_text("8 h this week")

    # The coverage picture counts them on Wednesday from 09:00 to 17:00 only.
    page.get_by_role("link", name="Coverage for this week").click()
    expect(page.get_by_role("heading", name=re.compile("Coverage"))).to_be_visible()
    cells = page.locator("td.cov")
    expect(cells.and_(page.locator('[data-day="2"][data-hour="9"]'))).to_have_attribute(
        "data-on-shift", "1"
    )
    expect(cells.and_(page.locator('[data-day="2"][data-hour="16"]'))).to_have_attribute(
        "data-on-shift", "1"
    )
    expect(cells.and_(page.locator('[data-day="2"][data-hour="17"]'))).to_have_attribute(
        "data-on-shift", "0"
    )
    expect(page.locator('td.cov[data-on-shift="1"]')).to_have_count(8)

    # A transcript opens only with a reason, and the opening is in the audit log.
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Conversations").click()
    page.get_by_role("link", name=re.compile(f"conversation {conversation}")).click()
    expect(page.get_by_text("I could not sleep again")).to_have_count(0)
    page.get_by_label("Why do you need to read this conversation?").fill(
        "Checking a complaint from this texter"
    )
    page.get_by_role("button", name="Open transcript").click()
    expect(page.get_by_text("I could not sleep again")).to_be_visible()
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Audit log").click()
    entry = page.get_by_role("row", name=re.compile("transcript.opened"))
    expect(entry).to_contain_text("Checking a complaint from this texter")
    expect(entry).to_contain_text(EMAIL)
    expect(page.get_by_role("row", name=re.compile("shift.added"))).to_contain_text("Jordan")

    # Signing out ends the session.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.goto(f"{base}/console/rota/")
    assert "/console/login" in page.url


def test_sign_in_refused_with_a_wrong_password(
    page: Page, empty_line: LineServices, serve: Callable[..., str]
) -> None:
    from playwright.sync_api import expect

    base = serve(empty_line)
    sign_in(page, base, password="this is not it")
    expect(page.get_by_role("alert")).to_contain_text("do not match an active account")
    assert page.url.startswith(f"{base}/console/login")
    page.goto(f"{base}/console/")
    assert "/console/login" in page.url


def test_the_dashboard_refreshes_itself(
    page: Page, demo_line: LineServices, serve: Callable[..., str]
) -> None:
    from playwright.sync_api import expect

    base = serve(demo_line, CONSOLE_REFRESH_SECONDS=1)
    sign_in(page, base)
    count = page.get_by_test_id("waiting-count")
    expect(count).to_have_text("0")
    conversation = add_conversation(
        demo_line,
        ConversationSpec(created_at=utcnow() - timedelta(minutes=4), state=QUEUED, priority=1),
    )
    add_alert(demo_line, "crisis", "Crisis language in a waiting texter's message", conversation)
    expect(count).to_have_text("1", timeout=4000)
    expect(page.get_by_text("Crisis language in a waiting texter's message")).to_be_visible()
    # Resolving asks first; the keyboard alone can do it.
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Resolve").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_text("Alert resolved.")).to_be_visible()
    expect(page.get_by_text("No open alerts.")).to_be_visible()


def test_keyboard_users_can_skip_to_the_content(
    page: Page, empty_line: LineServices, serve: Callable[..., str]
) -> None:
    from playwright.sync_api import expect

    base = serve(empty_line)
    sign_in(page, base)
    expect(page.get_by_role("heading", name="Live dashboard")).to_be_visible()
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


def test_screenshots(
    page: Page, demo_line: LineServices, serve: Callable[..., str], tmp_path: Path
) -> None:
    """Render the main pages with weeks of history, as the README shows them."""
    from playwright.sync_api import expect

    folder = Path(os.environ.get("PEERLINE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    with demo_line.db.session() as session:
        # Sam is on all week in the demo; evenings and weekends leave gaps worth showing.
        sam = session.scalars(select(Supporter).where(Supporter.name == "Sam")).one()
        sam.shifts = [
            Shift(days="mon,tue,wed,thu,fri", start_minute=17 * 60, end_minute=23 * 60),
            Shift(days="sat,sun", start_minute=10 * 60, end_minute=18 * 60),
        ]
    seed_history(demo_line, utcnow())
    waiting = add_conversation(
        demo_line,
        ConversationSpec(created_at=utcnow() - timedelta(minutes=9), state=QUEUED),
    )
    add_alert(demo_line, "left_waiting", "Waiting over 8 minutes with nobody free", waiting)
    base = serve(demo_line)
    sign_in(page, base)
    expect(page.get_by_role("heading", name="Live dashboard")).to_be_visible()
    page.screenshot(path=str(folder / "dashboard.png"), full_page=True)
    page.goto(f"{base}/console/rota/")
    expect(page.locator("table.week")).to_be_visible()
    page.screenshot(path=str(folder / "rota.png"), full_page=True)
    page.goto(f"{base}/console/rota/coverage")
    page.screenshot(path=str(folder / "coverage.png"), full_page=True)
    page.goto(f"{base}/console/reports/")
    expect(page.locator("svg.chart")).to_have_count(5)
    page.screenshot(path=str(folder / "reports.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{base}/console/")
    page.screenshot(path=str(folder / "dashboard-phone.png"), full_page=True)
    # On a phone the page fits the screen: only the marked regions scroll sideways.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    for name in ("dashboard", "rota", "coverage", "reports", "dashboard-phone"):
        assert (folder / f"{name}.png").stat().st_size > 10_000
