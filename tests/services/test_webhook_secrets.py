"""Webhook secrets are stored encrypted, bound to their endpoint, under the configured or the stored key."""

from __future__ import annotations

import os

import pytest
from cryptography.exceptions import InvalidTag

from pendingtx.bootstrap import Runtime
from pendingtx.domain.webhooks import new_secret
from pendingtx.services.webhook_secrets import SecretKeyMismatch, WebhookSecrets


def test_a_secret_is_sealed_with_the_database_key_and_opens_only_for_its_endpoint(runtime: Runtime) -> None:
    secrets = WebhookSecrets(runtime.uow, runtime.clock, None)
    secret = new_secret()
    sealed = secrets.seal(secret, "wh_a")
    assert secret.encode() not in sealed
    # Another process reads the same stored key.
    assert WebhookSecrets(runtime.uow, runtime.clock, None).open(sealed, "wh_a") == secret
    with pytest.raises(InvalidTag):
        secrets.open(sealed, "wh_b")


def test_a_configured_key_is_used_and_the_other_kind_is_refused(runtime: Runtime) -> None:
    configured = WebhookSecrets(runtime.uow, runtime.clock, os.urandom(32))
    sealed = configured.seal("whsec_x", "wh_a")
    assert configured.open(sealed, "wh_a") == "whsec_x"
    with pytest.raises(SecretKeyMismatch):
        WebhookSecrets(runtime.uow, runtime.clock, None).open(sealed, "wh_a")
