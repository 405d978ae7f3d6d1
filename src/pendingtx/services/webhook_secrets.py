"""Webhook signing secrets, encrypted at rest: they must be read back to sign, so they cannot be hashed.

AES-256-GCM with a random nonce, bound to the endpoint it belongs to (its public id is the associated
data, so a ciphertext copied onto another row does not open). The key is the setting
`PENDINGTX_WEBHOOK_KEY` when given (kept outside the database), else a key stored in `server_keys`
(see SECURITY.md for what each protects against).
"""

from __future__ import annotations

import os
import threading

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pendingtx.clock import Clock
from pendingtx.domain.webhooks import KEY_BYTES
from pendingtx.storage.server_keys import stored_key
from pendingtx.storage.unit_of_work import UnitOfWork

# The name of the database-kept key in server_keys.
WEBHOOK_KEY = "webhooks"
# The first byte of a stored secret: which key sealed it (1 the setting's, 2 the database's), so that
# a server started with the other kind of key refuses it plainly instead of failing to decrypt.
_FROM_SETTING = b"\x01"
_FROM_DATABASE = b"\x02"
_NONCE_BYTES = 12


class SecretKeyMismatch(Exception):
    """A stored secret was sealed with another key than this process has."""


class WebhookSecrets:
    """Seals and opens endpoints' signing secrets; safe from several threads."""

    def __init__(self, uow: UnitOfWork, clock: Clock, configured: bytes | None) -> None:
        self._uow = uow
        self._clock = clock
        self._lock = threading.Lock()
        self._kind = _FROM_SETTING if configured is not None else _FROM_DATABASE
        self._aead: AESGCM | None = AESGCM(configured) if configured is not None else None

    def _key(self) -> AESGCM:
        aead = self._aead
        if aead is None:
            with self._lock:
                if self._aead is None:
                    secret = stored_key(self._uow, WEBHOOK_KEY, lambda: os.urandom(KEY_BYTES), self._clock)
                    self._aead = AESGCM(secret)
                aead = self._aead
        return aead

    def seal(self, secret: str, public_id: str) -> bytes:
        """The stored form of an endpoint's secret."""
        nonce = os.urandom(_NONCE_BYTES)
        return (
            self._kind + nonce + self._key().encrypt(nonce, secret.encode("ascii"), public_id.encode("ascii"))
        )

    def open(self, stored: bytes, public_id: str) -> str:
        """The secret back from its stored form; SecretKeyMismatch when another key sealed it."""
        if stored[:1] != self._kind:
            raise SecretKeyMismatch("the webhook secret was sealed with the other kind of key")
        nonce, sealed = stored[1 : 1 + _NONCE_BYTES], stored[1 + _NONCE_BYTES :]
        return self._key().decrypt(nonce, sealed, public_id.encode("ascii")).decode("ascii")
