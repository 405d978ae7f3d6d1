"""Operational visibility: structured JSON logs, the per-request access line, and Prometheus metrics.

Nothing here is built at import time: the server and the worker command configure logging when
they start, and every application instance owns its own metrics registry.
"""

from pendingtx.observability.caller import identify

__all__ = ["identify"]
