"""Names: how repl spells tables, and the names it gives its own objects.

Names are the only link between a config and the objects it made: `<name>_<target>` for
the slot and subscription, `<name>_<target>_<operations>` for publications, schema `repl`
on a target. Everything that builds or recognises such a name is here, so that the rule
has one home (ownership.py says what to do when two configs meet on the same names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg import sql

OPERATIONS = ("insert", "update", "delete", "truncate")
OPERATION_LETTERS = {"insert": "i", "update": "u", "delete": "d", "truncate": "t"}
MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1: PostgreSQL truncates longer names
REPL_SCHEMA = "repl"  # repl's own state on a target; always this name

_NAME_RE = re.compile(r"[a-z_][a-z0-9_]*")
_PART = r'"(?:[^"]|"")+"|[^".]+'
_QUALIFIED_RE = re.compile(rf"({_PART})\.({_PART})")


def bad_identifier(name: str) -> str | None:
    """Why `name` cannot be a PostgreSQL identifier as written, or None."""
    if not name or len(name.encode()) > MAX_IDENTIFIER_BYTES:
        return f"a name must have 1 to {MAX_IDENTIFIER_BYTES} bytes"
    return None


def plain_name(name: str) -> bool:
    """A lower-case identifier that needs no quotes (and so no case folding surprises)."""
    return bool(_NAME_RE.fullmatch(name))


@dataclass(frozen=True, order=True)
class QualifiedName:
    """A table name, exactly as the catalog spells it (no case folding)."""

    schema: str
    name: str

    @classmethod
    def parse(cls, text: str) -> QualifiedName:
        """`public.users`, `'"my.schema".orders'`, `'public."My Table"'`; ValueError otherwise."""
        match = _QUALIFIED_RE.fullmatch(text)
        if not match:
            raise ValueError(f"{text!r} is not schema.table (a name that contains a dot or a "
                             "double quote is written in double quotes: '\"my.schema\".orders')")
        parts = [p[1:-1].replace('""', '"') if p[0] == '"' else p for p in match.groups()]
        for written, part in zip(match.groups(), parts, strict=True):
            if written[0] != '"' and part != part.strip():
                raise ValueError(f"{text!r} has spaces around a name (quote it if they belong)")
            if problem := bad_identifier(part):
                raise ValueError(f"{text!r}: {problem}")
        return cls(parts[0], parts[1])

    def __str__(self) -> str:
        return f"{quote_identifier(self.schema)}.{quote_identifier(self.name)}"


def quote_identifier(part: str) -> str:
    """Double-quotes a name part unless it is a plain lower-case identifier."""
    return part if plain_name(part) else '"' + part.replace('"', '""') + '"'


def ident(relation: QualifiedName) -> sql.Identifier:
    """A table's qualified name as SQL."""
    return sql.Identifier(relation.schema, relation.name)


# --- repl's objects ----------------------------------------------------------------------

def subscription_name(prefix: str, target: str) -> str:
    """Also the name of its slot on the source."""
    return f"{prefix}_{target}"


def publication_name(prefix: str, target: str, operations: frozenset[str]) -> str:
    """One publication per distinct operation set of a target: repl_dev_iudt, repl_dev_i."""
    letters = "".join(OPERATION_LETTERS[op] for op in OPERATIONS if op in operations)
    return f"{prefix}_{target}_{letters}"


def owns_publication(prefix: str, target: str, name: str) -> bool:
    """repl_dev_iu belongs to target dev; repl_dev_eu_i does not (it is dev_eu's)."""
    letters = "".join(OPERATION_LETTERS[op] for op in OPERATIONS)
    suffix = name.removeprefix(f"{prefix}_{target}_")
    if suffix == name or not re.fullmatch(f"[{letters}]+", suffix):
        return False
    return "".join(c for c in letters if c in suffix) == suffix


def operations_of(pubinsert: bool, pubupdate: bool, pubdelete: bool, pubtruncate: bool
                  ) -> frozenset[str]:
    flags = dict(zip(OPERATIONS, (pubinsert, pubupdate, pubdelete, pubtruncate), strict=True))
    return frozenset(op for op, on in flags.items() if on)
