from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime
from tests.support import record


def test_submit_then_status(client: TestClient, headers: dict[str, str], runtime: Runtime) -> None:
    answer = client.post("/v1/transactions", json=[record("A-1"), record("A-2", amount=-1)], headers=headers)
    assert answer.status_code == 202
    key = answer.json()["jobStatusQueryKey"]
    assert answer.headers["location"] == f"/v1/jobs/insight/status/{key}"
    pending = client.get(f"/v1/jobs/insight/status/{key}", headers=headers)
    assert pending.json()["status"] == "Submitted"
    assert pending.headers["retry-after"] == "1"
    assert runtime.new_worker().run_until_idle() == 1
    done = client.get(f"/v1/jobs/insight/status/{key}", headers=headers)
    assert done.json()["status"] == "Partially Completed"
    assert "retry-after" not in done.headers
