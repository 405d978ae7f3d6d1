"""Status GETs of terminal jobs: their answers are rendered once, yet every request is still
authenticated, budgeted and scoped to the caller's organization; and the status route's own dispatch.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime
from pendingtx.domain.jobs import JobKind, JobStatus
from pendingtx.services import credentials
from pendingtx.services.job_status import FinishedAnswerCache, KeptAnswer
from pendingtx.storage.jobs import JobRecord
from tests.conftest import AppCreds, assert_error, mint, register
from tests.support import record

pytestmark = pytest.mark.usefixtures("cheap_argon2")


@pytest.fixture
def finished(client: TestClient, runtime: Runtime, headers: dict[str, str]) -> str:
    """The key of a Partially Completed job (so with recorded problems), read once already."""
    accepted = client.post(
        "/v1/transactions", json=[record("SA-1"), record("SA-2", amount=0)], headers=headers
    )
    assert accepted.status_code == 202, accepted.text
    runtime.new_worker().run_until_idle()
    first = status(client, headers, accepted.json()["jobStatusQueryKey"])
    assert first.json()["status"] == "Partially Completed"
    return str(accepted.json()["jobStatusQueryKey"])


def status(client: TestClient, headers: dict[str, str], key: str) -> Any:
    return client.get(f"/v1/jobs/insight/status/{key}", headers=headers)


def test_a_terminal_answer_is_the_same_on_every_read(
    client: TestClient, headers: dict[str, str], finished: str
) -> None:
    answers = [status(client, headers, finished) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert len({a.content for a in answers}) == 1
    body = answers[0].json()
    assert body["validationMessage"] == ["[1] externalId=SA-2: amount: must be greater than 0"]
    assert "retry-after" not in answers[0].headers


def test_a_revoked_token_is_refused_on_the_next_read(
    client: TestClient, app_creds: AppCreds, token: str, headers: dict[str, str], finished: str
) -> None:
    revoked = client.post(
        "/v2/oauthtoken",
        data={"grant_type": "invalidate_token", "token": token},
        headers={"Authorization": app_creds.basic},
    )
    assert revoked.status_code == 200
    assert_error(status(client, headers, finished), 401, "gateway.authentication.failure")


def test_a_disabled_application_is_refused_on_the_next_read(
    client: TestClient, runtime: Runtime, app_creds: AppCreds, headers: dict[str, str], finished: str
) -> None:
    assert credentials.set_disabled(runtime.uow, app_creds.app_key)
    assert_error(status(client, headers, finished), 401, "gateway.authentication.failure")
    assert credentials.set_disabled(runtime.uow, app_creds.app_key, disabled=False)
    assert status(client, headers, finished).status_code == 200


def test_a_wrong_app_key_is_refused(client: TestClient, headers: dict[str, str], finished: str) -> None:
    wrong = {**headers, "AppKey": "0" * 32}
    assert_error(status(client, wrong, finished), 401, "gateway.authentication.failure")


def test_another_organization_is_told_the_job_does_not_exist(
    client: TestClient, headers: dict[str, str], other_headers: dict[str, str], finished: str
) -> None:
    assert_error(status(client, other_headers, finished), 404, "resource.not.found")


def test_another_application_of_the_organization_reads_the_same_answer(
    client: TestClient, runtime: Runtime, headers: dict[str, str], finished: str
) -> None:
    sibling = register(runtime, name="sibling-app")
    sibling_headers = {"Authorization": f"Bearer {mint(client, sibling)}", "AppKey": sibling.app_key}
    assert status(client, sibling_headers, finished).content == status(client, headers, finished).content


def test_reads_of_a_terminal_job_still_spend_the_budget(serve_with: Any, app_creds: AppCreds) -> None:
    served = serve_with(app_status_reads_per_minute=3)
    client = served.client
    headers = {"Authorization": f"Bearer {mint(client, app_creds)}", "AppKey": app_creds.app_key}
    accepted = client.post("/v1/transactions", json=[record("SB-1")], headers=headers)
    served.runtime.new_worker().run_until_idle()
    key = accepted.json()["jobStatusQueryKey"]
    assert [status(client, headers, key).status_code for _ in range(3)] == [200, 200, 200]
    assert_error(status(client, headers, key), 429, "request.rate.limited")


@pytest.mark.parametrize(
    "path",
    [
        "/v1/jobs/insight/status/",
        "/v1/jobs//status/KEY",
        "/v1/jobs/insight/status/KEY/",
        "/v1/jobs/insight/status/KEY/more",
        "/v1/jobs/insight/state/KEY",
        "/v2/jobs/insight/status/KEY",
    ],
)
def test_paths_near_the_status_route_are_not_found(
    client: TestClient, headers: dict[str, str], path: str
) -> None:
    assert_error(client.get(path, headers=headers), 404, "resource.not.found")


def test_other_methods_on_the_status_route_are_405(client: TestClient, headers: dict[str, str]) -> None:
    answer = client.post("/v1/jobs/insight/status/KEY", headers=headers)
    assert_error(answer, 405, "request.method.not.allowed")


# --- the kept answers themselves --------------------------------------------------------------------


def _job(job_id: int) -> JobRecord:
    return JobRecord(
        id=job_id,
        key=f"K{job_id}",
        kind=JobKind.CREATE,
        status=JobStatus.COMPLETED,
        record_count=1,
        processed_count=1,
        created_count=1,
        failed_count=0,
        message=None,
        submitted_at=datetime(2026, 1, 1, tzinfo=UTC),
        completed_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def _body(answers: FinishedAnswerCache, org_id: int, key: str) -> bytes | None:
    kept = answers.get(org_id, key)
    return None if kept is None else kept.body


def test_answers_are_kept_per_organization_and_job() -> None:
    answers = FinishedAnswerCache()
    answers.put(1, _job(7), b"one", 3)
    assert answers.get(1, "K7") == KeptAnswer(b"one", 7, 3)
    assert answers.get(2, "K7") is None
    assert answers.get(1, "K8") is None


def test_a_new_job_under_a_kept_key_replaces_its_answer() -> None:
    answers = FinishedAnswerCache(max_bytes=11)
    answers.put(1, _job(7), b"one")
    answers.put(1, dataclasses.replace(_job(8), key="K7"), b"two")
    assert answers.get(1, "K7") == KeptAnswer(b"two", 8, None)
    assert len(answers) == 1
    answers.put(1, _job(9), b"three456")  # fits only if the replaced answer's size was given back
    assert len(answers) == 2


def test_the_oldest_answers_go_first_beyond_the_size_bound() -> None:
    answers = FinishedAnswerCache(max_bytes=10, max_answer_bytes=6)
    answers.put(1, _job(1), b"aaaa")
    answers.put(1, _job(2), b"bbbb")
    answers.put(1, _job(3), b"cccc")
    assert [_body(answers, 1, f"K{i}") for i in (1, 2, 3)] == [None, b"bbbb", b"cccc"]
    answers.put(1, _job(4), b"too long")
    assert answers.get(1, "K4") is None
    assert len(answers) == 2
