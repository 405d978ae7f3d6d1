"""Tracking ids made by the request layer: random version-4 UUIDs, as `str(uuid.uuid4())` would be."""

from __future__ import annotations

import uuid

from pendingtx.api.context import new_tracking_id


def test_ids_are_canonical_version_4_uuids_and_never_repeat() -> None:
    ids = [new_tracking_id() for _ in range(2000)]  # several batches
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)
        assert str(parsed) == text
