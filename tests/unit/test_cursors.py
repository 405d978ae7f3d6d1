"""Opaque list cursors: sealed positions that open only for their listing, organization and key."""

from __future__ import annotations

import base64
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pendingtx.domain.cursors import (
    CURSOR_LENGTH,
    CURSOR_PATTERN,
    KEY_BYTES,
    MAX_COUNT,
    MAX_POSITION,
    PAGE_CURSOR_LENGTH,
    PAGE_CURSOR_PATTERN,
    CursorKey,
    ListingCursors,
    ListKind,
    PageCursor,
    new_cursor_key,
)

KEY = CursorKey(bytes(range(KEY_BYTES)))
CURSORS = KEY.for_listing(ListKind.TRANSACTIONS, 1)
URL_SAFE = re.compile(r"[A-Za-z0-9_-]+")
POSITIONS = st.integers(min_value=1, max_value=MAX_POSITION)


@settings(database=None)
@given(POSITIONS)
def test_a_cursor_opens_to_its_position(position: int) -> None:
    cursor = CURSORS.seal(position)
    assert CURSORS.open(cursor) == position
    assert CURSORS.seal(position) == cursor  # one cursor per row, so every link to a page is alike


@pytest.mark.parametrize("position", [1, 2, 255, 256, 2**32, MAX_POSITION])
def test_every_cursor_is_short_url_safe_and_of_one_length(position: int) -> None:
    cursor = CURSORS.seal(position)
    assert len(cursor) == CURSOR_LENGTH == 32
    assert URL_SAFE.fullmatch(cursor)
    assert re.fullmatch(CURSOR_PATTERN, cursor)


@settings(database=None)
@given(POSITIONS)
def test_a_cursor_does_not_spell_its_position(position: int) -> None:
    raw = base64.urlsafe_b64decode(CURSORS.seal(position) + "==")
    for spelling in (
        str(position).encode(),
        position.to_bytes(8, "big"),
        position.to_bytes(8, "little"),
    ):
        assert spelling not in raw


@pytest.mark.parametrize(
    "other",
    [
        KEY.for_listing(ListKind.TRANSACTIONS, 2),
        KEY.for_listing(ListKind.TRANSACTIONS, -1),
        KEY.for_listing(ListKind.JOBS, 1),
        CursorKey(bytes(reversed(range(KEY_BYTES)))).for_listing(ListKind.TRANSACTIONS, 1),
    ],
    ids=["another organization", "a negative organization", "another listing", "another key"],
)
def test_a_cursor_opens_only_where_it_was_issued(other: ListingCursors) -> None:
    for position in (1, 42, MAX_POSITION):
        assert other.open(CURSORS.seal(position)) is None
        assert other.seal(position) != CURSORS.seal(position)


def test_every_single_character_change_is_refused() -> None:
    cursor = CURSORS.seal(1000)
    for index, original in enumerate(cursor):
        for replacement in "AQgw_-9z":
            if replacement != original:
                tampered = cursor[:index] + replacement + cursor[index + 1 :]
                assert CURSORS.open(tampered) is None, tampered


@pytest.mark.parametrize(
    "text",
    [
        "",
        "MQ==",
        "MjU=",
        "A" * 32,
        "A" * 31,
        "A" * 33,
        "A" * 30 + "==",
        "A" * 31 + "=",
        "A" * 31 + "+",
        "A" * 31 + "/",
        "A" * 31 + "\u0410",  # a Cyrillic A
        " " + "A" * 31,
    ],
)
def test_text_that_is_no_sealed_cursor_is_refused(text: str) -> None:
    assert CURSORS.open(text) is None


def test_a_sealed_cursor_with_padding_or_spaces_is_refused() -> None:
    cursor = CURSORS.seal(5)
    for variant in (cursor + "=", cursor + "==", f" {cursor}", f"{cursor}\n", cursor.upper(), cursor[:-1]):
        assert CURSORS.open(variant) is None


@settings(database=None)
@given(
    st.text(max_size=40)
    | st.binary(min_size=24, max_size=24).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="))
)
def test_made_up_cursors_are_refused(text: str) -> None:
    assert CURSORS.open(text) is None


@pytest.mark.parametrize("position", [0, -1, MAX_POSITION + 1])
def test_only_row_positions_are_sealed(position: int) -> None:
    with pytest.raises(ValueError, match="not a row sequence number"):
        CURSORS.seal(position)


@pytest.mark.parametrize("size", [0, 32, 63, 65])
def test_a_key_has_one_size(size: int) -> None:
    with pytest.raises(ValueError, match="64 bytes"):
        CursorKey(bytes(size))


def test_new_keys_are_random_and_fit() -> None:
    first, second = new_cursor_key(), new_cursor_key()
    assert len(first) == len(second) == KEY_BYTES
    assert first != second
    assert CursorKey(first).for_listing(ListKind.TRANSACTIONS, 1).open(CURSORS.seal(9)) is None


# --- page cursors: the transaction and job lists' cursors, which carry the listing's count ---------

FILTERS = "ListQuery(status='Active')"
COUNTS = st.integers(min_value=0, max_value=MAX_COUNT)


@settings(database=None)
@given(POSITIONS, COUNTS)
def test_a_page_cursor_opens_to_its_position_and_count(position: int, total: int) -> None:
    cursor = CURSORS.seal_page(position, total, FILTERS)
    assert CURSORS.open_page(cursor, FILTERS) == PageCursor(position, total)
    assert len(cursor) == PAGE_CURSOR_LENGTH == 48
    assert re.fullmatch(PAGE_CURSOR_PATTERN, cursor)


def test_a_count_beyond_what_a_cursor_holds_is_carried_as_the_most_it_holds() -> None:
    assert CURSORS.open_page(CURSORS.seal_page(1, MAX_COUNT + 5, FILTERS), FILTERS) == PageCursor(
        1, MAX_COUNT
    )


@settings(database=None)
@given(POSITIONS, COUNTS, st.text(max_size=200))
def test_a_page_cursor_carries_its_count_only_to_its_filters(position: int, total: int, other: str) -> None:
    opened = CURSORS.open_page(CURSORS.seal_page(position, total, FILTERS), other)
    assert opened == PageCursor(position, total if other == FILTERS else None)


@pytest.mark.parametrize(
    "other",
    [
        KEY.for_listing(ListKind.TRANSACTIONS, 2),
        KEY.for_listing(ListKind.JOBS, 1),
        CursorKey(bytes(reversed(range(KEY_BYTES)))).for_listing(ListKind.TRANSACTIONS, 1),
    ],
    ids=["another organization", "another listing", "another key"],
)
def test_a_page_cursor_opens_only_where_it_was_issued(other: ListingCursors) -> None:
    assert other.open_page(CURSORS.seal_page(42, 10, FILTERS), FILTERS) is None


def test_every_single_character_change_of_a_page_cursor_is_refused() -> None:
    cursor = CURSORS.seal_page(1000, 20_000, FILTERS)
    for index, original in enumerate(cursor):
        for replacement in "AQgw_-9z":
            if replacement != original:
                tampered = cursor[:index] + replacement + cursor[index + 1 :]
                assert CURSORS.open_page(tampered, FILTERS) is None, tampered


def test_row_cursors_and_page_cursors_do_not_open_as_one_another() -> None:
    assert CURSORS.open_page(CURSORS.seal(5), FILTERS) is None
    assert CURSORS.open(CURSORS.seal_page(5, 1, FILTERS)) is None


@settings(database=None)
@given(
    st.text(max_size=60)
    | st.binary(min_size=36, max_size=36).map(lambda b: base64.urlsafe_b64encode(b).decode())
)
def test_made_up_page_cursors_are_refused(text: str) -> None:
    assert CURSORS.open_page(text, FILTERS) is None


@pytest.mark.parametrize("position", [0, -1, MAX_POSITION + 1])
def test_only_row_positions_are_sealed_in_page_cursors(position: int) -> None:
    with pytest.raises(ValueError, match="not a row sequence number"):
        CURSORS.seal_page(position, 1, FILTERS)
