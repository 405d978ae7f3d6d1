"""Building blocks of the OpenAPI document: references, JSON answers, and the value patterns that
JSON Schema states as regular expressions."""

from __future__ import annotations

from typing import Any

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def ref(name: str) -> dict[str, str]:
    """A reference to a schema component."""
    return {"$ref": f"#/components/schemas/{name}"}


def header(name: str) -> dict[str, str]:
    """A reference to a header component."""
    return {"$ref": f"#/components/headers/{name}"}


def response(name: str) -> dict[str, str]:
    """A reference to a response component."""
    return {"$ref": f"#/components/responses/{name}"}


TRACKING = {"requesttrackingid": header("requesttrackingid")}


def json_answer(schema: dict[str, Any], description: str, **headers: Any) -> dict[str, Any]:
    """A JSON answer; every answer carries `requesttrackingid`."""
    return {
        "description": description,
        "headers": {**TRACKING, **headers},
        "content": {JSON: {"schema": schema}},
    }


def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """An optional query parameter (given at most once: a repeated one is a 400)."""
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


# yyyy-MM-dd, a real calendar date from 0001-01-01 (29 February only in leap years).
_YEAR = "([0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)"
_LEAP_YEAR = "([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)"
_MONTH_DAY = "((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)"
_DATE = f"({_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
_TIME = r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{3})?"
DATE_PATTERN = f"^{_DATE}$"
MOMENT_PATTERN = f"^{_DATE}({_TIME})?$"
