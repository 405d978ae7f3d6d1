"""Observability: the access log line per request, the worker's job transitions, `GET /metrics`, and that
no credential ever reaches a log.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import prometheus_client
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from pendingtx.api.status import StatusEndpoint
from pendingtx.bootstrap import Runtime, build_app
from pendingtx.observability import identify
from pendingtx.observability.logs import ACCESS_LOGGER, AccessLog, JsonFormatter, JsonLinesHandler, redact
from pendingtx.services import authentication, processing
from pendingtx.storage import claim
from pendingtx.storage.tables import job_claims, jobs, transactions
from tests.conftest import AppCreds, mint, register
from tests.support import FakeClock, StopAfter, basic, record

pytestmark = pytest.mark.usefixtures("cheap_argon2")

STATUS_ROUTE = "/v1/jobs/{appName}/status/{key}"


@pytest.fixture
def json_log() -> Iterator[tuple[JsonLinesHandler, io.StringIO]]:
    """Every record of the process, at DEBUG, as JSON lines in memory (the server's own handler)."""
    stream = io.StringIO()
    handler = JsonLinesHandler(stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler, stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def lines_of(log: tuple[JsonLinesHandler, io.StringIO]) -> list[dict[str, Any]]:
    handler, stream = log
    handler.flush()
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def access_records(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.__dict__["fields"] for r in caplog.records if r.name == ACCESS_LOGGER]


def service_text(caplog: pytest.LogCaptureFixture) -> str:
    """What the service logged (not the test's HTTP client, which logs the URLs it calls)."""
    return "\n".join(
        caplog.handler.format(r) + json.dumps(r.__dict__.get("fields", {}))
        for r in caplog.records
        if r.name.startswith("pendingtx")
    )


def submit(client: TestClient, headers: dict[str, str], batch: list[dict[str, Any]]) -> str:
    answer = client.post("/v1/transactions", json=batch, headers=headers)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["jobStatusQueryKey"])


# --- the access log ---------------------------------------------------------------------------------


def test_one_access_record_per_request_with_the_route_template(
    client: TestClient, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    key = submit(client, headers, [record("OBS-1")])
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    caplog.clear()
    answer = client.get(f"/v1/jobs/insight/status/{key}", headers=headers)
    assert answer.status_code == 200

    (line,) = access_records(caplog)
    assert list(line)[:5] == ["method", "route", "status", "duration_ms", "trackingId"]
    assert (line["method"], line["route"], line["status"]) == ("GET", STATUS_ROUTE, 200)
    assert line["trackingId"] == answer.headers["requesttrackingid"]
    assert isinstance(line["duration_ms"], float)
    assert 0 <= line["duration_ms"] < 10_000
    # The job key (part of the raw path) is never logged.
    assert key not in service_text(caplog)


def test_errors_and_unknown_routes_are_logged_without_their_raw_path(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    client.get("/v1/jobs/insight/status/SECRETLOOKINGKEY0000000==")  # 401: no credentials
    client.get("/no/such/route/SECRETLOOKINGKEY0000000==")
    client.delete("/v1/transactions")
    lines = access_records(caplog)
    assert [(x["route"], x["status"]) for x in lines] == [
        (STATUS_ROUTE, 401),
        ("unmatched", 404),
        ("/v1/transactions", 405),
    ]
    assert all("app" not in x for x in lines)
    assert "SECRETLOOKINGKEY" not in service_text(caplog)


def test_unhandled_errors_are_logged_with_route_and_tracking_id(
    client: TestClient,
    headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def boom(*_: Any, **__: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(StatusEndpoint, "__call__", boom)
    caplog.set_level(logging.INFO)
    answer = client.get("/v1/jobs/insight/status/AAAAAAAAAAAAAAAAAAAAAA==", headers=headers)
    assert answer.status_code == 500
    tracking = answer.headers["requesttrackingid"]
    assert f"unhandled error serving GET {STATUS_ROUTE} (trackingId {tracking})" in caplog.text
    assert "AAAAAAAAAAAAAAAAAAAAAA==" not in service_text(caplog)
    (line,) = access_records(caplog)
    assert (line["status"], line["trackingId"]) == (500, tracking)


def test_the_access_log_is_silent_when_info_is_off(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=ACCESS_LOGGER)
    client.get("/healthz")
    assert access_records(caplog) == []


def test_access_lines_go_straight_to_the_json_handler(
    runtime: Runtime, app_creds: AppCreds, json_log: tuple[JsonLinesHandler, io.StringIO]
) -> None:
    handler, _ = json_log
    app = build_app(runtime, access_log=AccessLog(sink=handler))
    with TestClient(app, base_url="http://127.0.0.1") as http:
        answer = http.get("/healthz")
    (line,) = [x for x in lines_of(json_log) if x["logger"] == ACCESS_LOGGER]
    assert list(line) == [
        "ts",
        "level",
        "logger",
        "msg",
        "method",
        "route",
        "status",
        "duration_ms",
        "trackingId",
    ]
    assert (line["level"], line["msg"], line["route"], line["status"]) == ("INFO", "request", "/healthz", 200)
    assert line["trackingId"] == answer.headers["requesttrackingid"]
    assert line["ts"].endswith("Z")


def test_identify_names_the_caller_even_from_a_worker_thread(
    client: TestClient,
    headers: dict[str, str],
    app_creds: AppCreds,
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The mechanism: whatever authenticates calls identify(); on PostgreSQL that runs in a thread."""
    admit = authentication.check_rules
    called_in: list[str] = []

    def admit_and_identify(*args: Any, **kwargs: Any) -> authentication.Caller:
        caller = admit(*args, **kwargs)
        called_in.append(threading.current_thread().name)
        identify(caller.app_key, caller.org_id)
        return caller

    monkeypatch.setattr(authentication, "check_rules", admit_and_identify)
    key = submit(client, headers, [record("OBS-2")])
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    caplog.clear()
    client.get(f"/v1/jobs/insight/status/{key}", headers=headers)
    client.get("/healthz")
    status_line, health_line = access_records(caplog)
    assert (status_line["app"], status_line["org"]) == (app_creds.app_key, caller_org(runtime, app_creds))
    assert "app" not in health_line  # a fresh request knows nobody
    assert called_in
    identify("nobody", 0)  # outside a request: nothing to note, and no error


def caller_org(runtime: Runtime, creds: AppCreds) -> int:
    from pendingtx.storage import apps as app_repo

    with runtime.uow.read() as conn:
        found = app_repo.find_app(conn, creds.app_key)
    assert found is not None
    return found.org_id


def test_authenticated_requests_name_their_application_and_organization(
    client: TestClient,
    headers: dict[str, str],
    app_creds: AppCreds,
    runtime: Runtime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=ACCESS_LOGGER)
    key = submit(client, headers, [record("OBS-3")])
    client.get(f"/v1/jobs/insight/status/{key}", headers=headers)
    client.get("/v1/transactions", headers=headers)
    client.post(
        "/v2/oauthtoken",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": app_creds.basic},
    )
    org = caller_org(runtime, app_creds)
    lines = access_records(caplog)
    assert [x["route"] for x in lines] == [
        "/v1/transactions",
        STATUS_ROUTE,
        "/v1/transactions",
        "/v2/oauthtoken",
    ]
    assert all((x.get("app"), x.get("org")) == (app_creds.app_key, org) for x in lines), lines


# --- no credential in any log -----------------------------------------------------------------------


def test_no_secret_token_or_basic_credentials_in_the_logs_of_a_whole_flow(
    runtime: Runtime,
    clock: FakeClock,
    json_log: tuple[JsonLinesHandler, io.StringIO],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """App creation, a token minted with Basic auth, a submission processed by the worker, its status,
    a revocation, a call with the revoked token, and a mint with a wrong secret: every record of all
    of it, at DEBUG (SQL included), holds none of the credentials."""
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # every statement and its parameters
    caplog.set_level(logging.DEBUG)
    handler, _ = json_log
    creds = register(runtime, name="log-app", org="log-org")
    wrong_secret = creds.app_secret[::-1]
    app = build_app(runtime, access_log=AccessLog(sink=handler))
    with TestClient(app, base_url="http://127.0.0.1") as http:
        token = mint(http, creds)
        headers = {"Authorization": f"Bearer {token}", "AppKey": creds.app_key}
        key = submit(http, headers, [record("LOG-1"), record("LOG-2", amount="-1")])
        assert runtime.new_worker().run_until_idle() == 1
        assert http.get(f"/v1/jobs/insight/status/{key}", headers=headers).status_code == 200
        revoked = http.post(
            "/v2/oauthtoken",
            data={"grant_type": "invalidate_token", "token": token},
            headers={"Authorization": creds.basic},
        )
        assert revoked.status_code == 200
        assert http.get(f"/v1/jobs/insight/status/{key}", headers=headers).status_code == 401
        refused = http.post(
            "/v2/oauthtoken",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": basic(creds.app_key, wrong_secret)},
        )
        assert refused.status_code == 401
        form_refused = http.post(
            "/v2/oauthtoken",
            data={
                "grant_type": "client_credentials",
                "client_id": creds.app_key,
                "client_secret": wrong_secret,
            },
        )
        assert form_refused.status_code == 401

    lines = lines_of(json_log)
    text = "\n".join(json.dumps(line) for line in lines) + caplog.text
    assert len(lines) > 20  # the flow really was logged: requests, the worker, SQL
    forbidden = {
        "secret": creds.app_secret,
        "wrong secret": wrong_secret,
        "token": token,
        "basic credentials": creds.basic.removeprefix("Basic "),
        "wrong basic credentials": base64.b64encode(f"{creds.app_key}:{wrong_secret}".encode()).decode(),
    }
    for what, value in forbidden.items():
        assert value not in text, f"the {what} appears in the logs"
    routes = [(x["route"], x["status"]) for x in lines if x["logger"] == ACCESS_LOGGER]
    assert routes == [
        ("/v2/oauthtoken", 200),
        ("/v1/transactions", 202),
        (STATUS_ROUTE, 200),
        ("/v2/oauthtoken", 200),
        (STATUS_ROUTE, 401),
        ("/v2/oauthtoken", 401),
        ("/v2/oauthtoken", 401),
    ]
    events = [x["event"] for x in lines if "event" in x]
    assert events == ["job.claimed", "job.finished"]


def test_redaction_catches_credentials_that_slip_into_a_message(
    json_log: tuple[JsonLinesHandler, io.StringIO],
) -> None:
    token = "Zm9vYmFyYmF6cXV4cXV1eC1hLWxvbmctdG9rZW4tdmFsdWU"
    log = logging.getLogger("pendingtx.test")
    log.warning("got header Authorization: Bearer %s", token)
    log.warning("body was grant_type=x&client_secret=s3cr3t-value&token=%s", token)
    try:
        raise ValueError(f"bad Basic {token}")
    except ValueError:
        log.exception("failed")
    text = json.dumps(lines_of(json_log))
    assert token not in text
    assert "s3cr3t-value" not in text
    assert "[redacted]" in text
    assert redact("Malformed Basic client credentials") == "Malformed Basic client credentials"


def test_json_formatter_writes_one_object_with_fields_and_exception() -> None:
    formatter = JsonFormatter()
    try:
        raise KeyError("x")
    except KeyError:
        record = logging.getLogger("pendingtx.x").makeRecord(
            "pendingtx.x",
            logging.ERROR,
            "f.py",
            1,
            "job %s failed",
            (7,),
            __import__("sys").exc_info(),
            extra={"fields": {"event": "job.given_up", "job": 7}},
        )
    line = json.loads(formatter.format(record))
    assert list(line) == ["ts", "level", "logger", "msg", "event", "job", "exc"]
    assert (line["level"], line["msg"], line["event"]) == ("ERROR", "job 7 failed", "job.given_up")
    assert "KeyError" in line["exc"]


# --- the worker's job transitions --------------------------------------------------------------------


def job_events(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [r.__dict__["fields"] for r in caplog.records if "event" in r.__dict__.get("fields", {})]


def job_row(runtime: Runtime, key: str) -> sa.Row[Any]:
    with runtime.uow.read() as conn:
        return conn.execute(sa.select(jobs).where(jobs.c.key == key)).one()


def test_claimed_and_finished_are_logged_with_their_fields(
    client: TestClient, headers: dict[str, str], runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    key = submit(client, headers, [record("EV-1"), record("EV-2", amount="-1")])
    caplog.set_level(logging.INFO, logger="pendingtx.worker")
    worker = runtime.new_worker()
    assert worker.run_once()
    claimed, finished = job_events(caplog)
    job_id = job_row(runtime, key).id
    common = {"job": job_id, "kind": "create", "attempt": 1, "records": 2, "worker": worker.lease.worker_id}
    assert claimed == {"event": "job.claimed", **common, "org": claimed["org"], "processed": 0}
    assert finished["event"] == "job.finished"
    assert finished["status"] == "Partially Completed"
    assert {k: finished[k] for k in common} == common
    assert finished["duration_ms"] >= 0


def test_a_stopping_worker_hands_its_job_back_at_a_chunk_boundary(
    client: TestClient,
    headers: dict[str, str],
    runtime: Runtime,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    chunk = runtime.settings.worker_chunk_size
    batch = [record(f"HB-{i:04d}") for i in range(chunk * 5)]
    key = submit(client, headers, batch)
    caplog.set_level(logging.INFO, logger="pendingtx.worker")
    stopping = runtime.new_worker()
    assert stopping.run_once(StopAfter(2))  # two chunks done, then asked to stop

    row = job_row(runtime, key)
    assert (row.status, row.processed_count, row.created_count, row.worker_id) == (
        "In Progress",
        2 * chunk,
        2 * chunk,
        None,
    )
    assert row.lease_until <= clock()  # claimable at once, not after the lease
    with runtime.uow.read() as conn:
        claims = conn.execute(sa.select(job_claims).where(job_claims.c.job_id == row.id)).all()
    assert [(c.attempt, c.ended_at is not None) for c in claims] == [(1, True)]
    released = job_events(caplog)[-1]
    assert (released["event"], released["reason"], released["processed"]) == (
        "job.released",
        "stopping",
        2 * chunk,
    )

    assert runtime.new_worker().run_once()  # another worker resumes where it stopped
    row = job_row(runtime, key)
    assert (row.status, row.processed_count, row.created_count, row.failed_count) == (
        "Completed",
        len(batch),
        len(batch),
        0,
    )
    with runtime.uow.read() as conn:
        stored = conn.execute(sa.select(transactions.c.external_id).where(transactions.c.job_id == row.id))
        ids = [r[0] for r in stored]
    assert sorted(ids) == [r["externalId"] for r in batch]


def test_retries_and_giving_up_are_logged(
    client: TestClient,
    headers: dict[str, str],
    runtime: Runtime,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    submit(client, headers, [record("RT-1")])

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("bug")

    # Every job's records are judged here, whether it is done alone or in a batch of small jobs.
    monkeypatch.setattr(processing, "validate_raw", broken)
    caplog.set_level(logging.INFO, logger="pendingtx.worker")
    for _ in range(runtime.settings.worker_max_attempts):
        assert runtime.new_worker().run_once()
        clock.advance(120)  # past the back-off
    events = [(e["event"], e.get("reason"), e["attempt"]) for e in job_events(caplog)]
    assert events == [
        ("job.claimed", None, 1),
        ("job.released", "error", 1),
        ("job.claimed", None, 2),
        ("job.released", "error", 2),
        ("job.claimed", None, 3),
        ("job.given_up", "processing failed 3 times with an internal error", 3),
    ]


def test_a_worker_that_loses_its_lease_logs_it(
    client: TestClient,
    headers: dict[str, str],
    runtime: Runtime,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    chunk = runtime.settings.worker_chunk_size
    submit(client, headers, [record(f"LT-{i}") for i in range(chunk * 3)])
    caplog.set_level(logging.INFO, logger="pendingtx.worker")
    slow = runtime.new_worker("host:1:slow")

    class TakenOverMidJob(threading.Event):
        def is_set(self) -> bool:  # at the first chunk boundary, another worker takes the job
            clock.advance(runtime.settings.worker_lease_seconds + 1)
            assert runtime.new_worker("host:2:taker").claim() is not None
            return False

    assert slow.run_once(TakenOverMidJob())
    assert job_events(caplog)[-1]["event"] == "job.lease_lost"


# --- GET /metrics -------------------------------------------------------------------------------------


def scrape(client: TestClient) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The samples of a scrape: name -> {sorted labels: value}."""
    answer = client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


def test_requests_are_counted_by_route_template_method_and_status(
    client: TestClient, headers: dict[str, str]
) -> None:
    key = submit(client, headers, [record("M-1")])
    for _ in range(3):
        client.get(f"/v1/jobs/insight/status/{key}", headers=headers)
    client.get(f"/v1/jobs/insight/status/{key}")
    client.get("/nowhere")
    metrics = scrape(client)
    status_ok = labels(route=STATUS_ROUTE, method="GET", status="200")
    assert metrics["pendingtx_http_requests_total"][status_ok] == 3
    assert (
        metrics["pendingtx_http_requests_total"][labels(route=STATUS_ROUTE, method="GET", status="401")] == 1
    )
    assert (
        metrics["pendingtx_http_requests_total"][labels(route="unmatched", method="GET", status="404")] == 1
    )
    post = labels(route="/v1/transactions", method="POST", status="202")
    assert metrics["pendingtx_http_requests_total"][post] == 1
    assert metrics["pendingtx_http_request_duration_seconds_count"][status_ok] == 3
    inf_bucket = labels(route=STATUS_ROUTE, method="GET", status="200", le="+Inf")
    assert metrics["pendingtx_http_request_duration_seconds_bucket"][inf_bucket] == 3
    assert 0 < metrics["pendingtx_http_request_duration_seconds_sum"][status_ok] < 30
    assert key not in client.get("/metrics").text


def test_job_figures_come_from_the_database_at_scrape_time(
    client: TestClient, headers: dict[str, str], runtime: Runtime, clock: FakeClock
) -> None:
    metrics = scrape(client)
    assert metrics["pendingtx_database_up"][()] == 1
    assert metrics["pendingtx_queue_depth"][()] == 0
    assert metrics["pendingtx_oldest_waiting_job_age_seconds"][()] == 0
    assert metrics["pendingtx_job_takeovers_total"][()] == 0

    submit(client, headers, [record("Q-1")])
    assert runtime.new_worker().run_once()
    clock.advance(5)
    submit(client, headers, [record("Q-2")])
    submit(client, headers, [record("Q-3")])
    clock.advance(42)
    metrics = scrape(client)
    jobs_by_status = {dict(k)["status"]: v for k, v in metrics["pendingtx_jobs"].items()}
    assert jobs_by_status == {
        "Submitted": 2,
        "In Progress": 0,
        "Completed": 1,
        "Partially Completed": 0,
        "Failed": 0,
        "Cancelled": 0,
    }
    assert metrics["pendingtx_queue_depth"][()] == 2
    assert metrics["pendingtx_oldest_waiting_job_age_seconds"][()] == 42

    # A claim whose lease runs out makes its job wait again, and the next claim is a takeover.
    assert runtime.new_worker("host:1:dies").claim() is not None
    assert scrape(client)["pendingtx_queue_depth"][()] == 1
    clock.advance(runtime.settings.worker_lease_seconds + 1)
    assert scrape(client)["pendingtx_queue_depth"][()] == 2
    assert runtime.new_worker().run_until_idle() == 2
    metrics = scrape(client)
    assert metrics["pendingtx_job_takeovers_total"][()] == 1
    assert metrics["pendingtx_queue_depth"][()] == 0


def test_without_the_database_the_scrape_still_answers(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(*_: Any, **__: Any) -> Any:
        raise sa.exc.OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(claim, "queue_snapshot", unreachable)
    client.get("/healthz")
    metrics = scrape(client)
    assert metrics["pendingtx_database_up"][()] == 0
    assert "pendingtx_jobs" not in metrics
    assert "pendingtx_http_requests_total" in metrics


def test_each_app_has_its_own_registry_and_the_global_one_is_untouched(
    runtime: Runtime, client: TestClient
) -> None:
    client.get("/healthz")
    with TestClient(build_app(runtime), base_url="http://127.0.0.1") as other:
        health = labels(route="/healthz", method="GET", status="200")
        assert health not in scrape(other).get("pendingtx_http_requests_total", {})
    assert health in scrape(client)["pendingtx_http_requests_total"]
    assert "pendingtx_http_requests" not in prometheus_client.generate_latest().decode()


def test_metrics_can_be_scraped_in_openmetrics(client: TestClient) -> None:
    answer = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/openmetrics-text")
    assert answer.text.rstrip().endswith("# EOF")


def test_unusual_methods_share_one_series(client: TestClient) -> None:
    client.request("PROPFIND", "/healthz")
    client.request("MKCOL", "/healthz")
    other = labels(route="/healthz", method="other", status="405")
    assert scrape(client)["pendingtx_http_requests_total"][other] == 2
