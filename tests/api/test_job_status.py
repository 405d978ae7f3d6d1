"""Job status: `GET /v1/jobs/{appName}/status/{key}` (spec 3.1)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime
from pendingtx.services import enqueue
from tests.conftest import AppCreds, assert_error, mint
from tests.support import FakeClock, record

pytestmark = pytest.mark.usefixtures("cheap_argon2")

DOCUMENTED = ["status", "batchId", "message", "validationMessage"]
DETAILS = [
    "recordCount",
    "processedCount",
    "failedCount",
    "submittedAt",
    "completedAt",
    "validationDetails",
    "truncated",
]
LINE = re.compile(r"\[(\d+)\] externalId=(\S+): (\w+): (.+)")
UNKNOWN_KEY = "NjasfsdgTkkMDcvMjOTowMA=="


def submit(client: TestClient, headers: dict[str, str], batch: Any) -> tuple[str, str]:
    answer = client.post("/v1/transactions", json=batch, headers=headers)
    assert answer.status_code == 202, answer.text
    return answer.json()["jobStatusQueryKey"], answer.json()["batchId"]


def get_status(client: TestClient, headers: dict[str, str], key: str, app_name: str = "insight") -> Any:
    return client.get(f"/v1/jobs/{app_name}/status/{key}", headers=headers)


def status_body(client: TestClient, headers: dict[str, str], key: str) -> dict[str, Any]:
    answer = get_status(client, headers, key)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert list(body) == DOCUMENTED + DETAILS
    assert isinstance(body["status"], str)
    assert isinstance(body["message"], str)
    assert isinstance(body["validationMessage"], list)
    assert answer.headers["requesttrackingid"]
    return body


def retry_after(client: TestClient, headers: dict[str, str], key: str) -> str | None:
    value: str | None = get_status(client, headers, key).headers.get("retry-after")
    return value


# --- the five statuses -----------------------------------------------------------------------------


def test_submitted(client: TestClient, headers: dict[str, str]) -> None:
    key, batch_id = submit(client, headers, [record("S-1"), record("S-2")])
    body = status_body(client, headers, key)
    assert body["status"] == "Submitted"
    assert body["batchId"] == batch_id
    assert body["message"].startswith("Submitted")
    assert body["validationMessage"] == []
    assert (body["recordCount"], body["processedCount"], body["failedCount"]) == (2, 0, 0)
    assert body["completedAt"] is None
    assert body["validationDetails"] == []
    assert retry_after(client, headers, key) == "1"


def test_in_progress(client: TestClient, runtime: Runtime, headers: dict[str, str]) -> None:
    key, batch_id = submit(client, headers, [record("P-1"), record("P-2")])
    claimed = runtime.new_worker().claim()
    assert claimed is not None
    assert claimed.id == int(batch_id)
    body = status_body(client, headers, key)
    assert body["status"] == "In Progress"
    assert body["message"].startswith("In Progress")
    assert body["completedAt"] is None
    assert retry_after(client, headers, key) == "1"


def test_completed(client: TestClient, runtime: Runtime, headers: dict[str, str]) -> None:
    key, batch_id = submit(client, headers, [record("C-1"), record("C-2")])
    assert runtime.new_worker().run_until_idle() == 1
    body = status_body(client, headers, key)
    assert body["status"] == "Completed"
    assert body["batchId"] == batch_id
    assert body["message"] == "Completed: 2 of 2 transactions created"
    assert body["validationMessage"] == []
    assert (body["recordCount"], body["processedCount"], body["failedCount"]) == (2, 2, 0)
    assert body["completedAt"] is not None
    assert retry_after(client, headers, key) is None


def test_partially_completed(client: TestClient, runtime: Runtime, headers: dict[str, str]) -> None:
    key, _ = submit(client, headers, [record("PT-7"), record("PT-8"), record("PT-9", amount=0)])
    runtime.new_worker().run_until_idle()
    body = status_body(client, headers, key)
    assert body["status"] == "Partially Completed"
    assert body["message"] == "Partially Completed: 2 of 3 transactions created; 1 rejected"
    assert body["validationMessage"] == ["[2] externalId=PT-9: amount: must be greater than 0"]
    assert (body["recordCount"], body["processedCount"], body["failedCount"]) == (3, 3, 1)
    assert body["validationDetails"] == [
        {"index": 2, "externalId": "PT-9", "field": "amount", "reason": "must be greater than 0"}
    ]
    assert retry_after(client, headers, key) is None


def test_failed(client: TestClient, runtime: Runtime, headers: dict[str, str]) -> None:
    key, _ = submit(client, headers, [record("F-1", amount=-5), record("F-2", tradeDate="27/11/2026")])
    runtime.new_worker().run_until_idle()
    body = status_body(client, headers, key)
    assert body["status"] == "Failed"
    assert body["message"] == "Failed: 0 of 2 transactions created; 2 rejected"
    assert [LINE.fullmatch(m) is not None for m in body["validationMessage"]] == [True, True]
    assert body["validationMessage"][0] == "[0] externalId=F-1: amount: must be greater than 0"
    assert body["validationMessage"][1].startswith("[1] externalId=F-2: tradeDate: ")
    assert (body["processedCount"], body["failedCount"]) == (2, 2)
    assert retry_after(client, headers, key) is None


def test_terminal_status_never_changes(client: TestClient, runtime: Runtime, headers: dict[str, str]) -> None:
    key, _ = submit(client, headers, [record("T-1"), record("T-2", amount=-1)])
    runtime.new_worker().run_until_idle()
    first = status_body(client, headers, key)
    assert runtime.new_worker().run_until_idle() == 0
    submit(client, headers, [record("T-1")])  # a later job touching the same externalId
    runtime.new_worker().run_until_idle()
    assert status_body(client, headers, key) == first


def test_retry_after_follows_its_setting(serve_with: Any, headers: dict[str, str]) -> None:
    served = serve_with(status_retry_after_seconds=7)
    key, _ = submit(served.client, headers, record("RA-1"))
    assert retry_after(served.client, headers, key) == "7"


# --- validation messages and times -----------------------------------------------------------------


def test_validation_messages_name_index_external_id_and_field(
    client: TestClient, runtime: Runtime, headers: dict[str, str]
) -> None:
    batch = [
        record("V-0"),
        record("V-1", amount="1.234", currency="XXQ"),
        record("V-2", colour="blue"),
    ]
    key, _ = submit(client, headers, batch)
    runtime.new_worker().run_until_idle()
    body = status_body(client, headers, key)
    lines = body["validationMessage"]
    assert len(lines) == 3
    parsed = [LINE.fullmatch(line) for line in lines]
    assert all(parsed), lines
    assert [(m.group(1), m.group(2), m.group(3)) for m in parsed if m] == [
        ("1", "V-1", "amount"),
        ("1", "V-1", "currency"),
        ("2", "V-2", "colour"),
    ]
    details = body["validationDetails"]
    assert [
        f"[{d['index']}] externalId={d['externalId']}: {d['field']}: {d['reason']}" for d in details
    ] == lines


def fresh_headers(client: TestClient, creds: AppCreds) -> dict[str, str]:
    """Headers with a token minted now (after the test moved the clock)."""
    return {"Authorization": f"Bearer {mint(client, creds)}", "AppKey": creds.app_key}


def test_times_are_shown_in_new_york_time_in_winter(
    client: TestClient, runtime: Runtime, clock: FakeClock, app_creds: AppCreds
) -> None:
    clock.now = datetime(2026, 11, 29, 11, 15, 2, 120_000, tzinfo=UTC)
    headers = fresh_headers(client, app_creds)
    key, _ = submit(client, headers, record("W-1"))
    clock.advance(0.06)
    runtime.new_worker().run_until_idle()
    body = status_body(client, headers, key)
    assert body["submittedAt"] == "2026-11-29T06:15:02.120-05:00"
    assert body["completedAt"] == "2026-11-29T06:15:02.180-05:00"


def test_times_honour_daylight_saving(client: TestClient, clock: FakeClock, app_creds: AppCreds) -> None:
    clock.now = datetime(2026, 7, 1, 16, 0, 0, 5_000, tzinfo=UTC)
    headers = fresh_headers(client, app_creds)
    key, _ = submit(client, headers, record("D-1"))
    body = status_body(client, headers, key)
    assert body["submittedAt"] == "2026-07-01T12:00:00.005-04:00"
    assert body["completedAt"] is None


# --- malformed requests ----------------------------------------------------------------------------


@pytest.mark.parametrize("app_name", ["Insight", "INSIGHT", "insights", "other", "insight "])
def test_app_name_other_than_insight_is_400(
    client: TestClient, headers: dict[str, str], app_name: str
) -> None:
    key, _ = submit(client, headers, record("A-1"))
    answer = get_status(client, headers, key, app_name=app_name)
    body = assert_error(answer, 400, "request.validation.failure")
    assert [(e["field"], e["location"]) for e in body["errors"]] == [("appName", "path")]
    assert body["errors"][0]["reason"]


@pytest.mark.parametrize(
    "key",
    [
        "A" * 129,
        "abc!def",
        "NjasfsdgTkkMDcvMjOTowMA=!",
        "abc.def",
        "abc def",
        "abc%25def",
        "caf\u00e9",
        "abc~",
    ],
)
def test_impossible_key_is_400(client: TestClient, headers: dict[str, str], key: str) -> None:
    body = assert_error(get_status(client, headers, key), 400, "request.validation.failure")
    assert [(e["field"], e["location"]) for e in body["errors"]] == [("key", "path")]


@pytest.mark.parametrize("key", [UNKNOWN_KEY, "A" * 128, "a", "abc+def-_=="])
def test_unknown_well_formed_key_is_404(client: TestClient, headers: dict[str, str], key: str) -> None:
    assert_error(get_status(client, headers, key), 404, "resource.not.found")


def test_another_organizations_key_is_404_like_an_unknown_key(
    client: TestClient,
    headers: dict[str, str],
    other_headers: dict[str, str],
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What "other" is told about a key nobody has...
    unknown = get_status(client, other_headers, UNKNOWN_KEY)
    # ...and, once acme has a job with exactly that key, about acme's job.
    monkeypatch.setattr(enqueue, "new_job_key", lambda: UNKNOWN_KEY)
    key, _ = submit(client, headers, record("ISO-1"))
    assert key == UNKNOWN_KEY
    assert status_body(client, headers, key)["status"] == "Submitted"
    foreign = get_status(client, other_headers, key)

    unknown_body = assert_error(unknown, 404, "resource.not.found")
    foreign_body = assert_error(foreign, 404, "resource.not.found")
    assert unknown_body.pop("trackingId") != foreign_body.pop("trackingId")
    assert foreign_body == unknown_body
    assert foreign.content.replace(
        foreign.headers["requesttrackingid"].encode(), b""
    ) == unknown.content.replace(unknown.headers["requesttrackingid"].encode(), b"")

    def visible(answer: Any) -> dict[str, str]:
        return {k: v for k, v in answer.headers.items() if k != "requesttrackingid"}

    assert visible(foreign) == visible(unknown)

    # Also once the job has finished.
    runtime.new_worker().run_until_idle()
    assert status_body(client, headers, key)["status"] == "Completed"
    finished = assert_error(get_status(client, other_headers, key), 404, "resource.not.found")
    finished.pop("trackingId")
    assert finished == unknown_body
