"""The Idempotency-Key rule that every caller shares: the header's name and what a key may be.

The one claim/replay mechanism built on it (the key store, the claim, the replay) is
``exchange.services.idempotency``, used by the API's ``idempotent_request`` and by keyed service calls
alike (docs/architecture.md, Idempotency).
"""

from __future__ import annotations

IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY_LENGTH = 128


def key_is_valid(key: str) -> bool:
    """1 to 128 printable characters, everywhere (API header, services, commands)."""
    return bool(key) and len(key) <= MAX_IDEMPOTENCY_KEY_LENGTH and key.isprintable()
