"""Values sealed under a key derived from the app's secret key (`SELFCHECK_SECRET_KEY`), so
that a copy of the database or of a backup alone does not give them: the second factor's
TOTP secrets (accounts/totp.py) and the follow-up reminders' e-mail addresses
(journey/reminders.py, attack15).

A sealed value is `v1:` and the URL-safe base64 (unpadded) of an 8-byte random nonce and the
value XORed with an HMAC-SHA256 key stream (the key derived for its `purpose`, the nonce):
8 + n bytes for a value of n bytes, so `sealed_length(n)` characters (short enough for the
existing columns, which an authenticated cipher's nonce and tag would not fit). A value stored
before sealing has no prefix and is read as it is. Confidentiality only, against a reader of the
database or a backup: whoever can write the database can change a sealed value (into garbage,
or into a chosen one of the same length if they know the value) or store an unsealed one, as they
can change a password hash; integrity against a writer is not what this is for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets

SEALED = "v1:"  # a sealed value's prefix; a value without it was stored before sealing
NONCE_BYTES = 8


def _keystream(secret_key: str | bytes, purpose: bytes, nonce: bytes, length: int) -> bytes:
    key = secret_key.encode() if isinstance(secret_key, str) else secret_key
    key = hmac.new(key, purpose, hashlib.sha256).digest()
    stream = b""
    block = 0
    while len(stream) < length:
        stream += hmac.new(key, nonce + block.to_bytes(4, "big"), hashlib.sha256).digest()
        block += 1
    return stream[:length]


def seal(value: str, secret_key: str | bytes, purpose: bytes) -> str:
    """`value` as stored: never readable without the app's secret key."""
    raw = value.encode()
    nonce = secrets.token_bytes(NONCE_BYTES)
    stream = _keystream(secret_key, purpose, nonce, len(raw))
    sealed = bytes(a ^ b for a, b in zip(raw, stream, strict=True))
    return SEALED + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def unseal(stored: str, secret_key: str | bytes, purpose: bytes) -> str:
    """The value of a stored one (`seal`'s inverse; a value stored before sealing as it is).
    Under another secret key or purpose: garbage, never an error."""
    if not is_sealed(stored):
        return stored
    body = stored[len(SEALED) :]
    packed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    nonce, sealed = packed[:NONCE_BYTES], packed[NONCE_BYTES:]
    stream = _keystream(secret_key, purpose, nonce, len(sealed))
    return bytes(a ^ b for a, b in zip(sealed, stream, strict=True)).decode(errors="replace")


def is_sealed(stored: str) -> bool:
    return stored.startswith(SEALED)


def sealed_length(value_bytes: int) -> int:
    """The length of a sealed value of `value_bytes` bytes (to fit a column)."""
    return len(SEALED) + math.ceil((NONCE_BYTES + value_bytes) * 4 / 3)
