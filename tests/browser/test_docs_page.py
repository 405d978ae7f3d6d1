"""`/docs` in a real browser: Swagger UI renders every path of the document, from this server alone,
and its Authorize dialog mints a token with the AppKey and AppSecret."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, expect

from tests.browser.conftest import Served

pytestmark = pytest.mark.e2e

TIMEOUT_MS = 30_000


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_every_path_is_rendered_and_nothing_is_requested_off_host(page: Page, served: Served) -> None:
    requested: list[str] = []

    def record(request: Request) -> None:
        requested.append(request.url)

    page.on("request", record)
    page.goto(f"{served.base_url}/docs")
    paths = httpx.get(f"{served.base_url}/openapi.json", timeout=10).json()["paths"]
    blocks = page.locator(".opblock")
    expect(blocks.first).to_be_visible()
    for path in paths:
        block = page.locator(f'.opblock:has(.opblock-summary-path[data-path="{path}"])')
        expect(block.first).to_be_visible()
    page.wait_for_load_state("networkidle")
    here = urlsplit(served.base_url).netloc
    assert requested
    off_host = [url for url in requested if urlsplit(url).netloc != here]
    assert off_host == []


def test_authorize_mints_a_token_that_the_operations_use(page: Page, served: Served) -> None:
    page.goto(f"{served.base_url}/docs")
    page.locator(".btn.authorize").first.click()
    dialog = page.locator(".modal-ux")
    oauth = dialog.locator(".auth-container").filter(has_text="clientCredentials")
    oauth.locator("#client_id_clientCredentials").fill(served.app["appKey"])
    oauth.locator("#client_secret_clientCredentials").fill(served.app["appSecret"])
    with page.expect_response(lambda r: r.url.endswith("/v2/oauthtoken")) as minted:
        oauth.locator("button.authorize").click()
    assert minted.value.status == 200, minted.value.text()
    expect(oauth.locator("button.authorize")).to_have_text("Logout")
    app_key = dialog.locator(".auth-container").filter(has_text="apiKey")
    app_key.locator("#api_key_value").fill(served.app["appKey"])
    app_key.locator("button.authorize").click()
    dialog.locator(".close-modal").click()

    listing = page.locator('.opblock-get:has(.opblock-summary-path[data-path="/v1/transactions"])')
    listing.locator(".opblock-summary").click()
    listing.get_by_role("button", name="Try it out").click()
    with page.expect_response(lambda r: "/v1/transactions" in r.url) as listed:
        listing.get_by_role("button", name="Execute").click()
    assert listed.value.status == 200, listed.value.text()
    assert listed.value.request.headers["authorization"].startswith("Bearer ")
