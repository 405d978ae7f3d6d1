"""Reading the records of a file to submit (a JSON array or object, or a CSV); cutting them into batches."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from pendingtx_client.cli.connection import UsageFailed

Record = dict[str, Any]

# Numbers are kept digit for digit (a Decimal), never passed through a float.
_json = msgspec.json.Decoder(float_hook=Decimal)


def read_records(path: Path) -> list[Record]:
    """The records of a `.json` or `.csv` file; other names are read as JSON when they look like it."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageFailed(f"cannot read {path}: {exc}") from None
    suffix = path.suffix.lower()
    is_json = suffix == ".json" or (suffix != ".csv" and text.lstrip()[:1] in ("[", "{"))
    records = _from_json(path, text) if is_json else _from_csv(path, text)
    if not records:
        raise UsageFailed(f"{path} holds no records")
    return records


def _from_json(path: Path, text: str) -> list[Record]:
    try:
        data = _json.decode(text)
    except msgspec.DecodeError as exc:
        raise UsageFailed(f"{path} is not valid JSON: {exc}") from None
    items = data if isinstance(data, list) else [data]
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise UsageFailed(f"{path}: item {position} is not a JSON object")
    return items


def _from_csv(path: Path, text: str) -> list[Record]:
    """One record per row; the header names the members, and an empty cell leaves its member out."""
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header or not any(name.strip() for name in header):
        return []
    names = [name.strip() for name in header]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated or "" in names:
        problem = f"repeats {', '.join(repeated)}" if repeated else "has an empty column name"
        raise UsageFailed(f"{path}: the CSV header {problem}")
    records = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(names):
            raise UsageFailed(f"{path}: line {reader.line_num} has more cells than the header")
        records.append({name: cell for name, cell in zip(names, row, strict=False) if cell != ""})
    return records


def batches(records: Sequence[Record], size: int) -> Iterator[tuple[int, Sequence[Record]]]:
    """(offset of the first record, records) for consecutive batches of at most `size` records."""
    for offset in range(0, len(records), size):
        yield offset, records[offset : offset + size]
