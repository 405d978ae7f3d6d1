"""A client generated from the document by `openapi-python-client` compiles, parses every documented
answer (error bodies included), and works against the server: mint, submit, status, list."""

from __future__ import annotations

import compileall
import importlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from pendingtx import errors
from pendingtx.api.openapi import openapi_document
from pendingtx.api.openapi.errors import VARIANTS
from pendingtx.api.responses import encode_json, error_body
from pendingtx.bootstrap import Runtime, build_app
from tests.client.bridge import ASGIBridge
from tests.conftest import AppCreds
from tests.support import record

pytestmark = pytest.mark.usefixtures("cheap_argon2")

PACKAGE = "ptx_generated_client"
HTTP_METHODS = {"get", "post", "patch", "put", "delete"}
# No formatting of the generated code afterwards (its default post-hook runs ruff from PATH).
OPTIONS = ["--output-path", PACKAGE, "--config", "config.yml"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The generated package, imported (generated once for the module)."""
    root = tmp_path_factory.mktemp("generated")
    (root / "openapi.json").write_text(json.dumps(openapi_document()))
    (root / "config.yml").write_text("post_hooks: []\n")
    command = Path(sys.executable).with_name("openapi-python-client")
    done = subprocess.run(
        [str(command), "generate", "--path", "openapi.json", "--meta", "none", *OPTIONS],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    # Anything it could not understand is left out of the client with a warning.
    assert "Warning" not in output, output
    assert compileall.compile_dir(root / PACKAGE, quiet=1)
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def module(generated: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{generated.__name__}.{name}")


def operation(generated: ModuleType, operation_id: str) -> Any:
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in operation_id)
    return module(generated, f"api.default.{snake}")


@pytest.fixture
def bridge(runtime: Runtime) -> Iterator[ASGIBridge]:
    transport = ASGIBridge(build_app(runtime))
    yield transport
    transport.close()


def test_the_generated_client_works_against_the_server(
    generated: ModuleType, bridge: ASGIBridge, runtime: Runtime, app_creds: AppCreds
) -> None:
    models = module(generated, "models")
    base = "http://127.0.0.1"
    anonymous = generated.Client(
        base, httpx_args={"transport": bridge, "auth": (app_creds.app_key, app_creds.app_secret)}
    )
    body = models.TokenBody(grant_type=models.TokenBodyGrantType.CLIENT_CREDENTIALS)
    minted = operation(generated, "token").sync_detailed(client=anonymous, body=body)
    assert minted.status_code == 200
    assert isinstance(minted.parsed, models.Token)

    api = generated.AuthenticatedClient(
        base,
        token=minted.parsed.access_token,
        headers={"AppKey": app_creds.app_key},
        httpx_args={"transport": bridge},
    )
    batch = [
        models.Record.from_dict(record("GEN-1")),
        models.Record.from_dict({**record("GEN-2"), "amount": -5}),
    ]
    accepted = operation(generated, "createTransactions").sync_detailed(client=api, body=batch)
    assert accepted.status_code == 202, accepted.content
    assert isinstance(accepted.parsed, models.JobAccepted)
    runtime.new_worker().run_once()

    status = operation(generated, "getJobStatus").sync_detailed(
        models.GetJobStatusAppName.INSIGHT, accepted.parsed.job_status_query_key, client=api
    )
    assert isinstance(status.parsed, models.JobStatus), status.content
    assert status.parsed.status == models.JobStatusStatus.PARTIALLY_COMPLETED
    assert [d.external_id for d in status.parsed.validation_details] == ["GEN-2"]

    listed = operation(generated, "listTransactions").sync_detailed(client=api, limit=10)
    assert isinstance(listed.parsed, models.TransactionPage), listed.content
    assert [t.external_id for t in listed.parsed.data.results] == ["GEN-1"]
    assert listed.parsed.data.results[0].type_ == models.TransactionType.NEW_SUBSCRIPTION

    unknown = operation(generated, "getJobStatus").sync_detailed(
        models.GetJobStatusAppName.INSIGHT, "NjasfsdgTkkMDcvMjOTowMA==", client=api
    )
    assert isinstance(unknown.parsed, models.NotFoundError), unknown.content
    assert unknown.parsed.code == models.NotFoundErrorCode.RESOURCE_NOT_FOUND
    wrong = generated.Client(base, httpx_args={"transport": bridge, "auth": (app_creds.app_key, "wrong")})
    refused = operation(generated, "token").sync_detailed(client=wrong, body=body)
    assert isinstance(refused.parsed, models.TokenUnauthorizedError), refused.content
    assert refused.parsed.error == models.TokenUnauthorizedErrorError.INVALID_CLIENT


def _error_for(status: int, answer: dict[str, str]) -> errors.ApiError:
    """An error the answer documents: its variant's class, else the last class of its status."""
    variant = VARIANTS.get(answer.get("$ref", "").rsplit("/", 1)[-1])
    if variant is not None:
        return variant[1]()
    variants = {cls for _, cls, _ in VARIANTS.values()}
    found = [cls for cls in _classes(errors.ApiError) if cls.status == status and cls not in variants]
    return found[-1]()


def _classes(base: type[errors.ApiError]) -> list[type[errors.ApiError]]:
    return [base, *(c for sub in base.__subclasses__() for c in _classes(sub))]


def test_every_documented_error_answer_parses(generated: ModuleType) -> None:
    """Each operation's parser reads the body of each error status it documents into its model."""
    document = openapi_document()
    checked = 0
    for path, item in document["paths"].items():
        for method in set(item) & HTTP_METHODS:
            parse = operation(generated, item[method]["operationId"])._parse_response
            for status in item[method]["responses"]:
                if not status.startswith(("4", "5")):
                    continue
                oauth = path.startswith("/v2/oauthtoken")
                error = _error_for(int(status), item[method]["responses"][status])
                body = error_body(error, str(uuid.uuid4()), oauth=oauth)
                answer = httpx.Response(int(status), json=json.loads(encode_json(body)))
                parsed = parse(client=generated.Client("http://127.0.0.1"), response=answer)
                assert parsed is not None, (method, path, status)
                assert parsed.to_dict() == answer.json(), (method, path, status)
                checked += 1
    assert checked > 50


def test_the_status_answer_parses_while_the_job_waits(generated: ModuleType) -> None:
    models = module(generated, "models")
    waiting = {
        "status": "Submitted",
        "batchId": "7",
        "message": "Submitted",
        "validationMessage": [],
        "recordCount": 1,
        "processedCount": 0,
        "failedCount": 0,
        "submittedAt": "2026-11-29T06:15:02.120-05:00",
        "completedAt": None,
        "validationDetails": [],
        "truncated": False,
    }
    parsed = operation(generated, "getJobStatus")._parse_response(
        client=generated.Client("http://127.0.0.1"), response=httpx.Response(200, json=waiting)
    )
    assert isinstance(parsed, models.JobStatus)
    assert parsed.completed_at is None
