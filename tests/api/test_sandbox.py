"""Sandbox mode over HTTP (contract 7.6): the `Sandbox: true` header, and nothing of it without
sandbox mode."""

from __future__ import annotations

from collections.abc import Iterator

import jsonschema_rs
import pytest
import sqlalchemy as sa
from openapi_spec_validator import validate
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime, build_app
from pendingtx.clock import SandboxClock
from pendingtx.config import Settings
from pendingtx.domain.times import to_eastern_iso
from pendingtx.storage import tables
from pendingtx.storage.driver.engine import make_engine
from pendingtx.storage.sandbox import check_mode
from tests.conftest import AppCreds, assert_error, mint, register
from tests.support import FakeClock, record

pytestmark = pytest.mark.usefixtures("cheap_argon2")


@pytest.fixture
def sandbox_runtime(settings: Settings, clock: FakeClock) -> Iterator[Runtime]:
    tuned = settings.replace(sandbox=True)
    rt = Runtime(settings=tuned, engine=make_engine(tuned), clock=SandboxClock(clock))
    check_mode(rt.uow, sandbox=True, now=clock())
    yield rt
    rt.close()


@pytest.fixture
def sandbox(sandbox_runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(build_app(sandbox_runtime), base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture
def sandbox_creds(sandbox_runtime: Runtime) -> AppCreds:
    return register(sandbox_runtime)


@pytest.fixture
def sandbox_headers(sandbox: TestClient, sandbox_creds: AppCreds) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint(sandbox, sandbox_creds)}", "AppKey": sandbox_creds.app_key}


def test_every_sandbox_answer_says_sandbox(sandbox: TestClient, sandbox_headers: dict[str, str]) -> None:
    answers = [
        sandbox.get("/healthz"),
        sandbox.get("/nowhere"),
        sandbox.get("/v1/transactions", headers=sandbox_headers),
        sandbox.get("/v1/transactions"),
        sandbox.post("/v1/transactions", json=[record("SB-1")], headers=sandbox_headers),
        sandbox.get("/v1/jobs/insight/status/AAAAAAAAAAAAAAAAAAAAAA==", headers=sandbox_headers),
    ]
    assert [a.headers.get("sandbox") for a in answers] == ["true"] * len(answers)
    assert_error(answers[1], 404, "resource.not.found")


def test_without_sandbox_mode_there_is_no_header_no_fault_and_no_sandbox_route(
    client: TestClient, headers: dict[str, str]
) -> None:
    listed = client.get("/v1/transactions", headers={**headers, "Prefer": "code=503, delay=5000"})
    assert listed.status_code == 200
    assert "sandbox" not in listed.headers
    assert "preference-applied" not in listed.headers
    for method, path in (("GET", "/sandbox/clock"), ("POST", "/sandbox/clock"), ("POST", "/sandbox/reset")):
        answer = client.request(method, path, headers=headers, json={"advanceSeconds": 1})
        assert_error(answer, 404, "resource.not.found")
        assert "sandbox" not in answer.headers


@pytest.mark.parametrize(
    ("code", "error", "retry_after"),
    [
        ("429", "request.rate.limited", "1"),
        ("500", "internal.server.failure", None),
        ("503", "service.unavailable", "1"),
    ],
)
def test_prefer_code_answers_that_contract_error_instead(
    sandbox: TestClient, sandbox_headers: dict[str, str], code: str, error: str, retry_after: str | None
) -> None:
    for method, path in (
        ("POST", "/v1/transactions"),
        ("GET", "/v1/transactions"),
        ("GET", "/v1/jobs/insight/status/AAAAAAAAAAAAAAAAAAAAAA=="),
    ):
        answer = sandbox.request(
            method, path, json=[record("SB-F")], headers={**sandbox_headers, "Prefer": f"code={code}"}
        )
        assert_error(answer, int(code), error)
        assert answer.headers.get("retry-after") == retry_after
        assert answer.headers["preference-applied"] == f"code={code}"
    # Nothing was stored: the fault came instead of the real answer.
    listed = sandbox.get("/v1/transactions", headers=sandbox_headers)
    assert listed.json()["paging"]["totalCount"] == 0


def test_prefer_delay_is_applied_and_named(sandbox: TestClient, sandbox_headers: dict[str, str]) -> None:
    answer = sandbox.get("/v1/transactions", headers={**sandbox_headers, "Prefer": "delay=20, respond-async"})
    assert answer.status_code == 200
    assert answer.headers["preference-applied"] == "delay=20"
    both = sandbox.get(
        "/v1/transactions", headers={**sandbox_headers, "Prefer": "delay=1", "prefer": "code=503"}
    )
    assert_error(both, 503, "service.unavailable")
    assert both.headers["preference-applied"] == "delay=1, code=503"


def test_a_sandbox_answers_other_preferences_and_other_paths_as_usual(
    sandbox: TestClient, sandbox_headers: dict[str, str], sandbox_creds: AppCreds
) -> None:
    listed = sandbox.get("/v1/transactions", headers={**sandbox_headers, "Prefer": "return=minimal"})
    assert listed.status_code == 200
    assert "preference-applied" not in listed.headers
    token = sandbox.post(
        "/v2/oauthtoken",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": sandbox_creds.basic, "Prefer": "code=503"},
    )
    assert token.status_code == 200


@pytest.mark.parametrize("prefer", ["code=404", "code=abc", "delay=10001", "delay=-1", "delay=1.5"])
def test_an_impossible_fault_is_a_bad_request(
    sandbox: TestClient, sandbox_headers: dict[str, str], prefer: str
) -> None:
    answer = sandbox.get("/v1/transactions", headers={**sandbox_headers, "Prefer": prefer})
    body = assert_error(answer, 400, "request.validation.failure")
    assert body["errors"][0]["field"] == "Prefer"


def test_advancing_the_clock_3601_seconds_expires_a_token(
    sandbox: TestClient, sandbox_headers: dict[str, str], sandbox_runtime: Runtime
) -> None:
    before = sandbox.get("/sandbox/clock", headers=sandbox_headers)
    assert before.status_code == 200
    assert before.json()["offsetSeconds"] == 0
    moved = sandbox.post("/sandbox/clock", json={"advanceSeconds": 3601}, headers=sandbox_headers)
    assert moved.status_code == 200, moved.text
    assert moved.json()["offsetSeconds"] == 3601
    assert moved.json()["now"] == to_eastern_iso(sandbox_runtime.clock())
    expired = sandbox.get("/v1/transactions", headers=sandbox_headers)
    body = assert_error(expired, 401, "gateway.authentication.failure")
    assert body["message"] == "Access Token expired"
    assert expired.headers["sandbox"] == "true"


@pytest.mark.parametrize(
    "body", [{"advanceSeconds": -1}, {"advanceSeconds": "60"}, {"advanceSeconds": 1.5}, {"other": 1}, [1]]
)
def test_an_impossible_clock_move_is_a_bad_request(
    sandbox: TestClient, sandbox_headers: dict[str, str], body: object
) -> None:
    answer = sandbox.post("/sandbox/clock", json=body, headers=sandbox_headers)
    assert_error(answer, 400, "request.validation.failure")
    assert sandbox.get("/sandbox/clock", headers=sandbox_headers).json()["offsetSeconds"] == 0


def test_sandbox_routes_need_a_token_and_appkey(sandbox: TestClient, sandbox_creds: AppCreds) -> None:
    for method, path in (("GET", "/sandbox/clock"), ("POST", "/sandbox/clock"), ("POST", "/sandbox/reset")):
        answer = sandbox.request(
            method, path, json={"advanceSeconds": 1}, headers={"AppKey": sandbox_creds.app_key}
        )
        assert_error(answer, 401, "gateway.authentication.failure")


def count_rows(runtime: Runtime) -> dict[str, int]:
    with runtime.engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
            for t in (
                tables.transactions,
                tables.jobs,
                tables.events,
                tables.job_problems,
                tables.job_claims,
                tables.webhook_deliveries,
                tables.webhook_attempts,
            )
        }


def fill_organization(runtime: Runtime, client: TestClient, headers: dict[str, str]) -> None:
    """Jobs with transactions, problems, claims and events, and a webhook delivery of each event."""
    for n in range(2):
        accepted = client.post(
            "/v1/transactions", json=[record(f"R{n}"), record(f"R{n}-bad", amount="0")], headers=headers
        )
        assert accepted.status_code == 202
    assert runtime.new_worker().run_until_idle()
    now = runtime.clock()
    with runtime.engine.begin() as conn:
        org_id = conn.execute(
            sa.select(tables.apps.c.org_id).where(tables.apps.c.app_key == headers["AppKey"])
        ).scalar_one()
        hook = conn.execute(
            tables.webhooks.insert()
            .values(
                org_id=org_id,
                public_id=f"wh_{org_id}",
                url="https://example.com/h",
                events="*",
                secret=b"x",
                enabled=True,
                cursor=0,
                created_at=now,
            )
            .returning(tables.webhooks.c.id)
        ).scalar_one()
        for event_id in (
            conn.execute(sa.select(tables.events.c.id).where(tables.events.c.org_id == org_id))
            .scalars()
            .all()
        ):
            delivery = conn.execute(
                tables.webhook_deliveries.insert()
                .values(
                    webhook_id=hook,
                    event_id=event_id,
                    state="pending",
                    attempts=1,
                    due_at=now,
                    created_at=now,
                )
                .returning(tables.webhook_deliveries.c.id)
            ).scalar_one()
            conn.execute(
                tables.webhook_attempts.insert().values(
                    webhook_id=hook,
                    delivery_id=delivery,
                    event_public_id="evt",
                    attempt=1,
                    attempted_at=now,
                    status_code=500,
                    duration_ms=1,
                )
            )


def test_reset_empties_the_callers_organization_only(
    sandbox: TestClient, sandbox_headers: dict[str, str], sandbox_runtime: Runtime
) -> None:
    other = register(sandbox_runtime, name="other-app", org="other")
    other_headers = {"Authorization": f"Bearer {mint(sandbox, other)}", "AppKey": other.app_key}
    fill_organization(sandbox_runtime, sandbox, other_headers)
    kept = count_rows(sandbox_runtime)
    fill_organization(sandbox_runtime, sandbox, sandbox_headers)
    assert count_rows(sandbox_runtime) != kept
    answer = sandbox.post("/sandbox/reset", headers=sandbox_headers)
    assert answer.status_code == 204, answer.text
    assert count_rows(sandbox_runtime) == kept
    assert sandbox.get("/v1/transactions", headers=sandbox_headers).json()["paging"]["totalCount"] == 0
    assert sandbox.get("/v1/transactions", headers=other_headers).json()["paging"]["totalCount"] == 2
    # The organization goes on as new: the same externalIds are accepted again.
    accepted = sandbox.post("/v1/transactions", json=[record("R0")], headers=sandbox_headers)
    assert accepted.status_code == 202
    assert sandbox_runtime.new_worker().run_until_idle()
    assert sandbox.get("/v1/transactions", headers=sandbox_headers).json()["paging"]["totalCount"] == 1


def test_a_sandboxs_openapi_document_has_the_sandbox_routes_and_a_production_one_not(
    sandbox: TestClient, client: TestClient, sandbox_headers: dict[str, str]
) -> None:
    document = sandbox.get("/openapi.json").json()
    validate(document)
    assert {
        p: sorted(set(item) & {"get", "post"})
        for p, item in document["paths"].items()
        if p.startswith("/sandbox")
    } == {
        "/sandbox/clock": ["get", "post"],
        "/sandbox/reset": ["post"],
    }
    assert all(
        "Sandbox only" in op["description"]
        for p, item in document["paths"].items()
        if p.startswith("/sandbox")
        for op in item.values()
    )
    moved = sandbox.post("/sandbox/clock", json={"advanceSeconds": 5}, headers=sandbox_headers).json()
    schema = document["paths"]["/sandbox/clock"]["post"]["responses"]["200"]["content"]["application/json"][
        "schema"
    ]
    jsonschema_rs.validate(schema, moved)
    assert not [p for p in client.get("/openapi.json").json()["paths"] if p.startswith("/sandbox")]


def test_after_a_reset_a_new_job_answers_for_itself(
    sandbox: TestClient, sandbox_headers: dict[str, str], sandbox_runtime: Runtime
) -> None:
    def run_one(records: list[dict[str, object]]) -> dict[str, object]:
        accepted = sandbox.post("/v1/transactions", json=records, headers=sandbox_headers).json()
        assert sandbox_runtime.new_worker().run_until_idle()
        answer = sandbox.get(
            f"/v1/jobs/insight/status/{accepted['jobStatusQueryKey']}", headers=sandbox_headers
        )
        assert answer.status_code == 200
        return {**answer.json(), "key": accepted["jobStatusQueryKey"]}

    first = run_one([record("A-1"), record("A-2", amount="0")])  # a terminal answer, kept by the process
    assert first["status"] == "Partially Completed"
    assert sandbox.post("/sandbox/reset", headers=sandbox_headers).status_code == 204
    again = run_one([record("A-1")])
    # On SQLite the batch id comes round again; the key never does, nor the old answer.
    assert again["key"] != first["key"]
    assert again["status"] == "Completed"
