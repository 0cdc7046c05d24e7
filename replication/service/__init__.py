"""`repl run`: the reconciler as a service (issue 15). `loop` runs it; `lock` keeps it one
per config; `pulse` notices between passes what broke; `events` logs; `health` reports."""

from .loop import RunOptions, Service

__all__ = ["RunOptions", "Service"]
