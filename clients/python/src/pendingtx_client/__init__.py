"""The pendingtx client SDK: submit pending transactions, follow their jobs, read transactions.

```python
from pendingtx_client import Client

with Client.from_env() as api:  # PENDINGTX_URL, PENDINGTX_APP_KEY, PENDINGTX_APP_SECRET, or the profile
    job = api.submit([{"externalId": "PT-1", "type": "New Subscription", ...}])
    done = api.wait(job.key, timeout=60)
    print(done.status, done.validation_messages)
```

`AsyncClient` has the same methods, awaited. Both run the same calls (`_operations`, on the
sans-I/O core in `_core`); only their I/O differs. The SDK needs only httpx and msgspec (and the
standard library): it never imports the server. The exception tree is drawn in
`pendingtx_client._errors`; every exception derives from `PendingTxError`, and every error answer
of the server is an `ApiError`.
"""

from pendingtx_client._async import AsyncClient
from pendingtx_client._core import Timeout
from pendingtx_client._errors import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    ErrorDetail,
    IdempotencyKeyReused,
    NotFound,
    PendingTxError,
    PermissionDenied,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    UnexpectedResponse,
    ValidationError,
    WaitTimeout,
)
from pendingtx_client._events import Event
from pendingtx_client._listing import JobFilters, TransactionFilters
from pendingtx_client._models import (
    JobRef,
    JobState,
    JobStatus,
    JobSummary,
    RecordProblem,
    RecordResult,
    Transaction,
    ValidationDetail,
)
from pendingtx_client._operations import Record
from pendingtx_client._retry import RetryPolicy
from pendingtx_client._sync import Client

__all__ = [
    "ApiError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "ConfigurationError",
    "Conflict",
    "ConnectionFailed",
    "ErrorDetail",
    "Event",
    "IdempotencyKeyReused",
    "JobFilters",
    "JobRef",
    "JobState",
    "JobStatus",
    "JobSummary",
    "NotFound",
    "PendingTxError",
    "PermissionDenied",
    "RateLimited",
    "Record",
    "RecordProblem",
    "RecordResult",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailable",
    "Timeout",
    "Transaction",
    "TransactionFilters",
    "UnexpectedResponse",
    "ValidationDetail",
    "ValidationError",
    "WaitTimeout",
]
