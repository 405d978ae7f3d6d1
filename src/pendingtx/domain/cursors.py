"""Opaque list cursors: a row's position sealed with the server's key, for one listing of one organization.

Row ids are one sequence shared by every organization, so a readable cursor would tell a caller how
many rows others created. A sealed one tells nothing, cannot be made up, and opens only in the listing
and for the organization it was issued to. The transaction and job lists' cursors also carry the
listing's count, so that only its first page counts.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV

KEY_BYTES = 64
# Positions are BIGINT row ids.
MAX_POSITION = 2**63 - 1
_POSITION_BYTES = 8
# URL-safe base64 without padding of the 16-byte tag and the 8-byte position. Every cursor is this
# long: one that grew with its position would tell roughly how many rows exist.
CURSOR_LENGTH = 32
# What every cursor looks like (for the API document); only a sealed one is valid.
CURSOR_PATTERN = rf"[A-Za-z0-9_-]{{{CURSOR_LENGTH}}}"
_CURSOR_TEXT = re.compile(CURSOR_PATTERN, re.ASCII)

# A page cursor seals the position, the listing's count and a digest of the filters it was counted
# for: 16 + 8 + 6 + 6 = 36 bytes, a multiple of 3, so that its base64 has no stray bits either.
_COUNT_BYTES = 6
MAX_COUNT = 2 ** (8 * _COUNT_BYTES) - 1
_FILTERS_BYTES = 6
PAGE_CURSOR_LENGTH = 48
PAGE_CURSOR_PATTERN = rf"[A-Za-z0-9_-]{{{PAGE_CURSOR_LENGTH}}}"
_PAGE_CURSOR_TEXT = re.compile(PAGE_CURSOR_PATTERN, re.ASCII)


class ListKind(StrEnum):
    """The listings that issue cursors; a cursor from one is refused by every other."""

    TRANSACTIONS = "transactions"
    WEBHOOK_DELIVERIES = "webhook-deliveries"  # GET /v1/webhooks/{id}/deliveries (contract 7.3)
    JOBS = "jobs"  # GET /v1/jobs/{appName} (contract 7.4)
    JOB_RESULTS = "job-results"  # GET /v1/jobs/{appName}/results/{key}


def new_cursor_key() -> bytes:
    """A fresh random key for `CursorKey`."""
    return AESSIV.generate_key(KEY_BYTES * 8)


@dataclass(frozen=True, slots=True)
class PageCursor:
    """An opened page cursor: its row's position, and the listing's count when the cursor was issued
    for the same filters (None: count again)."""

    position: int
    total: int | None


def _filters_digest(filters: str) -> bytes:
    # Sealed with the rest, so a short unkeyed digest suffices: a client can neither read nor alter
    # it, and two filter sets that collide would only share a count, never rows.
    return hashlib.sha256(filters.encode("utf-8")).digest()[:_FILTERS_BYTES]


class CursorKey:
    """The server's cursor key: AES-SIV (RFC 5297), an authenticated encryption without a nonce.

    Deterministic by design, so a row has one cursor per listing and organization, and a cursor
    is as short as its position and tag.
    """

    __slots__ = ("_siv",)

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a cursor key is {KEY_BYTES} bytes, not {len(key)}")
        self._siv = AESSIV(key)

    def for_listing(self, kind: ListKind, org_id: int) -> ListingCursors:
        """The cursors of this organization's listing of this kind."""
        return ListingCursors(self._siv, [kind.value.encode("ascii"), org_id.to_bytes(8, "big", signed=True)])


class ListingCursors:
    """Seals positions into cursors and opens them, bound to one listing of one organization."""

    __slots__ = ("_context", "_siv")

    def __init__(self, siv: AESSIV, context: list[bytes]) -> None:
        self._siv = siv
        self._context = context

    def seal(self, position: int) -> str:
        """The cursor of a row position (1 to 2**63 - 1)."""
        if not 1 <= position <= MAX_POSITION:
            raise ValueError(f"not a row sequence number: {position}")
        sealed = self._siv.encrypt(position.to_bytes(_POSITION_BYTES, "big"), self._context)
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def open(self, cursor: str) -> int | None:
        """The position a cursor stands for, or None unless this listing issued it exactly so."""
        if _CURSOR_TEXT.fullmatch(cursor) is None:
            return None
        # 32 characters are exactly 24 bytes: no padding, no stray bits, one spelling per cursor.
        sealed = base64.urlsafe_b64decode(cursor)
        try:
            plain = self._siv.decrypt(sealed, self._context)
        except InvalidTag:
            return None
        position = int.from_bytes(plain, "big")
        return position if 1 <= position <= MAX_POSITION else None

    def seal_page(self, position: int, total: int, filters: str) -> str:
        """The cursor of a row position in a listing of `total` rows matching `filters` (their text)."""
        if not 1 <= position <= MAX_POSITION:
            raise ValueError(f"not a row sequence number: {position}")
        plain = (
            position.to_bytes(_POSITION_BYTES, "big")
            + min(total, MAX_COUNT).to_bytes(_COUNT_BYTES, "big")
            + _filters_digest(filters)
        )
        return base64.urlsafe_b64encode(self._siv.encrypt(plain, self._context)).decode("ascii")

    def open_page(self, cursor: str, filters: str) -> PageCursor | None:
        """What a page cursor stands for, or None unless this listing issued it exactly so; its count
        only if it was issued for these filters."""
        if _PAGE_CURSOR_TEXT.fullmatch(cursor) is None:
            return None
        try:
            plain = self._siv.decrypt(base64.urlsafe_b64decode(cursor), self._context)
        except InvalidTag:
            return None
        position = int.from_bytes(plain[:_POSITION_BYTES], "big")
        if not 1 <= position <= MAX_POSITION:
            return None
        counted = plain[_POSITION_BYTES : _POSITION_BYTES + _COUNT_BYTES]
        same = plain[_POSITION_BYTES + _COUNT_BYTES :] == _filters_digest(filters)
        return PageCursor(position, int.from_bytes(counted, "big") if same else None)
