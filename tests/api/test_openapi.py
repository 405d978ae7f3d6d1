"""The service's own description: `/openapi.json` (OpenAPI 3.1) matches the routes it really serves."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import msgspec
import pytest
from openapi_spec_validator import validate
from starlette.routing import Route, Router
from starlette.testclient import TestClient

from pendingtx.api import answers
from pendingtx.api.context import RequestContext
from pendingtx.bootstrap import Runtime, build_app
from pendingtx.domain.decimals import MAX_QUANTITY
from pendingtx.domain.transactions import (
    AMOUNT_PLACES,
    DEFAULT_CURRENCY,
    MAX_COMMENT_LENGTH,
    MAX_ID_LENGTH,
    UNITS_PLACES,
    TransactionType,
    validate_record,
)
from tests.conftest import AppCreds, assert_error
from tests.support import record

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
UNDOCUMENTED = {"/openapi.json", "/docs", "/docs/assets/{name}", "/metrics"}


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = answer.json()
    return body


def served_routes(runtime: Runtime) -> list[Route]:
    app = build_app(runtime)
    assert isinstance(app, RequestContext)
    router = app.app
    assert isinstance(router, Router)
    routes = [r for r in router.routes if isinstance(r, Route)]
    assert len(routes) == len(router.routes), "only plain routes are expected"
    return routes


def methods_of(route: Route) -> set[str]:
    methods = {m.lower() for m in route.methods or ()}
    if "get" in methods:
        methods.discard("head")  # Starlette adds HEAD to every GET route by itself
    return methods


def test_document_is_openapi_3_1(document: dict[str, Any]) -> None:
    assert re.fullmatch(r"3\.1\.\d+", document["openapi"])
    assert document["info"]["title"]
    assert document["info"]["version"]
    assert document["paths"]


def routed_methods(runtime: Runtime) -> dict[str, set[str]]:
    """Each documented path template with every method some route serves on it."""
    routed: dict[str, set[str]] = {}
    for route in served_routes(runtime):
        if route.include_in_schema:
            routed.setdefault(route.path, set()).update(methods_of(route))
    return routed


def test_every_routed_path_and_method_is_documented(runtime: Runtime, document: dict[str, Any]) -> None:
    routes = served_routes(runtime)
    hidden = {r.path for r in routes if not r.include_in_schema}
    # The dashboard's pages (/ui) are for people, not part of the API.
    assert {path for path in hidden if not path.startswith("/ui")} == UNDOCUMENTED
    assert not hidden & set(document["paths"])
    for path, methods in routed_methods(runtime).items():
        assert path in document["paths"], path
        documented = set(document["paths"][path]) & HTTP_METHODS
        assert documented == methods, path


def test_every_documented_operation_is_routed(runtime: Runtime, document: dict[str, Any]) -> None:
    routed = routed_methods(runtime)
    for path, item in document["paths"].items():
        assert path in routed, f"{path} is documented but not served"
        for method in set(item) & HTTP_METHODS:
            assert method in routed[path], f"{method.upper()} {path} is documented but not served"


def test_documented_operations_answer_as_routes(client: TestClient, document: dict[str, Any]) -> None:
    """Each documented operation reaches a handler: never the router's own 404/405."""
    for path, item in document["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method in set(item) & HTTP_METHODS:
            answer = client.request(method.upper(), concrete)
            assert answer.status_code != 405, (method, path)
            if answer.status_code == 404:
                assert not answer.json()["message"].startswith("No route"), (method, path)


def test_path_parameters_are_declared(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        names = set(re.findall(r"\{([^}]+)\}", path))
        for method in set(item) & HTTP_METHODS:
            declared = {p["name"] for p in item[method].get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_reference_resolves(document: dict[str, Any]) -> None:
    refs = set(_refs(document))
    assert refs
    for ref in refs:
        assert ref.startswith("#/"), ref
        node: Any = document
        for part in ref[2:].split("/"):
            assert isinstance(node, dict)
            assert part in node, ref
            node = node[part]


def test_v1_operations_declare_their_security(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    for path, item in document["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method in set(item) & HTTP_METHODS:
            security = item[method]["security"]
            assert security, (method, path)
            for requirement in security:
                assert set(requirement) <= set(schemes)
            assert "401" in item[method]["responses"]


def test_docs_page_renders_the_document_from_this_host(client: TestClient) -> None:
    """The page and its files come from this server (tests/browser/ renders it in Chromium)."""
    answer = client.get("/docs")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in answer.text
    assert "//" not in answer.text.replace("<!doctype html>", "")
    for asset in re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', answer.text):
        assert client.get(asset).status_code == 200, asset
    assert_error(client.get("/docs/assets/index.html"), 404, "resource.not.found")
    assert_error(client.get("/docs/assets/..%2F__init__.py"), 404, "resource.not.found")


def test_document_passes_openapi_spec_validator(document: dict[str, Any]) -> None:
    validate(document)


def test_authorize_can_mint_a_token_with_client_credentials(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes["oauth2"]["flows"] == {"clientCredentials": {"tokenUrl": "/v2/oauthtoken", "scopes": {}}}
    assert schemes["appKey"] == {"type": "apiKey", "in": "header", "name": "AppKey"}
    status = document["paths"]["/v1/jobs/{appName}/status/{key}"]["get"]
    assert {"oauth2": [], "appKey": []} in status["security"]


def test_the_record_rules_are_the_domains(document: dict[str, Any]) -> None:
    record_schema = document["components"]["schemas"]["PendingTransaction"]
    members = record_schema["properties"]
    assert members["type"]["enum"] == [t.value for t in TransactionType]
    assert len(members["type"]["enum"]) == 15
    assert members["comments"]["maxLength"] == MAX_COMMENT_LENGTH
    assert members["productExternalId"]["maxLength"] == MAX_ID_LENGTH
    assert members["currency"]["default"] == DEFAULT_CURRENCY
    assert members["amount"]["oneOf"][0]["maximum"] == MAX_QUANTITY
    assert f"{{1,{AMOUNT_PLACES}}}" in members["amount"]["oneOf"][1]["pattern"]
    assert f"{{1,{UNITS_PLACES}}}" in members["units"]["oneOf"][1]["pattern"]
    assert document["components"]["schemas"]["Transaction"]["allOf"] == record_schema["allOf"]


def test_every_operation_documents_a_400_for_repeated_headers(document: dict[str, Any]) -> None:
    responses = document["components"]["responses"]
    for path, item in document["paths"].items():
        for method in set(item) & HTTP_METHODS:
            assert "400" in item[method]["responses"], (method, path)
    assert (
        "`Authorization`, `AppKey`, `Idempotency-Key` given more than once"
        in responses["BadRequest"]["description"]
    )
    token = document["paths"]["/v2/oauthtoken"]["post"]["responses"]
    for status in ("400", "401", "413", "414", "415", "429", "500", "503"):
        schema = responses[token[status]["$ref"].rsplit("/", 1)[1]]["content"]["application/json"]["schema"]
        body = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        assert {"error", "error_description"} <= set(body["required"]), status
    assert "in flight" in responses["TokenRateLimited"]["description"]
    assert "secret check" in responses["TokenServiceUnavailable"]["description"]


def test_real_answers_are_their_documented_types(
    client: TestClient, runtime: Runtime, app_creds: AppCreds, headers: dict[str, str]
) -> None:
    """The answers decode, strictly, into the types the document's schemas are generated from."""

    def answer(kind: type[Any], response: Any, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return msgspec.json.decode(response.content, type=kind)

    answer(
        answers.Token,
        client.post(
            "/v2/oauthtoken",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": app_creds.basic},
        ),
    )
    accepted = answer(
        answers.JobAccepted,
        client.post("/v1/transactions", json=[record("A-1"), record("A-2", amount=-1)], headers=headers),
        202,
    )
    runtime.new_worker().run_until_idle()
    status = answer(
        answers.JobStatus,
        client.get(f"/v1/jobs/insight/status/{accepted.jobStatusQueryKey}", headers=headers),
    )
    assert status.validationDetails
    page = answer(answers.TransactionPage, client.get("/v1/transactions", headers=headers))
    assert page.data.results[0].amount is not None
    answer(answers.Error, client.get("/v1/transactions", params={"limit": "0"}, headers=headers), 400)
    answer(
        answers.OAuthError,
        client.post("/v2/oauthtoken", data={"grant_type": "x"}, headers={"Authorization": app_creds.basic}),
        400,
    )
    answer(answers.AuthorizationServerMetadata, client.get("/.well-known/oauth-authorization-server"))
    answer(answers.Health, client.get("/healthz"))
    answer(answers.Ready, client.get("/readyz"))


def validator(document: dict[str, Any], name: str) -> Any:
    root = {"$ref": f"#/components/schemas/{name}", "components": document["components"]}
    return jsonschema_rs.Draft202012Validator(root)


def test_a_batch_the_server_accepts_is_valid_and_its_records_are_held_to_pending_transaction(
    client: TestClient, headers: dict[str, str], document: dict[str, Any]
) -> None:
    """What the request schema allows is what the server accepts before the 202; the record rules
    are PendingTransaction's, applied by the worker."""
    records = [record("D-1", currency="ZZZ"), {**record("D-2"), "amont": "5"}, record("D-3")]
    answer = client.post("/v1/transactions", json=records, headers=headers)
    assert answer.status_code == 202
    assert validator(document, "Batch").is_valid(records)
    pending = validator(document, "PendingTransaction")
    assert [pending.is_valid(r) for r in records] == [False, False, True]
    for not_a_batch in ([], [1], "x", [records[0], None]):
        assert not validator(document, "Batch").is_valid(not_a_batch)
        assert client.post("/v1/transactions", json=not_a_batch, headers=headers).status_code == 400


def test_idempotency_answers_are_documented_on_every_keyed_operation(document: dict[str, Any]) -> None:
    for path, method in (
        ("/v1/transactions", "post"),
        ("/v1/transfers", "post"),
        ("/v1/transactions/{externalId}", "patch"),
    ):
        operation = document["paths"][path][method]
        assert any(p["name"] == "Idempotency-Key" for p in operation["parameters"])
        assert {"409", "422"} <= set(operation["responses"]), path
    responses = document["components"]["responses"]
    retry_after = responses["KeyInUse"]["headers"]["Retry-After"]["$ref"].rsplit("/", 1)[1]
    assert document["components"]["headers"][retry_after]["required"] is True


def test_request_examples_are_valid_and_their_records_too(document: dict[str, Any]) -> None:
    for path, record_schema in (
        ("/v1/transactions", "PendingTransaction"),
        ("/v1/transfers", "PendingTransfer"),
    ):
        content = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]
        assert content["examples"]
        for example in content["examples"].values():
            value = example["value"]
            assert validator(document, content["schema"]["$ref"].rsplit("/", 1)[1]).is_valid(value)
            for one in value if isinstance(value, list) else [value]:
                assert validator(document, record_schema).is_valid(one), one
                assert not isinstance(validate_record(one, transfers_only=path == "/v1/transfers"), list)
    patch = document["paths"]["/v1/transactions/{externalId}"]["patch"]["requestBody"]["content"]
    assert validator(document, "JsonPatch").is_valid(patch["application/json-patch+json"]["example"])
