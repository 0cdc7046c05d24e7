"""The masking SQL library of the targets (sql/masking/), and the keys it expects.

The functions the masking triggers call live in the target's `repl` schema. They read
the secret as the HMAC-SHA256 padded keys (ikey, okey) from the single row of
`repl.secret`, which repl stores at setup with `padded_keys()`. Triggers obtain them
with `repl.mask_ikey()` and `repl.mask_okey()` (see sql/masking/keys.sql).
"""

from __future__ import annotations

import hashlib

from .resources import load_sql

# In dependency order: the strategies and names call the PRFs, the keys call nothing.
FILES = ("prf", "keys", "names", "strategies")

BLOCK_SIZE = 64  # bytes in a SHA-256 block, the size of each padded key


def install_statements() -> list[str]:
    """The SQL texts that (re)create the library, to run in this order in one transaction.

    Each text holds several statements (no parameters). Schema `repl` must exist; the
    table `repl.secret` is needed only when the keys are first read. Running them
    again is harmless, and is how sessions holding the old keys in their cached plans
    are told to read them again after `repl.secret` changed.
    """
    return [load_sql(f"masking/{name}") for name in FILES]


def padded_keys(secret: bytes) -> tuple[bytes, bytes]:
    """(ikey, okey) of HMAC-SHA256 for the key `secret`, as stored in `repl.secret`.

    The key is hashed with SHA-256 first if longer than a block, then zero-padded to
    64 bytes; ikey is it XOR 0x36 repeated, okey XOR 0x5c repeated (RFC 2104).
    """
    if not isinstance(secret, bytes | bytearray):
        raise TypeError("the masking secret must be bytes (encode text secrets as UTF-8)")
    if not secret:
        raise ValueError("the masking secret is empty")
    key = hashlib.sha256(secret).digest() if len(secret) > BLOCK_SIZE else bytes(secret)
    key = key.ljust(BLOCK_SIZE, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)
