"""The SDK against the real application, in-process: every call goes through the real routes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from pendingtx.bootstrap import Runtime
from pendingtx_client import (
    AuthenticationError,
    Client,
    JobState,
    NotFound,
    PermissionDenied,
    Transaction,
    ValidationError,
)
from tests.client.bridge import Recording
from tests.client.conftest import BASE_URL, FakeTime
from tests.client.flavours import open_client
from tests.conftest import AppCreds, register
from tests.support import FakeClock, record

pytestmark = pytest.mark.usefixtures("worker_on_sleep")


def test_submit_then_wait_reports_each_rejected_record(sdk: Client, fake_time: FakeTime) -> None:
    job = sdk.submit([record("PT-1"), record("PT-2", amount=-5), record("PT-3")])
    assert job.batch_id.isdigit()
    assert sdk.status(job.key).status is JobState.SUBMITTED

    done = sdk.wait(job.key, timeout=30)

    assert done.status is JobState.PARTIALLY_COMPLETED
    assert done.terminal
    assert (done.record_count, done.processed_count, done.failed_count) == (3, 3, 1)
    assert done.validation_messages == ("[1] externalId=PT-2: amount: must be greater than 0",)
    [detail] = done.details
    assert (detail.index, detail.external_id, detail.field) == (1, "PT-2", "amount")
    assert done.submitted_at is not None
    assert done.completed_at is not None
    assert fake_time.sleeps == [1.0]  # the server's Retry-After, once


def test_a_job_whose_every_record_is_rejected_is_a_failed_result(sdk: Client) -> None:
    job = sdk.submit(record("PT-1", type="Not A Type"))
    done = sdk.wait(job.key, timeout=30)
    assert done.status is JobState.FAILED
    assert "type" in done.validation_messages[0]


def test_transfer_posts_to_the_transfers_endpoint(sdk: Client, transport: Recording) -> None:
    transfer = record(
        "TR-1", type="Full Transfer", amount=None, toInvestorExternalId="INV-2", investorExternalId="INV-1"
    )
    done = sdk.wait(sdk.transfer([transfer]).key, timeout=30)
    assert done.status is JobState.COMPLETED
    assert "POST /v1/transfers" in transport.paths()
    rejected = sdk.wait(sdk.transfer([record("TR-2")]).key, timeout=30)
    assert rejected.status is JobState.FAILED


def test_every_post_and_patch_carries_an_idempotency_key(sdk: Client, transport: Recording) -> None:
    sdk.wait(sdk.submit([record("PT-1")]).key, timeout=30)
    sdk.patch("PT-1", {"comments": "checked"}, merge=True)
    keyed = [r for r in transport.requests if r.url.path.startswith("/v1/") and r.method != "GET"]
    assert [r.method for r in keyed] == ["POST", "PATCH"]
    keys = {r.headers["idempotency-key"] for r in keyed}
    assert len(keys) == 2


def test_json_patch_and_merge_patch(sdk: Client) -> None:
    sdk.wait(sdk.submit([record("PT-1", amount="10.00")]).key, timeout=30)

    patched = sdk.wait(
        sdk.patch("PT-1", [{"op": "replace", "path": "/amount", "value": "12.34"}]).key, timeout=30
    )
    assert patched.status is JobState.COMPLETED
    [tx] = sdk.transactions(external_id="PT-1")
    assert tx.amount == Decimal("12.34")

    cancelled = sdk.wait(sdk.patch("PT-1", {"status": "Cancel"}, merge=True).key, timeout=30)
    assert cancelled.status is JobState.COMPLETED
    assert [t.status for t in sdk.transactions(external_id="PT-1")] == ["Cancel"]


def test_patch_checks_the_shape_of_its_operations(sdk: Client) -> None:
    with pytest.raises(TypeError, match="merge"):
        sdk.patch("PT-1", {"status": "Cancel"})
    with pytest.raises(TypeError, match="dict"):
        sdk.patch("PT-1", [{"op": "remove", "path": "/comments"}], merge=True)


def test_patching_an_unknown_transaction_is_not_found(sdk: Client) -> None:
    with pytest.raises(NotFound) as caught:
        sdk.patch("NOPE-1", {"comments": "x"}, merge=True)
    error = caught.value
    assert (error.status, error.code) == (404, "resource.not.found")
    assert error.tracking_id
    assert error.tracking_id in str(error)


def test_transactions_follows_every_page_with_exact_decimals(sdk: Client, transport: Recording) -> None:
    amounts = ["0.10", "1.00", "99999999.99", "0.01", "12.50", "3.33", "7.00"]
    batch = [record(f"PT-{i}", amount=a) for i, a in enumerate(amounts)]
    batch.append(record("PT-U", type="Partial Redemption", amount=None, units="0.123456"))
    sdk.wait(sdk.submit(batch).key, timeout=30)
    transport.requests.clear()

    found = list(sdk.transactions(limit=3))

    assert [t.external_id for t in found] == [f"PT-{i}" for i in range(7)] + ["PT-U"]
    assert [t.amount for t in found[:7]] == [Decimal(a) for a in amounts]
    assert found[7].units == Decimal("0.123456")
    assert all(isinstance(t.amount, Decimal) for t in found[:7])
    assert all(t.create_date is not None and t.trade_date == date(2026, 11, 27) for t in found)
    assert transport.paths().count("GET /v1/transactions") == 3


def test_transactions_filters_use_the_contract_names(sdk: Client, transport: Recording) -> None:
    batch = [
        record("A-1", investorExternalId="INV-9"),
        record("A-2"),
        record("A-3", investorExternalId="INV-9"),
    ]
    sdk.wait(sdk.submit(batch).key, timeout=30)

    found = sdk.transactions(
        investor_external_id="INV-9", status="Active", create_start_date=date(2026, 1, 1)
    )

    assert [t.external_id for t in found] == ["A-1", "A-3"]
    query = transport.requests[-1].url.params
    assert query["investorExternalId"] == "INV-9"
    assert query["createStartDate"] == "2026-01-01"
    assert list(sdk.transactions(create_start_date="2099-01-01")) == []


def test_unknown_filters_are_a_type_error(sdk: Client) -> None:
    bad: dict[str, Any] = {"investor": "INV-1"}
    with pytest.raises(TypeError, match="investor"):
        sdk.transactions(**bad)


def test_a_transaction_struct_can_be_submitted(sdk: Client) -> None:
    tx = Transaction(
        external_id="S-1",
        type="Dividend",
        product_external_id="FUND-A",
        investor_external_id="INV-1",
        amount=Decimal("5.25"),
        trade_date=date(2026, 11, 27),
    )
    assert sdk.wait(sdk.submit([tx]).key, timeout=30).status is JobState.COMPLETED
    [back] = sdk.transactions(external_id="S-1")
    assert back.amount == Decimal("5.25")
    assert (back.status, back.currency) == ("Active", "USD")


def test_get_transaction_reads_one_as_the_listing_does(sdk: Client, transport: Recording) -> None:
    sdk.wait(sdk.submit([record("G-1", amount="0.10", comments="one"), record("G-2")]).key, timeout=30)
    transport.requests.clear()

    found = sdk.get_transaction("G-1")

    assert found == next(iter(sdk.transactions(external_id="G-1")))
    assert (found.external_id, found.amount, found.comments) == ("G-1", Decimal("0.10"), "one")
    assert found.create_date is not None
    assert transport.paths()[0] == "GET /v1/transactions/G-1"
    with pytest.raises(NotFound) as caught:
        sdk.get_transaction("NOPE-1")
    assert (caught.value.status, caught.value.code) == (404, "resource.not.found")


def test_cancel_transaction_is_a_merge_patch_to_cancel(sdk: Client, transport: Recording) -> None:
    sdk.wait(sdk.submit([record("C-1")]).key, timeout=30)

    done = sdk.wait(sdk.cancel_transaction("C-1").key, timeout=30)

    assert done.status is JobState.COMPLETED
    assert sdk.get_transaction("C-1").status == "Cancel"
    [patch] = [r for r in transport.requests if r.method == "PATCH"]
    assert patch.headers["content-type"] == "application/merge-patch+json"
    assert patch.content == b'{"status":"Cancel"}'


def test_server_validation_errors_are_typed(sdk: Client) -> None:
    with pytest.raises(ValidationError) as caught:
        sdk.submit([])
    assert caught.value.status == 400
    assert caught.value.code == "request.validation.failure"
    with pytest.raises(ValidationError) as bad_limit:
        list(sdk.transactions(limit=500))
    assert [e.field for e in bad_limit.value.errors] == ["limit"]
    assert bad_limit.value.errors[0].location == "query"


def test_unknown_job_key_is_not_found(sdk: Client) -> None:
    with pytest.raises(NotFound):
        sdk.status("AAAAAAAAAAAAAAAAAAAAAA==")


def test_wrong_secret_is_an_authentication_error_without_the_secret(
    app_creds: AppCreds, transport: Recording, fake_time: FakeTime, flavour: str
) -> None:
    wrong = "not-the-secret-" + "z" * 20
    client = open_client(
        flavour, BASE_URL, app_creds.app_key, wrong, transport=transport, sleep=fake_time.sleep
    )
    with client, pytest.raises(AuthenticationError) as caught:
        client.status("AAAAAAAAAAAAAAAAAAAAAA==")
    assert caught.value.code == "gateway.authentication.failure"
    assert wrong not in str(caught.value)
    assert wrong not in repr(client)
    assert transport.paths() == ["POST /v2/oauthtoken"]


def test_an_app_without_the_product_is_permission_denied(
    runtime: Runtime, transport: Recording, fake_time: FakeTime, flavour: str
) -> None:
    creds = register(runtime, name="no-product", products=("something-else",))
    client = open_client(
        flavour, BASE_URL, creds.app_key, creds.app_secret, transport=transport, sleep=fake_time.sleep
    )
    with client, pytest.raises(PermissionDenied) as caught:
        client.submit([record("PT-1")])
    assert caught.value.status == 403


def test_a_token_the_server_expired_is_replaced_once(
    sdk: Client, clock: FakeClock, transport: Recording
) -> None:
    sdk.wait(sdk.submit([record("PT-1")]).key, timeout=30)
    clock.advance(2 * 3600)  # the server's clock: the token is past its absolute lifetime
    transport.requests.clear()

    [tx] = sdk.transactions()

    assert tx.external_id == "PT-1"
    assert transport.paths() == ["GET /v1/transactions", "POST /v2/oauthtoken", "GET /v1/transactions"]
