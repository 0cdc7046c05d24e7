"""What a subscription would apply next, read from its slot on the source without
consuming anything: pgoutput's messages decoded by the source (the slot must be idle,
so the subscription is disabled meanwhile), parsed here.

The target's replication origin says how far the subscription applied (the end of its
last applied transaction); the first transaction the slot holds that ends after it is
the one apply is working on. Its RELATION messages describe each table as production
had it when the change was made: the table's name and its columns' names. That is how
`repl skip` finds the transaction that fails, and how a rename on production is followed
on the target at the right point of the stream (plan/renames.py).
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from . import slots
from .db import Database

PEEK_BATCH = 10_000  # changes decoded per round while looking for a transaction


def lsn_text(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def lsn_int(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def publication_list(names: Iterable[str]) -> str:
    """pgoutput splits publication_names like a list of SQL identifiers."""
    return ",".join('"' + n.replace('"', '""') + '"' for n in sorted(names))


@dataclass(frozen=True)
class Relation:
    """A table as a RELATION message describes it: production's names at the change."""

    schema: str
    name: str
    columns: tuple[str, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass
class Transaction:
    xid: int
    finish_lsn: int
    # Each table it changes, as described when the change was made.
    relations: dict[int, Relation] = field(default_factory=dict)
    changes: int = 0

    @property
    def tables(self) -> list[str]:
        return sorted({r.qualified for r in self.relations.values()})


def applied_position(target: Database, subscription_oid: int) -> int:
    """How far the subscription applied: its replication origin's remote LSN (0: none)."""
    applied = target.scalar("SELECT remote_lsn::text FROM pg_catalog.pg_replication_origin_status"
                            " WHERE external_id = %s", (f"pg_{subscription_oid}",))
    return lsn_int(applied) if applied else 0


def parse(messages: Iterable[bytes], applied_up_to: int) -> Iterator[Transaction]:
    described: dict[int, Relation] = {}
    current: Transaction | None = None
    for data in messages:
        kind = chr(data[0])
        if kind == "B":
            final_lsn, _, xid = struct.unpack_from("!QqI", data, 1)
            current = Transaction(xid, final_lsn) if final_lsn >= applied_up_to else None
        elif kind == "R":
            relid, relation = _relation(data)
            described[relid] = relation
        elif kind in "IUD" and current is not None:
            (relid,) = struct.unpack_from("!I", data, 1)
            current.relations.setdefault(relid, described.get(relid, Relation(
                "?", f"relation {relid}", ())))
            current.changes += 1
        elif kind == "T" and current is not None:
            (count,) = struct.unpack_from("!I", data, 1)
            for i in range(count):
                (relid,) = struct.unpack_from("!I", data, 6 + 4 * i)
                current.relations.setdefault(relid, described.get(relid, Relation(
                    "?", f"relation {relid}", ())))
            current.changes += 1
        elif kind == "C" and current is not None:
            yield current
            current = None


def first(source: Database, slot: str, publications: Iterable[str], applied_up_to: int,
          wanted: Callable[[Transaction], bool] = lambda _: True) -> Transaction | None:
    """The first transaction the slot would send that ends after `applied_up_to` and is
    `wanted`, or None when the slot holds none. Decoding stops after a number of changes
    (whole transactions), raised while nothing is found: peeking always starts at the
    slot's confirmed position. The rows come through a server-side cursor."""
    limit = PEEK_BATCH
    while True:
        seen = 0

        def counted(messages: Iterable[bytes]) -> Iterator[bytes]:
            nonlocal seen
            for message in messages:
                seen += 1
                yield message

        messages = slots.peek_changes(source, slot, publication_list(publications), limit)
        with contextlib.closing(messages):  # ends its transaction before going on
            found = next((t for t in parse(counted(messages), applied_up_to) if wanted(t)),
                         None)
        if found is not None or seen < limit:
            return found
        limit *= 4


def _cstring(data: bytes, at: int) -> tuple[str, int]:
    end = data.index(b"\0", at)
    return data[at:end].decode(), end + 1


def _relation(data: bytes) -> tuple[int, Relation]:
    """RELATION: relid, namespace, name, replica identity, columns (flags, name, type,
    typmod)."""
    (relid,) = struct.unpack_from("!I", data, 1)
    schema, at = _cstring(data, 5)
    name, at = _cstring(data, at)
    at += 1  # replica identity setting
    (count,) = struct.unpack_from("!H", data, at)
    at += 2
    columns = []
    for _ in range(count):
        at += 1  # flags
        column, at = _cstring(data, at)
        at += 8  # type OID, type modifier
        columns.append(column)
    return relid, Relation(schema, name, tuple(columns))
