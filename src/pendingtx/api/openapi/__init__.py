"""The service's own OpenAPI 3.1 description, served at /openapi.json.

The document is precise enough to fuzz against (tests/api/test_fuzz.py) and to generate clients from
(tests/api/test_generated_client.py): every status an operation can answer is listed with its exact
error body, `requesttrackingid` is a required header of every answer, and parameters carry the
patterns the server enforces. The answers' schemas are generated from their types (api/answers.py,
the error classes of pendingtx.errors); the request bodies' are written out (records.py), with the
bounds and value sets of the domain. What JSON Schema cannot say (a date range that ends before it
starts, `after` together with `before`, a cursor this server did not issue) is said in descriptions.
"""

from pendingtx.api.openapi.document import openapi_document
from pendingtx.api.openapi.shapes import DATE_PATTERN, MOMENT_PATTERN

__all__ = ["DATE_PATTERN", "MOMENT_PATTERN", "openapi_document"]
