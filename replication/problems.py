"""What `check`, `setup` and `status` find wrong: one problem per line, with where it is."""

from __future__ import annotations

from dataclasses import dataclass

from .names import QualifiedName


@dataclass(frozen=True)
class Problem:
    severity: str  # "error" or "warning"
    where: str  # "source", "target dev", "target dev, table public.users, column email"
    message: str
    kind: str = "problem"  # "unclassified": a column no config mentions (errors with --strict)

    def __str__(self) -> str:
        return f"{self.severity}: {self.where}: {self.message}"

    def as_error(self) -> Problem:
        return Problem("error", self.where, self.message, self.kind)


def where(target: str, relation: QualifiedName | None = None, column: str | None = None) -> str:
    parts = [f"target {target}"]
    if relation is not None:
        parts.append(f"table {relation}")
    if column is not None:
        parts.append(f"column {column}")
    return ", ".join(parts)


# Kind of the problems that keep repl out of a target's schema `repl`.
REPL_SCHEMA = "repl schema"
