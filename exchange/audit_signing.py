"""The registry's audit signing key: checkpoints are signed with Ed25519 by a key the database never holds.

Where the private key comes from, first match wins:

1. ``GREENLEDGER_AUDIT_SIGNING_KEY``: the key itself, PEM (PKCS#8) or the base64 of its 32 raw bytes;
2. ``GREENLEDGER_AUDIT_SIGNING_KEY_FILE``: a path to a PEM file (a mounted secret);
3. outside production only: ``var/audit-signing-key.pem``, generated on first use (mode 0600).

In production (``GREENLEDGER_ENV=production``) sealing refuses to run without 1 or 2: a checkpoint
signed by a key that appeared on its own would prove nothing. The public keys that verification trusts
are the current key's and those listed in ``GREENLEDGER_AUDIT_PUBLIC_KEYS`` (base64 raw keys, comma
separated): the keys of earlier checkpoints, kept after a rotation. An attacker who can write to the
database can rewrite events, Merkle roots and checkpoint hashes consistently, but can't sign them.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext as _

from exchange.audit_proof import key_id, signed_message

DEVELOPMENT_KEY_NAME = "audit-signing-key.pem"


class SigningKeyMissing(ImproperlyConfigured):
    """Production has no audit signing key configured: sealing stops rather than sign with a stray key."""


def _raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _from_text(text: str) -> Ed25519PrivateKey:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ImproperlyConfigured(_("The audit signing key must be an Ed25519 key."))
        return key
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(text))


def _development_key(path: Path) -> Ed25519PrivateKey:
    """Read the development key, or make it: written to a temporary file and linked into place, so two
    processes starting at once end up with the same key."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".audit-key-")
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, pem)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        os.unlink(tmp)
    return _from_text(path.read_text())


@functools.cache
def signing_key() -> Ed25519PrivateKey:
    """The private key checkpoints are signed with (``SigningKeyMissing`` in production without one)."""
    text = os.environ.get("GREENLEDGER_AUDIT_SIGNING_KEY", "")
    if text:
        return _from_text(text)
    file = os.environ.get("GREENLEDGER_AUDIT_SIGNING_KEY_FILE", "")
    if file:
        return _from_text(Path(file).read_text())
    if getattr(settings, "PRODUCTION", False):
        raise SigningKeyMissing(
            _(
                "No audit signing key: set GREENLEDGER_AUDIT_SIGNING_KEY_FILE (or GREENLEDGER_AUDIT_SIGNING_KEY) "
                "in production; checkpoints are not sealed without it."
            )
        )
    return _development_key(Path(settings.VAR_DIR) / DEVELOPMENT_KEY_NAME)


def current_key_id() -> str:
    return key_id(_raw_public(signing_key().public_key()))


def sign(checkpoint_hash_hex: str) -> tuple[str, str]:
    """``(key_id, base64 signature)`` of a checkpoint hash."""
    key = signing_key()
    signature = key.sign(signed_message(checkpoint_hash_hex))
    return key_id(_raw_public(key.public_key())), base64.b64encode(signature).decode()


def trusted_public_keys() -> dict[str, str]:
    """Key id -> base64 raw public key: the current key and the retired ones still trusted."""
    keys: dict[str, str] = {}
    for text in os.environ.get("GREENLEDGER_AUDIT_PUBLIC_KEYS", "").split(","):
        if text.strip():
            raw = base64.b64decode(text.strip())
            Ed25519PublicKey.from_public_bytes(raw)  # refuse a malformed key here, not at verification
            keys[key_id(raw)] = base64.b64encode(raw).decode()
    with contextlib.suppress(SigningKeyMissing):
        raw = _raw_public(signing_key().public_key())
        keys[key_id(raw)] = base64.b64encode(raw).decode()
    return keys
