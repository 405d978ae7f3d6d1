"""List cursors over HTTP: opaque, bound to the organization, unforgeable, the same across restarts."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from pendingtx.bootstrap import Runtime
from pendingtx.storage.tables import transactions
from tests.conftest import Served, assert_error
from tests.support import record

CURSOR_REASON = "is not a valid cursor"


def create(client: TestClient, headers: dict[str, str], runtime: Runtime, *external_ids: str) -> None:
    answer = client.post("/v1/transactions", json=[record(e) for e in external_ids], headers=headers)
    assert answer.status_code == 202, answer.text
    runtime.new_worker().run_until_idle()


def listed(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    answer = client.get("/v1/transactions", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [row["externalId"] for row in body["data"]["results"]]


def row_id(runtime: Runtime, external_id: str) -> int:
    with runtime.uow.read() as conn:
        found = conn.execute(
            sa.select(transactions.c.id).where(transactions.c.external_id == external_id)
        ).scalar_one()
    return int(found)


def refused(client: TestClient, headers: dict[str, str], name: str, cursor: str) -> None:
    answer = client.get("/v1/transactions", params={name: cursor}, headers=headers)
    body = assert_error(answer, 400, "request.validation.failure")
    assert body["errors"] == [{"field": name, "location": "query", "reason": CURSOR_REASON}]


def assert_tells_nothing_of(cursor: str, sequence: int) -> None:
    """The cursor is no spelling of the row's sequence number that a client could read."""
    assert len(cursor) == 48
    try:
        readable = base64.b64decode(cursor, validate=True)
    except binascii.Error:
        readable = b""
    assert not readable.isdigit()
    raw = base64.urlsafe_b64decode(cursor)
    spellings = [sequence.to_bytes(8, "big"), sequence.to_bytes(8, "little")]
    # A short decimal spelling (b"1") turns up by chance in random bytes: only long ones tell anything.
    decimal = str(sequence).encode()
    if len(decimal) >= 4:
        spellings.append(decimal)
    for spelling in spellings:
        assert spelling not in raw


def test_cursors_tell_nothing_of_other_organizations_rows(
    client: TestClient, headers: dict[str, str], other_headers: dict[str, str], runtime: Runtime
) -> None:
    create(client, other_headers, runtime, "B-1")
    first = listed(client, other_headers)["paging"]["cursors"]["after"]
    create(client, headers, runtime, *(f"A-{i:04d}" for i in range(1000)))
    # Another organization's thousand rows change nothing in this one's cursors.
    assert listed(client, other_headers)["paging"]["cursors"]["after"] == first
    create(client, other_headers, runtime, "B-2")
    page = listed(client, other_headers)
    assert ids(page) == ["B-1", "B-2"]
    second = page["paging"]["cursors"]["after"]
    assert row_id(runtime, "B-2") - row_id(runtime, "B-1") == 1001
    assert_tells_nothing_of(first, row_id(runtime, "B-1"))
    assert_tells_nothing_of(second, row_id(runtime, "B-2"))
    assert ids(listed(client, other_headers, after=first)) == ["B-2"]
    assert ids(listed(client, other_headers, before=second)) == ["B-1"]


@pytest.mark.parametrize("name", ["after", "before"])
def test_a_cursor_from_another_organization_is_refused(
    client: TestClient,
    headers: dict[str, str],
    other_headers: dict[str, str],
    runtime: Runtime,
    name: str,
) -> None:
    create(client, headers, runtime, "A-1", "A-2", "A-3")
    create(client, other_headers, runtime, "B-1", "B-2", "B-3")
    theirs = listed(client, headers, limit=2)["paging"]["cursors"]
    refused(client, other_headers, name, theirs["after"])
    refused(client, other_headers, name, theirs["before"])
    mine = listed(client, other_headers, limit=2)["paging"]["cursors"]
    refused(client, headers, name, mine[name])


@pytest.mark.parametrize("name", ["after", "before"])
def test_tampered_and_made_up_cursors_are_refused(
    client: TestClient, headers: dict[str, str], runtime: Runtime, name: str
) -> None:
    create(client, headers, runtime, "T-1", "T-2", "T-3")
    cursor = listed(client, headers, limit=1)["paging"]["cursors"]["after"]
    assert ids(listed(client, headers, **{name: cursor})) == ([] if name == "before" else ["T-2", "T-3"])
    for index in (0, len(cursor) // 2, len(cursor) - 1):
        tampered = cursor[:index] + ("B" if cursor[index] == "A" else "A") + cursor[index + 1 :]
        refused(client, headers, name, tampered)
    # The readable cursors of old (the base64 of a row number) and the like are made up now.
    for made_up in ("MQ==", "Mg==", "Mw", cursor[:-1], cursor + "A", cursor + "="):
        refused(client, headers, name, made_up)


def test_a_cursor_works_in_every_runtime_over_the_database(
    client: TestClient,
    headers: dict[str, str],
    runtime: Runtime,
    serve_with: Callable[..., Served],
) -> None:
    # The other runtime lists first, so it makes the key; this one then reads it.
    other = serve_with()
    create(other.client, headers, other.runtime, *(f"R-{i}" for i in range(5)))
    there = listed(other.client, headers, limit=2)
    here = listed(client, headers, limit=2)
    assert here == there
    assert ids(client.get(there["paging"]["next"], headers=headers).json()) == ["R-2", "R-3"]
    following = listed(client, headers, limit=2, after=here["paging"]["cursors"]["after"])
    assert ids(listed(other.client, headers, limit=2, after=following["paging"]["cursors"]["after"])) == [
        "R-4"
    ]
    # A restart: a new runtime reads the same key from the database.
    restarted = serve_with()
    assert listed(restarted.client, headers, limit=2, after=here["paging"]["cursors"]["after"]) == following
