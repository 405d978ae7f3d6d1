"""The service's own description: `/openapi.json` (OpenAPI 3.1) matches the routes it really serves."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.routing import Route, Router
from starlette.testclient import TestClient

from pendingtx.api.app import create_app
from pendingtx.api.context import RequestContext
from pendingtx.bootstrap import Runtime

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
UNDOCUMENTED = {"/openapi.json", "/docs", "/metrics"}


@pytest.fixture
def document(client: TestClient) -> dict[str, Any]:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = answer.json()
    return body


def served_routes(runtime: Runtime) -> list[Route]:
    app = create_app(runtime, run_worker=False)
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
    assert hidden == UNDOCUMENTED
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


def test_docs_page_renders_the_document(client: TestClient) -> None:
    answer = client.get("/docs")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "<html" in answer.text.lower()
    assert "/openapi.json" in answer.text
