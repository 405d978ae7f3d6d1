"""The dashboard (/ui) in a real browser: sign-in, live job updates from the event stream, a job's
problems and CSV, CSRF, nothing from another host, another organization's job, the keyboard, and
the screenshots of README (written to docs/screenshots/ by `make screenshots` only, so that a test
run leaves the checkout as it found it)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request, expect

from tests.browser.conftest import Served
from tests.e2e.server import Process, Server, create_app_via_cli, submit_batch
from tests.support import record

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 30_000
# Set by `make screenshots`; otherwise the pictures go to the test's own directory.
SCREENSHOTS_DIR = "PENDINGTX_SCREENSHOTS"
SESSION = "pendingtx_session"


def new_context(browser: Browser, **options: Any) -> BrowserContext:
    context = browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    return context


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    # The viewer is in Paris: times are shown in its zone, US Eastern on hover.
    opened = new_context(browser, timezone_id="Europe/Paris", locale="en-GB")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, served: Served, *, secret: str | None = None) -> None:
    page.goto(f"{served.base_url}/ui/signin")
    page.get_by_label("AppKey").fill(served.app["appKey"])
    page.get_by_label("AppSecret").fill(secret or served.app["appSecret"])
    page.get_by_role("button", name="Sign in").click()


def signed_in(page: Page, served: Served) -> None:
    sign_in(page, served)
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()


def mixed_batch(prefix: str) -> list[dict[str, Any]]:
    """Four records, two of them rejected."""
    return [
        record(f"{prefix}-1"),
        record(f"{prefix}-2", amount="0"),
        record(f"{prefix}-3", tradeDate="2026-02-30"),
        record(f"{prefix}-4"),
    ]


def wait_finished(page: Page, served: Served, key: str) -> None:
    """Open the job's page once its status is terminal (reloading: this is setup, not the live test)."""
    page.goto(f"{served.base_url}/ui/jobs/{key}")
    expect(page.locator(".summary[data-terminal='true']")).to_have_count(1)


def test_a_signed_out_visit_is_sent_to_sign_in(page: Page, served: Served) -> None:
    page.goto(f"{served.base_url}/ui")
    assert urlsplit(page.url).path == "/ui/signin"
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_a_wrong_secret_shows_an_error_and_sets_no_session(
    page: Page, context: BrowserContext, served: Served
) -> None:
    sign_in(page, served, secret="not-the-secret")
    expect(page.get_by_role("alert")).to_contain_text("Sign-in failed")
    assert SESSION not in {cookie["name"] for cookie in context.cookies()}
    page.goto(f"{served.base_url}/ui")
    assert urlsplit(page.url).path == "/ui/signin"


def test_signing_in_shows_the_jobs_page_and_signing_out_ends_the_session(
    page: Page, context: BrowserContext, served: Served
) -> None:
    signed_in(page, served)
    assert urlsplit(page.url).path == "/ui"
    session = next(cookie for cookie in context.cookies() if cookie["name"] == SESSION)
    assert session["httpOnly"]
    assert session["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # the page's script cannot read it
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto(f"{served.base_url}/ui")
    assert urlsplit(page.url).path == "/ui/signin"


def test_a_submitted_job_appears_and_reaches_its_terminal_status_without_a_reload(
    page: Page, served: Served
) -> None:
    signed_in(page, served)
    expect(page.locator("table.jobs[data-live]")).to_have_count(1)
    # Anything a reload would lose: it must still be there at the end.
    page.evaluate("window.notReloaded = true")
    total = int(page.locator('[data-field="total"]').inner_text())
    key = submit_batch(served.base_url, served.app, mixed_batch("LIVE"))
    row = page.locator(f'tr[data-job="{key}"]')
    expect(row).to_be_visible()
    expect(row.locator('[data-field="status"]')).to_have_text("Partially Completed")
    expect(row.locator('[data-field="status"]')).to_have_class("status status-partially-completed")
    expect(row.locator("progress")).to_have_attribute("value", "4")
    expect(row.locator('[data-field="failed"]')).to_have_text("2")
    expect(row.locator('[data-field="completed"] time')).to_have_count(1)
    expect(page.locator('[data-field="total"]')).to_have_text(str(total + 1))
    assert page.evaluate("window.notReloaded") is True


def test_a_jobs_own_page_follows_it_to_its_end_without_a_reload(page: Page, tmp_path: Path) -> None:
    # A server without a worker: the job waits, its page is open, and only then does a worker start.
    database_url = f"sqlite:///{tmp_path / 'follow.db'}"
    app = create_app_via_cli(database_url, name="follow-app", org="follow")
    server = Server(database_url, tmp_path / "server.log", {"PENDINGTX_LOG_LEVEL": "warning"}, no_worker=True)
    worker: Process | None = None
    try:
        server.wait_healthy()
        alone = Served(server, app, database_url)
        key = submit_batch(server.base_url, app, mixed_batch("FOLLOW"))
        signed_in(page, alone)
        page.goto(f"{server.base_url}/ui/jobs/{key}")
        summary = page.locator(".summary")
        expect(summary.locator('[data-field="status"]')).to_have_text("Submitted")
        expect(summary.locator('[data-field="done"]')).to_be_hidden()
        page.evaluate("window.notReloaded = true")
        worker = Process(["worker", "--database-url", database_url], tmp_path / "worker.log")
        expect(summary.locator('[data-field="status"]')).to_have_text("Partially Completed")
        expect(summary.locator("progress")).to_have_attribute("value", "4")
        expect(summary.locator('[data-field="failed"]')).to_have_text("2")
        expect(summary.locator('[data-field="done"]')).to_be_visible()
        assert page.evaluate("window.notReloaded") is True
    finally:
        if worker is not None:
            worker.stop()
        server.stop()


def test_a_jobs_page_lists_its_problems_and_downloads_its_csv(page: Page, served: Served) -> None:
    key = submit_batch(served.base_url, served.app, mixed_batch("PROB"))
    signed_in(page, served)
    wait_finished(page, served, key)
    problems = page.locator("table.problems tbody tr")
    expect(problems).to_have_count(2)
    expect(problems.nth(0)).to_contain_text("PROB-2")
    expect(problems.nth(0)).to_contain_text("amount")
    expect(problems.nth(1)).to_contain_text("PROB-3")
    expect(problems.nth(1)).to_contain_text("tradeDate")
    # The viewer's zone in the text, US Eastern on hover.
    submitted = page.locator("dl.times time").first
    eastern = submitted.get_attribute("title") or ""
    assert eastern.endswith(("EST", "EDT"))
    assert submitted.inner_text() != eastern

    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download results (CSV)").click()
    download = downloading.value
    assert download.suggested_filename == f"job-{key}-results.csv"
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text())))
    assert rows[0] == ["index", "externalId", "outcome", "field", "reason"]
    assert [row[2] for row in rows[1:]] == ["created", "rejected", "rejected", "created"]


def test_a_post_without_the_csrf_token_is_refused(page: Page, served: Served) -> None:
    signed_in(page, served)
    page.evaluate("document.querySelector('form.signout input[name=csrf]').remove()")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Form refused")).to_be_visible()
    page.goto(f"{served.base_url}/ui")
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()  # still signed in


def test_the_pages_request_nothing_from_another_host_and_break_no_policy(page: Page, served: Served) -> None:
    key = submit_batch(served.base_url, served.app, mixed_batch("HOST"))
    requested: list[str] = []
    complaints: list[str] = []

    def record_request(request: Request) -> None:
        requested.append(request.url)

    def record_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            complaints.append(message.text)

    page.on("request", record_request)
    page.on("console", record_console)
    signed_in(page, served)
    wait_finished(page, served, key)
    for path in ("/ui", "/ui/transactions", "/ui/webhooks"):
        page.goto(f"{served.base_url}{path}")
        page.wait_for_load_state("load")
    here = urlsplit(served.base_url).netloc
    assert any(url.endswith("/ui/static/app.js?v=0.1.0") for url in requested)
    assert [url for url in requested if urlsplit(url).netloc != here] == []
    assert complaints == []


def test_another_organizations_job_page_is_404(page: Page, served: Served) -> None:
    other = create_app_via_cli(served.database_url, name="other-browser-app", org="other-browser")
    foreign = submit_batch(served.base_url, other, [record("FOREIGN-1")])
    signed_in(page, served)
    answer = page.goto(f"{served.base_url}/ui/jobs/{foreign}")
    assert answer is not None
    assert answer.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("FOREIGN-1")


FOCUSABLE = "a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex='-1'])"


def tab_through(page: Page) -> None:
    """Tab from the top of the page: every visible control is reached, in a cycle back to the first."""
    controls = page.evaluate(
        """(selector) => {
            const found = [...document.querySelectorAll(selector)].filter((el) => el.checkVisibility());
            found.forEach((el, index) => el.setAttribute("data-control", String(index)));
            return found.length;
        }""",
        FOCUSABLE,
    )
    assert controls > 0
    reached: list[str] = []
    for _ in range(controls):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.getAttribute('data-control')"))
    assert sorted(reached, key=lambda text: int(text or -1)) == [str(n) for n in range(controls)]


def test_the_keyboard_reaches_every_control(page: Page, served: Served) -> None:
    key = submit_batch(served.base_url, served.app, mixed_batch("KEYS"))
    page.goto(f"{served.base_url}/ui/signin")
    tab_through(page)
    signed_in(page, served)
    wait_finished(page, served, key)
    for path in ("/ui", f"/ui/jobs/{key}", "/ui/transactions", "/ui/webhooks"):
        page.goto(f"{served.base_url}{path}")
        tab_through(page)


@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
def test_screenshots_of_the_jobs_list_and_a_job_page(
    browser: Browser, served: Served, width: int, height: int, tmp_path: Path
) -> None:
    shots = Path(os.environ.get(SCREENSHOTS_DIR) or tmp_path)
    keys = [
        submit_batch(served.base_url, served.app, [record(f"SHOT{width}-{n}-{i}") for i in range(n + 1)])
        for n in range(3)
    ]
    key = submit_batch(served.base_url, served.app, mixed_batch(f"SHOT{width}"))
    context = new_context(
        browser, viewport={"width": width, "height": height}, timezone_id="America/New_York", locale="en-US"
    )
    try:
        page = context.new_page()
        signed_in(page, served)
        wait_finished(page, served, keys[-1])
        wait_finished(page, served, key)
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=shots / f"job-{width}.png")
        page.goto(f"{served.base_url}/ui")
        expect(page.locator(f'tr[data-job="{key}"]')).to_be_visible()
        page.screenshot(path=shots / f"jobs-{width}.png")
    finally:
        context.close()
    for name in (f"job-{width}.png", f"jobs-{width}.png"):
        assert (shots / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
