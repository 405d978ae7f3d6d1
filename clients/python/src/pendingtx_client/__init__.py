"""The pendingtx client SDK: submit pending transactions, follow their jobs, list transactions.

```python
from pendingtx_client import Client

with Client("http://127.0.0.1:8000", app_key, app_secret) as api:
    job = api.submit([{"externalId": "PT-1", "type": "New Subscription", ...}])
    done = api.wait(job.key, timeout=60)
    print(done.status, done.validation_messages)
```

It needs only httpx and msgspec (and the standard library): it never imports the server.
The exception tree is drawn in `pendingtx_client._errors`; every exception derives from
`PendingTxError`, and every error answer of the server is an `ApiError`.
"""

from pendingtx_client._client import Client, Record
from pendingtx_client._errors import (
    ApiError,
    AuthenticationError,
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
from pendingtx_client._listing import TransactionFilters
from pendingtx_client._models import JobRef, JobState, JobStatus, Transaction, ValidationDetail
from pendingtx_client._retry import RetryPolicy

__all__ = [
    "ApiError",
    "AuthenticationError",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "ErrorDetail",
    "IdempotencyKeyReused",
    "JobRef",
    "JobState",
    "JobStatus",
    "NotFound",
    "PendingTxError",
    "PermissionDenied",
    "RateLimited",
    "Record",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailable",
    "Transaction",
    "TransactionFilters",
    "UnexpectedResponse",
    "ValidationDetail",
    "ValidationError",
    "WaitTimeout",
]
