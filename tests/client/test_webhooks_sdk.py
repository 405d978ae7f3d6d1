"""The SDK's webhook calls against the real application, and `pendingtx_client.webhooks.verify`."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from pendingtx.bootstrap import Runtime
from pendingtx.config import Settings
from pendingtx_client import Client, NotFound, ValidationError
from pendingtx_client.webhooks import WebhookVerificationError, verify
from tests.client.conftest import FakeTime, Run
from tests.support import record

HOOK = "http://127.0.0.1:9/hook"


@pytest.fixture
def settings(database_url: str) -> Settings:
    # A target on 127.0.0.1, as in development.
    return Settings(database_url=database_url, log_level="warning", webhook_allow_private=True)


def test_register_list_change_replay_and_delete(sdk: Client, runtime: Runtime, fake_time: FakeTime) -> None:
    made = sdk.create_webhook(HOOK, events=["job.completed"], description="ops")
    assert made["secret"].startswith("whsec_")
    assert [w["id"] for w in sdk.webhooks()] == [made["id"]]
    assert sdk.get_webhook(made["id"])["description"] == "ops"
    assert sdk.update_webhook(made["id"], enabled=False)["enabled"] is False
    assert list(sdk.webhook_deliveries(made["id"], limit=5)) == []

    job = sdk.submit(record("H-1"))
    runtime.new_worker().run_until_idle()
    assert sdk.status(job.key).terminal
    # Disabled when the job ran: its events were not dispatched, so there is nothing to replay yet.
    assert sdk.replay_webhook(made["id"], after=0) == 0

    sdk.delete_webhook(made["id"])
    with pytest.raises(NotFound):
        sdk.get_webhook(made["id"])
    with pytest.raises(ValidationError):
        sdk.create_webhook("ftp://example.com/")


def test_verify_accepts_a_signed_delivery_and_refuses_a_tampered_one() -> None:
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = '{"id":"evt_1","type":"job.completed"}'
    now = datetime.fromtimestamp(time.time(), UTC)
    headers = {
        "Webhook-Id": "evt_1",
        "Webhook-Timestamp": str(int(now.timestamp())),
        "Webhook-Signature": Webhook(secret).sign("evt_1", now, body),
    }
    assert verify(body.encode(), headers, secret) == {"id": "evt_1", "type": "job.completed"}
    with pytest.raises(WebhookVerificationError):
        verify(body.replace("completed", "started"), headers, secret)
    with pytest.raises(WebhookVerificationError):
        verify(body, headers, "whsec_" + "A" * 32)


def test_the_webhooks_commands(run: Run, runtime: Runtime) -> None:
    made = run("webhooks", "create", HOOK, "--event", "job.completed", "--description", "ops")
    assert made.exit_code == 0, made.output
    created = json.loads(made.output)
    assert created["secret"].startswith("whsec_")
    assert created["events"] == ["job.completed"]

    listed = run("webhooks", "list")
    assert [json.loads(line)["id"] for line in listed.output.splitlines()] == [created["id"]]
    assert "secret" not in listed.output
    assert run("webhooks", "deliveries", created["id"]).output == ""
    assert run("webhooks", "replay", created["id"], "--after", "0").output == "queued 0\n"
    assert run("webhooks", "delete", created["id"]).output == f"deleted {created['id']}\n"
    gone = run("webhooks", "delete", created["id"])
    assert gone.exit_code == 1
    refused = run("webhooks", "create", "ftp://example.com/")
    assert refused.exit_code == 1
    assert "url" in refused.output
