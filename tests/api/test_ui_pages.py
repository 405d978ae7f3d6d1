"""The dashboard (/ui) in-process: sign-in and sessions, CSRF, security headers, and each page's
content, on both databases. tests/browser/test_dashboard.py drives it in a real browser."""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from pendingtx.api.ui.rendering import CONTENT_SECURITY_POLICY
from pendingtx.bootstrap import Runtime
from tests.conftest import AppCreds, Served, mint, register
from tests.support import FakeClock, record

pytestmark = pytest.mark.usefixtures("cheap_argon2")

CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')
SESSION = "pendingtx_session"


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html
    return found.group(1)


def sign_in(client: TestClient, creds: AppCreds, *, secret: str | None = None) -> httpx.Response:
    form = client.get("/ui/signin")
    assert form.status_code == 200, form.text
    return client.post(
        "/ui/signin",
        data={"csrf": csrf_of(form.text), "appKey": creds.app_key, "appSecret": secret or creds.app_secret},
        follow_redirects=False,
    )


def signed_in(client: TestClient, creds: AppCreds) -> str:
    """Sign in; the CSRF token of the session's forms."""
    answer = sign_in(client, creds)
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/ui"
    page = client.get("/ui")
    assert page.status_code == 200, page.text
    return csrf_of(page.text)


def submit(client: TestClient, creds: AppCreds, batch: list[dict[str, Any]]) -> str:
    headers = {"Authorization": f"Bearer {mint(client, creds)}", "AppKey": creds.app_key}
    answer = client.post("/v1/transactions", json=batch, headers=headers)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["jobStatusQueryKey"])


def cookie_attributes(answer: httpx.Response, name: str) -> dict[str, str]:
    """The attributes of the Set-Cookie header that sets `name` (lower-case names)."""
    for header in answer.headers.get_list("set-cookie"):
        first, *rest = (part.strip() for part in header.split(";"))
        if first.startswith(f"{name}="):
            attributes = {"value": first.partition("=")[2]}
            for part in rest:
                key, _, value = part.partition("=")
                attributes[key.lower()] = value
            return attributes
    raise AssertionError(f"no Set-Cookie for {name}: {answer.headers.get_list('set-cookie')}")


@pytest.mark.parametrize(
    "path",
    ["/ui", "/ui/jobs/abc", "/ui/jobs/abc/results.csv", "/ui/transactions", "/ui/webhooks", "/ui/events"],
)
def test_signed_out_requests_are_sent_to_sign_in(client: TestClient, path: str) -> None:
    answer = client.get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/signin"


def test_signing_in_sets_a_strict_http_only_session_cookie_and_shows_the_jobs(
    client: TestClient, app_creds: AppCreds, runtime: Runtime
) -> None:
    answer = sign_in(client, app_creds)
    assert answer.status_code == 303
    cookie = cookie_attributes(answer, SESSION)
    assert "httponly" in cookie
    assert cookie["samesite"].lower() == "strict"
    assert cookie["path"] == "/ui"
    assert cookie["max-age"] == str(runtime.settings.token_ttl_seconds)
    assert "secure" not in cookie  # plain http here; see the https test
    assert app_creds.app_secret not in answer.headers.get_list("set-cookie")[0]
    page = client.get("/ui")
    assert page.status_code == 200
    assert "<h1>Jobs</h1>" in page.text
    assert "ops-app" in page.text


def test_the_session_cookie_is_secure_under_https(runtime: Runtime, app_creds: AppCreds) -> None:
    from pendingtx.bootstrap import build_app

    with TestClient(build_app(runtime), base_url="https://127.0.0.1") as client:
        answer = sign_in(client, app_creds)
        assert answer.status_code == 303
        assert "secure" in cookie_attributes(answer, SESSION)
        assert "secure" in cookie_attributes(client.get("/ui/signin"), "pendingtx_signin")


def test_a_wrong_secret_or_key_says_the_same_and_sets_no_session(
    client: TestClient, app_creds: AppCreds, runtime: Runtime
) -> None:
    other = register(runtime, name="other-app", org="other")
    wrong_secret = sign_in(client, app_creds, secret=other.app_secret)
    unknown_key = sign_in(client, AppCreds("0" * 32, app_creds.app_secret, "acme"))
    messages = []
    for answer in (wrong_secret, unknown_key):
        assert answer.status_code == 401
        assert not any(h.startswith(f"{SESSION}=") for h in answer.headers.get_list("set-cookie"))
        found = re.search(r'class="error" role="alert">([^<]+)<', answer.text)
        assert found is not None
        messages.append(found.group(1))
    assert messages[0] == messages[1]
    assert "AppSecret" in messages[0]
    assert "AppKey" in messages[0]
    assert SESSION not in client.cookies
    assert client.get("/ui", follow_redirects=False).status_code == 303


def test_failed_sign_ins_count_toward_the_token_endpoints_lockout(
    serve_with: Callable[..., Served], app_creds: AppCreds
) -> None:
    client = serve_with(auth_failure_limit=2).client
    for _ in range(2):
        assert sign_in(client, app_creds, secret="wrong").status_code == 401
    assert sign_in(client, app_creds).status_code == 429
    refused = client.post(
        "/v2/oauthtoken",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": app_creds.basic},
    )
    assert refused.status_code == 429


def test_posts_without_the_right_csrf_token_are_refused(
    client: TestClient, app_creds: AppCreds, runtime: Runtime
) -> None:
    client.get("/ui/signin")
    without = client.post("/ui/signin", data={"appKey": app_creds.app_key, "appSecret": app_creds.app_secret})
    assert without.status_code == 403
    assert "Form refused" in without.text
    assert SESSION not in client.cookies

    token = signed_in(client, app_creds)
    assert client.post("/ui/signout", data={}).status_code == 403
    assert client.post("/ui/signout", data={"csrf": "0" * 64}).status_code == 403
    assert client.post("/ui/signout", data={"csrf": "é"}).status_code == 403
    # Another session's token is not this session's.
    # A second browser on the same app (no second lifespan: it would close the shared event bus).
    other = TestClient(client.app, base_url="http://127.0.0.1")
    try:
        other_token = signed_in(other, register(runtime, name="second", org="acme"))
    finally:
        other.close()
    assert other_token != token
    assert client.post("/ui/signout", data={"csrf": other_token}).status_code == 403
    assert client.get("/ui").status_code == 200  # still signed in


def test_sign_out_revokes_the_sessions_token(client: TestClient, app_creds: AppCreds) -> None:
    token = signed_in(client, app_creds)
    session = client.cookies[SESSION]
    app_key, _, access_token = session.strip('"').partition(":")
    answer = client.post("/ui/signout", data={"csrf": token}, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/signin"
    assert SESSION not in client.cookies
    # The token itself no longer works, for the dashboard or the API.
    client.cookies.set(SESSION, session, path="/ui")
    assert client.get("/ui", follow_redirects=False).status_code == 303
    api = client.get(
        "/v1/transactions", headers={"Authorization": f"Bearer {access_token}", "AppKey": app_key}
    )
    assert api.status_code == 401


def test_a_session_expires_when_idle_and_at_its_absolute_lifetime(
    serve_with: Callable[..., Served], app_creds: AppCreds, clock: FakeClock
) -> None:
    client = serve_with(token_idle_seconds=600, token_ttl_seconds=1000).client
    signed_in(client, app_creds)
    clock.advance(601)
    assert client.get("/ui", follow_redirects=False).headers["location"] == "/ui/signin"

    signed_in(client, app_creds)
    for _ in range(3):  # used often enough never to idle out, it still ends at its absolute lifetime
        clock.advance(300)
        assert client.get("/ui").status_code == 200
    clock.advance(101)
    answer = client.get("/ui", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/signin"


def test_every_ui_answer_carries_the_security_headers(client: TestClient, app_creds: AppCreds) -> None:
    answers = [client.get("/ui", follow_redirects=False), client.get("/ui/signin")]
    signed_in(client, app_creds)
    answers += [
        client.get(path)
        for path in ("/ui", "/ui/transactions", "/ui/webhooks", "/ui/static/app.css", "/ui/static/app.js")
    ]
    answers += [
        client.get("/ui/no/such/page"),
        client.get("/ui/jobs/NoSuchJob"),
        client.post("/ui/signout", data={}),
    ]
    assert [answer.status_code for answer in answers[-3:]] == [404, 404, 403]
    for answer in answers:
        assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY, answer.url
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
    for answer in answers[:5] + answers[-3:]:
        assert answer.headers["cache-control"] == "no-store", answer.url
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY


def test_pages_load_nothing_from_another_host_and_have_no_inline_script_or_style(
    client: TestClient, app_creds: AppCreds
) -> None:
    key = submit(client, app_creds, [record("N-1")])
    pages = [client.get("/ui/signin").text]
    signed_in(client, app_creds)
    pages += [
        client.get(path).text for path in ("/ui", f"/ui/jobs/{key}", "/ui/transactions", "/ui/webhooks")
    ]
    for html in pages:
        for url in re.findall(r'(?:src|href|action)="([^"]*)"', html):
            assert url.startswith(("/", "#", "data:")), url
            assert not url.startswith("//"), url
        assert not re.search(r"<script(?![^>]*\bsrc=)", html)
        assert " style=" not in html
        assert "<style" not in html
    assert client.get("/ui/static/app.css").headers["content-type"].startswith("text/css")
    assert client.get("/ui/static/app.js").status_code == 200
    assert client.get("/ui/static/session.py").status_code == 404


def test_another_organizations_job_page_is_404(
    client: TestClient, app_creds: AppCreds, other_creds: AppCreds, runtime: Runtime
) -> None:
    foreign = submit(client, other_creds, [record("F-1")])
    runtime.new_worker().run_until_idle()
    signed_in(client, app_creds)
    for path in (f"/ui/jobs/{foreign}", f"/ui/jobs/{foreign}/row", f"/ui/jobs/{foreign}/results.csv"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "Not found" in answer.text
        assert "F-1" not in answer.text


def test_the_jobs_page_lists_newest_first_filters_by_status_and_pages(
    client: TestClient, app_creds: AppCreds, runtime: Runtime
) -> None:
    keys = [submit(client, app_creds, [record(f"J-{n}")]) for n in range(3)]
    failed = submit(client, app_creds, [record("J-bad", amount="0")])
    runtime.new_worker().run_until_idle()
    signed_in(client, app_creds)
    html = client.get("/ui").text
    assert [m for m in re.findall(r'data-job="([^"]+)"', html)] == [failed, *reversed(keys)]
    assert 'class="status status-completed"' in html
    filtered = client.get("/ui", params={"status": "Failed"}).text
    assert re.findall(r'data-job="([^"]+)"', filtered) == [failed]
    assert client.get("/ui", params={"status": "Done"}).status_code == 400


def test_a_job_page_shows_counts_timings_problems_and_downloads_the_csv(
    client: TestClient, app_creds: AppCreds, runtime: Runtime, clock: FakeClock
) -> None:
    key = submit(client, app_creds, [record("P-1"), record("P-2", amount="0"), record("P-3", tradeDate="x")])
    clock.advance(65)
    runtime.new_worker().run_until_idle()
    signed_in(client, app_creds)
    page = client.get(f"/ui/jobs/{key}")
    assert page.status_code == 200
    html = page.text
    assert "Partially Completed" in html
    assert "P-2" in html
    assert "P-3" in html
    assert "amount" in html
    assert "tradeDate" in html
    assert "(2 records rejected)" in html
    assert "1 min 05 s" in html
    assert 'title="2026-01-15 09:30:00 EST"' in html  # the fake clock's 14:30 UTC, in Eastern time
    assert "data-live" not in html  # a finished job has nothing to follow

    download = client.get(f"/ui/jobs/{key}/results.csv")
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    assert download.headers["content-disposition"] == f'attachment; filename="job-{key}-results.csv"'
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0] == ["index", "externalId", "outcome", "field", "reason"]
    assert [row[1:3] for row in rows[1:]] == [["P-1", "created"], ["P-2", "rejected"], ["P-3", "rejected"]]


def test_a_job_pages_problems_are_paged(client: TestClient, app_creds: AppCreds, runtime: Runtime) -> None:
    key = submit(client, app_creds, [record(f"B-{n:03d}", amount="0") for n in range(60)])
    runtime.new_worker().run_until_idle()
    signed_in(client, app_creds)
    first = client.get(f"/ui/jobs/{key}").text
    assert "B-049" in first
    assert "B-050" not in first
    older = re.search(r'href="([^"]+)" rel="next"', first)
    assert older is not None
    second = client.get(older.group(1).replace("&amp;", "&")).text
    assert "B-050" in second
    assert "B-059" in second
    assert "B-049" not in second


def test_a_running_job_page_follows_the_event_log(client: TestClient, app_creds: AppCreds) -> None:
    key = submit(client, app_creds, [record("L-1")])
    signed_in(client, app_creds)
    html = client.get(f"/ui/jobs/{key}").text
    assert f'data-key="{key}"' in html
    assert re.search(r'data-after="\d+"', html)
    row = client.get(f"/ui/jobs/{key}/row")
    assert row.status_code == 200
    assert row.text.strip().startswith(f'<tr data-job="{key}"')


def test_the_transactions_search_uses_the_list_filters(
    client: TestClient, app_creds: AppCreds, runtime: Runtime
) -> None:
    submit(client, app_creds, [record("T-1"), record("T-2", investorExternalId="INV-9", amount="1234.50")])
    runtime.new_worker().run_until_idle()
    signed_in(client, app_creds)
    everything = client.get("/ui/transactions").text
    assert "T-1" in everything
    assert "T-2" in everything
    found = client.get("/ui/transactions", params={"investorExternalId": "INV-9", "status": "", "type": ""})
    assert found.status_code == 200
    assert "T-2" in found.text
    assert "T-1" not in found.text
    assert re.search(r'class="num">1234\.50? ', found.text)
    refused = client.get("/ui/transactions", params={"createStartDate": "yesterday"})
    assert refused.status_code == 400
    assert "createStartDate" in refused.text


def test_the_webhooks_page_shows_endpoints_and_their_failing_deliveries(
    serve_with: Callable[..., Served], app_creds: AppCreds
) -> None:
    served = serve_with(webhook_allow_private=True, webhook_retry_schedule="5,60")
    client = served.client
    signed_in(client, app_creds)
    assert "No webhook endpoint is registered" in client.get("/ui/webhooks").text
    headers = {"Authorization": f"Bearer {mint(client, app_creds)}", "AppKey": app_creds.app_key}
    # Nothing listens on port 9 of this machine: the delivery fails.
    created = client.post("/v1/webhooks", json={"url": "http://127.0.0.1:9/hook"}, headers=headers)
    assert created.status_code == 201, created.text
    submit(client, app_creds, [record("W-1")])
    served.runtime.new_worker().run_until_idle()
    deliverer = served.runtime.webhook_deliverer()
    try:
        deadline = time.monotonic() + 10
        while "Latest deliveries" not in (html := client.get("/ui/webhooks").text):
            assert time.monotonic() < deadline, "no delivery was attempted"
            deliverer.run_once()
            time.sleep(0.01)
    finally:
        deliverer.request_stop()
        deliverer.join(5)
    assert "http://127.0.0.1:9/hook" in html
    assert "Failing" in html
    assert created.json()["secret"] not in html
