"""The kinds of step a plan is made of: data that `plan` prints and `setup` runs.

A step names its database ("source" or a target), says in words what it does, and
carries its SQL. Most steps are SQL run in one transaction; a few kinds do what SQL
alone cannot: migrate repl's schema with alembic, wait for or drop a replication slot,
install the masking library with its key (which is never shown). Each kind is a class
that knows how to run itself against the session's connections.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

from psycopg import sql

from .. import masking, masking_sql, migrations, slots, snapshot_copy
from ..db import Database
from ..redact import redact

SOURCE = "source"

if TYPE_CHECKING:
    from .diff import Copy


class Databases(Protocol):
    """Where steps run: the session's open connections, by database name."""

    def db(self, name: str) -> Database: ...

    def dsn(self, name: str) -> str: ...

    def stall_check(self, target: str) -> Callable[[], str | None]:
        """Whether waiting on `target`'s subscription can still succeed (None), or why not."""
        ...

    def interrupted(self) -> str | None:
        """Why a long step must stop now (`repl run` stopping or losing its lock), if so."""
        ...

    @property
    def copy_report(self) -> Callable[[str, snapshot_copy.Progress], None] | None:
        """Told of each table's progress (target, progress) during an initial copy from a
        snapshot."""
        ...


@dataclass(frozen=True)
class Step:
    """SQL statements run in one transaction (or one by one, outside any)."""

    kind: ClassVar[str] = "sql"

    database: str  # "source" or a target's name
    summary: str
    statements: tuple[sql.Composable, ...] = ()
    transactional: bool = True  # False: must run outside a transaction block
    hazards: tuple[str, ...] = ()
    display: tuple[sql.Composable, ...] = ()  # shown instead (a password masked)
    # Waits for a table's copy to be done (production's indexes): the plan after a
    # setup may find such a step new, since a copy can finish while setup runs.
    after_copy: bool = False

    def text(self) -> str:
        """The SQL as it will run, with secrets redacted; or what the step does."""
        if not self.statements:
            return f"-- {self.summary}"
        shown = self.display or self.statements
        return redact(";\n".join(s.as_string(None) for s in shown) + ";")

    def run(self, dbs: Databases) -> None:
        db = dbs.db(self.database)
        # A step shown with a different text (display) carries a password in its
        # statements: PostgreSQL would log it with the statement if the statement failed.
        quiet = db.statements_out_of_log() if self.display else contextlib.nullcontext()
        with quiet:
            if self.transactional:
                with db.conn.transaction():
                    self.execute(db)
            else:
                self.execute(db)

    def execute(self, db: Database) -> None:
        for statement in self.statements:
            db.execute_one(statement)


@dataclass(frozen=True)
class Migrate(Step):
    """repl's own schema on a target, brought to the newest revision by alembic."""

    kind: ClassVar[str] = "migrate"

    def run(self, dbs: Databases) -> None:
        migrations.upgrade(dbs.dsn(self.database))


@dataclass(frozen=True)
class AwaitSlot(Step):
    """Wait until the subscriber of `slot` applied everything committed on the source
    before the step started."""

    kind: ClassVar[str] = "await_slot"
    slot: str = field(default="", kw_only=True)
    subscriber: str = field(default="", kw_only=True)  # the target whose subscription it is

    def run(self, dbs: Databases) -> None:
        slots.await_confirmed(dbs.db(SOURCE), self.slot,
                              stalled=dbs.stall_check(self.subscriber))


@dataclass(frozen=True)
class DropSlot(Step):
    """Drop `slot` on the source once its walsender has let go of it."""

    kind: ClassVar[str] = "drop_slot"
    slot: str = field(default="", kw_only=True)

    def run(self, dbs: Databases) -> None:
        slots.drop(dbs.db(SOURCE), self.slot)


@dataclass(frozen=True)
class InstallMasking(Step):
    """In one transaction: the masking library (sql/masking/), the step's statements, and
    the masking key. Re-creating the key functions makes every session (the apply
    worker's too) read the key again."""

    kind: ClassVar[str] = "install_masking"
    key: tuple[bytes, bytes, str] = field(default=(b"", b"", ""), kw_only=True, repr=False)

    def text(self) -> str:
        return "-- (statements not shown: they store the masking key)"

    def execute(self, db: Database) -> None:
        for text in masking_sql.install_statements():  # repl's own files: trusted SQL
            db.conn.execute(text.encode())  # type: ignore[arg-type]
        super().execute(db)
        masking.store_key(db.conn, *self.key)


@dataclass(frozen=True)
class SnapshotCopy(Step):
    """A new target's initial copy: its slot made with an exported snapshot, the tables
    copied from that snapshot by several workers (replication/snapshot_copy.py), then
    the step's statements (the subscription, created on the slot without a copy)."""

    kind: ClassVar[str] = "snapshot_copy"
    slot: str = field(default="", kw_only=True)
    tables: tuple[snapshot_copy.TableCopy, ...] = field(default=(), kw_only=True)
    options: snapshot_copy.CopyOptions = field(default=snapshot_copy.FROM_SNAPSHOT, kw_only=True)

    def text(self) -> str:
        jobs = (f"{self.options.jobs} worker(s)" if self.options.jobs else
                "as many workers as the target's cores allow")
        lines = [f"-- source, over a replication connection: "
                 f"{slots.export_statement(self.slot).as_string(None)};",
                 f"-- copy {len(self.tables)} table(s) from that snapshot with {jobs}, tables "
                 f"over {self.options.split_bytes // 1024**2} MB in page ranges, each chunk "
                 "one transaction on the target:"]
        for table in self.tables:
            lines.append(f"--   {table.copy_out(table.select(table.relation)).as_string(None)}"
                         f" -> {table.copy_in().as_string(None)}")
            lines += [f"--   then {s.as_string(None)}" for s in table.indexes]
        return "\n".join(lines) + "\n" + super().text()

    def run(self, dbs: Databases) -> None:
        db, told = dbs.db(self.database), dbs.copy_report
        snapshot_copy.copy(dbs.dsn(SOURCE), db.conn, dbs.dsn(self.database), self.slot,
                           self.tables, self.options, dbs.interrupted,
                           None if told is None else lambda p: told(self.database, p))
        try:
            super().run(dbs)
        except BaseException:  # the slot would keep WAL for a subscription not there
            snapshot_copy.drop_slot(dbs.dsn(SOURCE), self.slot)
            raise


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    copies: list[Copy] = field(default_factory=list)  # tables copied, and why
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.steps

    def databases(self) -> list[str]:
        return list(dict.fromkeys(s.database for s in self.steps))


def merge(plans: list[Plan], notes: list[str]) -> Plan:
    merged = Plan(notes=list(notes))
    for p in plans:
        merged.steps += p.steps
        merged.copies += p.copies
    return merged
