"""Schemathesis fuzzes every documented operation in-process and holds each answer to the document.

Every phase and every check (`--checks all`): two runs over every operation, one as a valid caller
(Bearer token and AppKey on /v1, the app's Basic credentials on the token endpoint), one with whatever
credentials schemathesis makes up; then the stateful phase, which chains operations along the
document's links as the valid caller (every operation but the token endpoint). Each answer must
conform to the document (status, content type, headers, body schema), never be a 500, and every error
must be the contract's error body with a matching `requesttrackingid`. An accepted job is then run
through the worker and its status read back: a job always ends, and each record the document's
record schema refuses must be among the rejected.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import hypothesis
import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks as openapi_checks
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from pendingtx.api.long_poll import preferred_wait
from pendingtx.api.openapi import DATE_PATTERN, MOMENT_PATTERN, openapi_document
from pendingtx.bootstrap import Runtime
from pendingtx.config import Settings
from pendingtx.domain.decimals import parse_quantity
from pendingtx.domain.listing import parse_eastern
from pendingtx.domain.transactions import TransactionType, validate_record
from tests import databases
from tests.conftest import AppCreds
from tests.support import record

pytestmark = pytest.mark.usefixtures("cheap_argon2")

DOCUMENT = openapi_document()
TOKEN_PATH = "/v2/oauthtoken"
# The paths where clients authenticate with their AppKey and AppSecret, and errors are RFC 6749's too.
CLIENT_PATHS = (TOKEN_PATH, "/v2/oauthtoken/revoke")
STATUS_PATH = "/v1/jobs/{appName}/status/{key}"
MODIFY_PATH = "/v1/transactions/{externalId}"
# Each submit path, and the schema its records are held to after the 202.
SUBMIT_PATHS = {"/v1/transactions": "PendingTransaction", "/v1/transfers": "PendingTransfer"}
ERROR_MEMBERS = ["code", "message", "trackingId", "transient", "errors"]
OAUTH_ERROR_MEMBERS = [*ERROR_MEMBERS, "error", "error_description"]
TERMINAL = {"Completed", "Partially Completed", "Failed", "Cancelled"}
TRANSIENT_CODES = {"request.rate.limited", "service.unavailable", "idempotency.key.in.use"}
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
REQUEST_NUMBERS = itertools.count()

# Rules the contract states but JSON Schema cannot: a schema-valid request may still get a 400 that
# names only these (field, reason) pairs.
NOT_EXPRESSIBLE = [
    (re.compile(r"after|before"), re.compile(r"is not a valid cursor")),
    (re.compile(r"before"), re.compile(r"cannot be combined with after")),
    (
        re.compile(r"createEndDate|changeEndDate|submittedEnd"),
        re.compile(r"must not be before (createStartDate|changeStartDate|submittedStart)"),
    ),
    # Nesting depth: a body nests arrays and objects at most 32 levels deep.
    (re.compile(r"body"), re.compile(r"must not nest arrays and objects more than \d+ levels deep.*")),
    # The request head's limits (api/limits.py): the total of all headers cannot be said per header.
    (re.compile(r".+"), re.compile(r"is \d+ bytes long; a header value may be at most \d+ bytes")),
    (re.compile(r".+"), re.compile(r"is the largest of request headers totalling \d+ bytes; .+")),
    # A webhook URL is judged by the addresses its host resolves to, and by what urllib can parse.
    (re.compile(r"url"), re.compile(r".+")),
]


class CurrentApp:
    """The schema's ASGI application: hands each request to the application of the running test.

    The test's own client runs that application's lifespan; this one only acknowledges its own.
    """

    def __init__(self) -> None:
        self.target: Callable[[Scope, Receive, Send], Any] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        assert self.target is not None, "no application under test"
        await self.target(scope, receive, send)


CURRENT_APP = CurrentApp()
# What the fixtures seed for the valid caller's run, so that some requests reach existing resources.
SEEDED: dict[str, str] = {}


def loaded() -> Any:
    """The document as schemathesis reads it, served by the test's application."""
    document = schemathesis.openapi.from_dict(DOCUMENT)
    document.app = CURRENT_APP
    # A request too large (413) or with too long a URL (414) is refused as surely as with a 400;
    # schemathesis' list of refusals leaves those two out.
    refusals = document.config.checks.negative_data_rejection
    refusals.expected_statuses = [*refusals.expected_statuses, "413", "414"]
    return document


schema = loaded()
# Made-up credentials meet a 401 before anything but the URL's length is read: random fuzzing is
# enough there, without the coverage phase's hundreds of boundary bodies (built at collection).
made_up_schema = loaded()
made_up_schema.config.phases.coverage.enabled = False


@schema.hook
def map_path_parameters(context: schemathesis.HookContext, path_parameters: dict[str, Any]) -> dict[str, Any]:
    """Point every other generated key or externalId at a seeded job or transaction."""
    operation = context.operation
    if operation is None or not SEEDED:
        return path_parameters
    value = path_parameters.get("key") if operation.path == STATUS_PATH else None
    if operation.path == MODIFY_PATH:
        value = path_parameters.get("externalId")
    if isinstance(value, str) and len(value) % 2 == 0:
        # Only a key the document allows: a negative case must stay negative.
        if (
            operation.path == STATUS_PATH
            and path_parameters.get("appName") == "insight"
            and re.fullmatch(r"[A-Za-z0-9_=+-]{1,128}", value)
        ):
            return {**path_parameters, "key": SEEDED["key"]}
        if operation.path == MODIFY_PATH:
            return {**path_parameters, "externalId": SEEDED["externalId"]}
    return path_parameters


@schema.hook
def map_query(context: schemathesis.HookContext, query: dict[str, Any] | None) -> dict[str, Any] | None:
    """A long-poll of a job the stateful phase has just submitted would hold for up to a minute: a
    fuzzed wait in range becomes 0 (holding is tested in tests/api/test_long_poll.py)."""
    operation = context.operation
    if operation is not None and operation.path == STATUS_PATH and query:
        wait = query.get("wait")
        if isinstance(wait, int) and 0 < wait <= 60:
            return {**query, "wait": 0}
    return query


@schema.hook
def map_headers(context: schemathesis.HookContext, headers: dict[str, Any] | None) -> dict[str, Any] | None:
    """The same for `Prefer: wait=N`."""
    operation = context.operation
    if operation is not None and operation.path == STATUS_PATH and headers:
        prefer = headers.get("Prefer")
        if isinstance(prefer, str) and preferred_wait(prefer):
            return {**headers, "Prefer": "wait=0"}
    return headers


FUZZ = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture
def database_url(sqlite_template: Path, tmp_path: Path) -> str:
    """SQLite only: the contract does not depend on the database, and SQLite keeps the run short."""
    return databases.sqlite_copy(sqlite_template, tmp_path)


@pytest.fixture
def settings(database_url: str) -> Settings:
    # Without an fsync per commit: the worker runs over hundreds of fuzzed jobs per operation.
    return Settings(database_url=database_url, log_level="warning", sqlite_synchronous="NORMAL")


@pytest.fixture
def served(client: TestClient) -> Iterator[TestClient]:
    """The test's application behind the schema; the document it serves is the one fuzzed."""
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.json() == DOCUMENT
    CURRENT_APP.target = client.app
    try:
        yield client
    finally:
        CURRENT_APP.target = None
        SEEDED.clear()


@pytest.fixture
def seeded(served: TestClient, runtime: Runtime, headers: dict[str, str]) -> None:
    """One applied transaction and its finished job, for the valid caller."""
    answer = served.post("/v1/transactions", json=record("FUZZ-SEED"), headers=headers)
    assert answer.status_code == 202, answer.text
    runtime.new_worker().run_until_idle()
    SEEDED.update(key=answer.json()["jobStatusQueryKey"], externalId="FUZZ-SEED")


# --- checks -----------------------------------------------------------------------------------------


def contract_error_body(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any) -> None:
    """Every answer has a `requesttrackingid`; every error is the contract's body (section 4)."""
    tracking = response.headers.get("requesttrackingid")
    assert tracking, "no requesttrackingid header"
    (value,) = tracking
    sent = {k.lower(): v for k, v in response.request.headers.items()}.get("requesttrackingid")
    if sent is not None and _is_uuid(sent):
        assert value.lower() == str(uuid.UUID(sent)), f"requesttrackingid {sent!r} was not reused"
    if response.status_code < 400:
        return
    assert response.headers.get("content-type", [""])[0].startswith("application/json")
    body = response.json()
    oauth = case.operation.path in CLIENT_PATHS
    assert list(body) == (OAUTH_ERROR_MEMBERS if oauth else ERROR_MEMBERS), body
    assert body["trackingId"] == value
    transient = body["code"] in TRANSIENT_CODES
    assert body["transient"] is transient
    if transient:
        assert response.headers.get("retry-after"), "a transient error without Retry-After"
    assert body["message"]
    assert "Traceback" not in response.text


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def positive_data_acceptance(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any
) -> None:
    """Schemathesis' check, except for a 400 that names only rules JSON Schema cannot express."""
    if response.status_code == 400:
        details = response.json()["errors"]
        if details and all(
            any(
                field.fullmatch(d["field"]) and reason.fullmatch(d["reason"])
                for field, reason in NOT_EXPRESSIBLE
            )
            for d in details
        ):
            return
    openapi_checks.positive_data_acceptance(ctx, response, case)


REPLACED = [openapi_checks.positive_data_acceptance]
ADDED = [contract_error_body, positive_data_acceptance]


def one_key_per_request(case: Any) -> None:
    """A key drawn twice would make the second request a reuse (a 422) of a valid one."""
    key = (case.headers or {}).get("Idempotency-Key")
    if isinstance(key, str) and IDEMPOTENCY_KEY.fullmatch(key):
        case.headers["Idempotency-Key"] = f"{key[:240]}-{next(REQUEST_NUMBERS)}"


def credentials_sent(case: Any, credentials: dict[str, str]) -> dict[str, str]:
    """The valid caller's value of each credential header the case sends: schemathesis draws them all
    for a valid case, and one it left out on purpose (a negative case) stays out."""
    sent = {name.lower() for name in case.headers or {}}
    return {name: value for name, value in credentials.items() if name.lower() in sent}


def call(case: Any, headers: dict[str, str] | None = None) -> schemathesis.Response:
    one_key_per_request(case)
    response: schemathesis.Response = case.call_and_validate(
        headers=headers, excluded_checks=REPLACED, additional_checks=ADDED
    )
    return response


# --- following accepted jobs ------------------------------------------------------------------------

_VALIDATORS: dict[str, Any] = {}


def document_says_valid(schema_name: str, instance: Any) -> bool:
    """Whether the document's schema `schema_name` accepts `instance`."""
    if schema_name not in _VALIDATORS:
        root = {"$ref": f"#/components/schemas/{schema_name}", "components": DOCUMENT["components"]}
        _VALIDATORS[schema_name] = jsonschema_rs.Draft202012Validator(root, validate_formats=True)
    return bool(_VALIDATORS[schema_name].is_valid(instance))


@dataclass(frozen=True)
class Accepted:
    """A 202: its job key, and the indexes of the records the document's record schema refuses."""

    label: str
    key: str
    refused: frozenset[int]
    body: Any


def refused_records(path: str, body: Any) -> frozenset[int]:
    """Indexes of the batch's records that the record schema of the submit path refuses."""
    record_schema = SUBMIT_PATHS.get(path)
    if record_schema is None:
        return frozenset()
    records = body if isinstance(body, list) else [body]
    return frozenset(i for i, r in enumerate(records) if not document_says_valid(record_schema, r))


class JobFollower:
    """Runs the worker over accepted jobs in batches, then reads each status through the document."""

    def __init__(self, runtime: Runtime, headers: dict[str, str], *, batch: int = 100) -> None:
        self.runtime = runtime
        self.headers = headers
        self.batch = batch
        self.pending: list[Accepted] = []

    def accepted(self, case: Any, response: schemathesis.Response) -> None:
        refused = refused_records(case.operation.path, case.body)
        self.pending.append(
            Accepted(case.operation.label, response.json()["jobStatusQueryKey"], refused, case.body)
        )
        if len(self.pending) >= self.batch:
            self.follow()

    def follow(self) -> None:
        pending, self.pending = self.pending, []
        if not pending:
            return
        self.runtime.new_worker().run_until_idle()
        status_operation = schema[STATUS_PATH]["GET"]
        for job in pending:
            case = status_operation.Case(path_parameters={"appName": "insight", "key": job.key})
            status = call(case, self.headers).json()
            assert status["status"] in TERMINAL, (job.label, status)
            assert status["processedCount"] == status["recordCount"], (job.label, status)
            # Every rejected record is named, unless the answer says it lists only the first problems.
            listed = len(status["validationDetails"])
            assert listed >= status["failedCount"] or status["truncated"], (job.label, status)
            if status["truncated"]:
                continue
            rejected = {detail["index"] for detail in status["validationDetails"]}
            assert job.refused <= rejected, (
                f"{job.label}: the document refuses records {sorted(job.refused - rejected)}, "
                f"the worker created them: {job.body!r}"
            )


@pytest.fixture
def jobs(runtime: Runtime, headers: dict[str, str]) -> Iterator[JobFollower]:
    """Follows the jobs of the test's accepted requests; those still pending when it ends, at teardown."""
    follower = JobFollower(runtime, headers)
    yield follower
    follower.follow()


# --- the runs -----------------------------------------------------------------------------------------


@schema.parametrize()
@FUZZ
@pytest.mark.usefixtures("served", "seeded")
def test_valid_caller(case: Any, headers: dict[str, str], app_creds: AppCreds, jobs: JobFollower) -> None:
    if case.operation.path in CLIENT_PATHS:
        response = call(case, {"Authorization": app_creds.basic})
    else:
        response = call(case, credentials_sent(case, headers))
    if response.status_code == 202:
        jobs.accepted(case, response)


@made_up_schema.parametrize()
@FUZZ
@pytest.mark.usefixtures("served")
def test_made_up_credentials(case: Any) -> None:
    call(case)


def plant_valid_record(case: Any) -> None:
    """Make the first record of a valid batch a valid transaction, so that the steps after it (list
    it, modify it, modify it again) find it: random objects are never valid records, and the other
    phases send those."""
    if (
        case.operation.path not in SUBMIT_PATHS
        or case.meta is None
        or not case.meta.generation.mode.is_positive
    ):
        return
    records = case.body if isinstance(case.body, list) else [case.body]
    if not records or not isinstance(records[0], dict):
        return
    external_id = f"FUZZ-{next(REQUEST_NUMBERS)}"
    transfer = case.operation.path == "/v1/transfers"
    valid = (
        record(external_id, type="Full Transfer", toInvestorExternalId="INV-2", amount=None)
        if transfer
        else record(external_id)
    )
    case.body = [valid, *records[1:]] if isinstance(case.body, list) else valid


# The stateful phase: scenarios of a few steps along the document's links (POST -> status, POST ->
# PATCH, list -> PATCH, list -> next page, ...), as the valid caller. The token endpoints are left out:
# their scenarios would only mint tokens or revoke the caller's own.
stateful_schema = loaded().exclude(path=list(CLIENT_PATHS))
stateful_schema.app = CURRENT_APP
STATEFUL = hypothesis.settings(FUZZ, max_examples=25, stateful_step_count=6)


@pytest.mark.usefixtures("served", "seeded")
def test_stateful(headers: dict[str, str], runtime: Runtime) -> None:
    # Each accepted job is run at once, so that a following step finds what it created.
    follower = JobFollower(runtime, headers, batch=1)

    class Workflow(stateful_schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: Any) -> None:
            one_key_per_request(case)
            plant_valid_record(case)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": credentials_sent(case, headers)}

        def after_call(self, response: schemathesis.Response, case: Any) -> None:
            super().after_call(response, case)
            if response.status_code == 202:
                follower.accepted(case, response)

        def validate_response(
            self, response: schemathesis.Response, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            case.validate_response(
                response,
                excluded_checks=REPLACED,
                additional_checks=ADDED,
                transport_kwargs=kwargs or None,
                recorder=self.recorder,
            )

    Workflow.run(settings=STATEFUL)


def test_document_is_valid_openapi_3_1() -> None:
    """Against the OpenAPI 3.1 meta-schema, with the token URL made absolute: OpenAPI 3.1 lets any
    URL be a relative reference (as `/v2/oauthtoken` is, for Swagger UI on any host), but its
    published meta-schema still checks tokenUrl as `format: uri`."""
    document = openapi_document()  # DOCUMENT is the one schemathesis annotates with inferred links
    flow = document["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == TOKEN_PATH
    flow["tokenUrl"] = f"http://127.0.0.1{TOKEN_PATH}"
    schemathesis.openapi.from_dict(document).validate()


def _quantity_texts() -> Iterator[str]:
    yield from ["0", "0.0", "0.01", "0.001", "1.", ".5", "1e5", "-1", "-0", "+1", " 1", "1.500", "1.505"]
    for whole in (
        "0",
        "00",
        "1",
        "07",
        "9999999999999",
        "10000000000000",
        "010000000000000",
        "10000000000001",
    ):
        for fraction in ("", "0", "00", "000", "1", "10", "01", "001", "100", "5", "50", "123456", "1234567"):
            yield f"{whole}.{fraction}" if fraction else whole


def test_document_patterns_are_the_server_rules() -> None:
    """The patterns of the document accept exactly what the server accepts."""
    record_schema = DOCUMENT["components"]["schemas"]["PendingTransaction"]["properties"]
    for member, places in (("amount", 2), ("units", 6)):
        pattern = re.compile(record_schema[member]["oneOf"][1]["pattern"])
        for text in _quantity_texts():
            accepted = not isinstance(parse_quantity(text, places), str)
            assert (pattern.fullmatch(text) is not None) == accepted, (member, text)
    for year in [*range(0, 12), 1900, 2000, 2023, 2024, 2100, 2400, 9999]:
        for month in range(0, 14):
            for day in range(0, 33):
                text = f"{year:04d}-{month:02d}-{day:02d}"
                try:
                    real = date.fromisoformat(text) is not None
                except ValueError:
                    real = False
                assert (re.fullmatch(DATE_PATTERN, text) is not None) == real, text
                for time in (
                    "",
                    "T00:00:00",
                    "T23:59:59.999",
                    "T24:00:00",
                    "T12:60:00",
                    "T12:00:60",
                    "T12:00:00.1",
                ):
                    moment = text + time
                    parsed = parse_eastern(moment, end=False) is not None
                    assert (re.fullmatch(MOMENT_PATTERN, moment) is not None) == parsed, moment


def test_document_record_rules_are_the_server_rules() -> None:
    """The record schemas refuse exactly the type rules' and currencies' breaches the worker refuses."""
    quantities = itertools.product([None, "5"], [None, "2"], [None, "FUND-B"], [None, "INV-2"])
    for (amount, units, to_product, to_investor), tx_type in itertools.product(quantities, TransactionType):
        members = {"amount": amount, "units": units, "toProductExternalId": to_product}
        sent = record("R-1", type=tx_type.value, toInvestorExternalId=to_investor, **members)
        for submitted in (sent, {**members, **sent}):  # members left out, or null
            for schema_name, transfers_only in (("PendingTransaction", False), ("PendingTransfer", True)):
                accepted = not isinstance(validate_record(submitted, transfers_only=transfers_only), list)
                assert document_says_valid(schema_name, submitted) == accepted, (schema_name, submitted)
    changes = [{"currency": c} for c in ("USD", "EUR", "XAU", "ABC", "usd", "US", "USDT", None)]
    changes += [{member: "A\x00B"} for member in ("productExternalId", "contactExternalId", "comments")]
    for change in changes:
        submitted = {**record("R-1"), **change}
        accepted = not isinstance(validate_record(submitted), list)
        assert document_says_valid("PendingTransaction", submitted) == accepted, change


def test_allow_names_every_method_of_a_path(client: TestClient) -> None:
    answer = client.options("/v1/transactions")
    assert answer.status_code == 405
    allowed = {m.strip() for m in answer.headers["allow"].split(",")}
    assert {"GET", "POST"} <= allowed
