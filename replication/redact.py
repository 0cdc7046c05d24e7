"""Keeps passwords and the masking secret out of every line repl prints (guarantee 7)."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

MASK = "********"

# password=... in key=value conninfo (quoted or bare), and user:password@ in URIs.
_KEYWORD_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'\"]+)", re.IGNORECASE)
_URI_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)([^@\s]*)(@)", re.IGNORECASE)


class Redactor:
    """Replaces known secrets and anything shaped like a password in a connection string."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, *secrets: str | None) -> None:
        self._secrets.update(s for s in secrets if s)

    def reset(self) -> None:
        """Forget the secrets added so far (tests run many commands in one process)."""
        self._secrets.clear()

    def __call__(self, text: str) -> str:
        # Longest first, so a secret that contains another is masked whole.
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        text = _KEYWORD_PASSWORD.sub(lambda m: m.group(1) + MASK, text)
        return _URI_PASSWORD.sub(lambda m: m.group(1) + MASK + m.group(3), text)


redact = Redactor()


def redact_data(data: Any) -> Any:
    """Every string inside `data` redacted: done before JSON encoding, whose escaping
    would otherwise hide a secret from the text replacement."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {redact_data(k): redact_data(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [redact_data(v) for v in data]
    return data


def redact_conninfo(dsn: str) -> str:
    """The connection string with its password replaced, still a valid conninfo."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.Error:
        return MASK
    if "password" in params:
        params["password"] = MASK
    return make_conninfo(**params)
