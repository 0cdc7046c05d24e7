"""The exceptions repl raises; `cli.py` alone turns them into exit codes."""

from __future__ import annotations


class ReplError(Exception):
    """Base of every error repl reports to the user (no traceback)."""


class ConfigError(ReplError):
    """The configuration is invalid. Carries one line per problem, each with its dotted path."""

    def __init__(self, problems: list[str], secrets: list[str] | None = None):
        self.problems = list(problems)
        # Passwords and the masking secret found in a config that did not validate:
        # a message may quote them (a secret written where a strategy name goes).
        self.secrets = list(secrets or ())
        super().__init__("\n".join(self.problems))


class UsageError(ReplError):
    """The command line asks for something that does not exist (a target, a table)."""


class ConnectError(ReplError):
    """A database could not be reached. The message is already redacted."""


class ValidationFailed(ReplError):
    """Live-catalog validation found errors; nothing was changed."""

    def __init__(self, problems: list):
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s) found; nothing was changed")


class ApplyError(ReplError):
    """A step of `setup` failed; the databases are left as far as the plan got."""


class MigrationError(ApplyError):
    """A migration of repl's schema failed (SQLAlchemy's error, whose text names the
    statement)."""


class SkipError(ReplError):
    """`repl skip` cannot or must not skip: the message says why and what to do."""


class CopyStopped(ReplError):
    """An initial copy from a snapshot was stopped (a signal, `repl run` stopping or
    losing its lock)."""
