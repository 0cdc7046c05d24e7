"""`repl verify`: the data check of every selected target (SPEC section 3, guarantee 4).

Per configured table both servers compute the same aggregates, so no row reaches repl:
the number of rows (on the source, those matching the target's row filter) and an
order-independent checksum of the unmasked replicated columns. For masked columns the
source's raw values are streamed, COPY to COPY, into a temporary table of a target
transaction that is always rolled back; the target then counts the rows that still
hold the raw value although its masking code, with its own key, would change it.

Nothing is written: the source is read in one READ ONLY snapshot per target, and the
target is read once the subscription has confirmed everything up to that snapshot.
The comparison is exact while the tables are quiet; a change committed on the source
while verify runs may reach the target before it is read and show as a difference.
A table published without UPDATE, DELETE or TRUNCATE diverges from its source by design
once those happen there: the differences they explain are notes, not problems.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import psycopg

from . import slots
from .comparisons import Check, aggregate, compare, containment, kept_rows, raw_check, rows
from .db import Database
from .errors import ValidationFailed
from .model import Subscription, TargetState, TargetTable
from .redact import redact
from .session import Session, Snapshot
from .state import desired
from .status import SYNC_STATES

CATCH_UP_TIMEOUT_S = 30.0
POLL_S = 0.2
# The checksum hashes each row's text, and raw values travel as COPY text: both sides
# must print values alike whatever their servers' defaults.
OUTPUT_SETTINGS = {
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "extra_float_digits": "1",
    "bytea_output": "hex",
    "lc_monetary": "C",
}
# Full scans of large production tables may take longer than the source connection's
# statement_timeout (meant for DDL); they only read and wait for no lock anyone queues on.
SOURCE_SETTINGS = {**OUTPUT_SETTINGS, "statement_timeout": "0",
                   "idle_in_transaction_session_timeout": "0"}


@dataclass
class MaskedColumn:
    column: str
    strategy: str
    raw_rows: int | None = None  # target rows holding the raw source value; None: unchecked


@dataclass
class TableVerification:
    table: str
    state: str  # table sync state ("ready"), "missing" (not subscribed), "no target table"
    source_rows: int | None = None  # matching the target's row filter
    target_rows: int | None = None
    checksum_columns: list[str] = field(default_factory=list)
    source_checksum: str | None = None
    target_checksum: str | None = None
    # "done", "skipped (no key)", "not run", or "no masked columns"
    raw_check: str = "no masked columns"
    masked: list[MaskedColumn] = field(default_factory=list)
    # A table that does not receive DELETE or TRUNCATE: source rows not on the target,
    # and (by key) rows whose unmasked columns differ; None where not checked.
    missing_rows: int | None = None
    changed_rows: int | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # differences the operations explain

    @property
    def checksum(self) -> str | None:
        """"match", "mismatch", or None when not computed on both sides."""
        if self.source_checksum is None or self.target_checksum is None:
            return None
        return "match" if self.source_checksum == self.target_checksum else "mismatch"

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class TargetVerification:
    target: str
    source_lsn: str | None = None  # the source snapshot's WAL position
    caught_up: bool | None = None  # the subscription had applied up to it when read
    tables: list[TableVerification] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)


@dataclass
class VerifyReport:
    targets: list[TargetVerification]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.targets)

    @property
    def problems(self) -> list[str]:
        return [f"target {t.target}, table {tv.table}: {p}"
                for t in self.targets for tv in t.tables for p in tv.problems]

    def to_dict(self) -> dict:
        data = asdict(self)
        for target, raw in zip(self.targets, data["targets"], strict=True):
            raw["ok"] = target.ok
            for table, raw_table in zip(target.tables, raw["tables"], strict=True):
                raw_table["ok"] = table.ok
                raw_table["checksum"] = table.checksum
        data["ok"] = self.ok
        data["problems"] = self.problems
        return data


def verify(session: Session, catch_up_timeout: float = CATCH_UP_TIMEOUT_S) -> VerifyReport:
    snap = session.snapshot()
    if snap.errors:
        raise ValidationFailed(snap.errors)
    want = desired(session.config, snap.source, snap.targets, snap.filters,
                   session.target_names)
    return VerifyReport([_verify_target(session, snap, want.states[name], catch_up_timeout)
                         for name in session.target_names])


def _verify_target(session: Session, snap: Snapshot, state: TargetState,
                   timeout: float) -> TargetVerification:
    name = state.target
    assert state.subscription is not None
    catalog = snap.targets[name]
    sub = catalog.subscriptions.get(state.subscription.name)
    report = TargetVerification(name)
    checks = []
    for spec in state.tables:
        rel = spec.relation
        masks = dict(spec.masks)
        result = TableVerification(str(rel), "ready")
        result.checksum_columns = [c.name for c in spec.columns if c.name not in masks]
        result.masked = [MaskedColumn(c.name, masks[c.name].strategy)
                         for c in spec.columns if c.name in masks]
        if masks:
            result.raw_check = "done" if spec.key else "skipped (no key)"
        report.tables.append(result)
        found = state.publication_of(rel)
        assert found is not None
        check = Check(spec, result, masks, found[1].row_filter, found[0].operations,
                       {c.name: c for c in snap.source.tables[rel].columns})
        if not _verifiable(check, catalog.tables.get(rel), sub):
            continue
        checks.append(check)
    if not checks:
        return report

    source, target = session.db("source"), session.db(name)
    with source.conn.transaction(force_rollback=True):
        source.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        _settings(source, SOURCE_SETTINGS)  # its SELECT takes the snapshot
        # Read after the snapshot: every commit the snapshot sees lies before it.
        report.source_lsn = source.scalar("SELECT pg_catalog.pg_current_wal_lsn()::text")
        for check in checks:
            with _attempt(check.result, source):
                (check.result.source_rows, check.result.source_checksum), = \
                    rows(source, aggregate(check, source=True))
        _await(source, report, state.subscription.slot_name, sub, timeout)
        with target.conn.transaction(force_rollback=True):
            target.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            _settings(target, OUTPUT_SETTINGS)
            for check in checks:
                if check.result.problems:
                    continue
                with _attempt(check.result, target):
                    (check.result.target_rows, check.result.target_checksum), = \
                        rows(target, aggregate(check, source=False))
                if check.masks and check.spec.key and not check.result.problems:
                    with _attempt(check.result, source, target):
                        raw_check(source, target, check)
                if kept_rows(check) and not check.result.problems:
                    with _attempt(check.result, source, target):
                        containment(source, target, check)
                compare(check)
    return report


def _verifiable(check: Check, actual: TargetTable | None, sub: Subscription | None) -> bool:
    """False (with the reason among the table's problems) when the data cannot be read."""
    result = check.result
    state = sub.state_of(check.spec.relation) if sub else None
    if actual is None:
        result.state = "no target table"
        result.problems.append("the table does not exist on the target; `repl setup` creates it")
    elif state is None:
        result.state = "missing"
        result.problems.append("the table is not in the subscription; `repl setup` adds it")
    elif state != "r":
        result.state = SYNC_STATES.get(state, state)
        result.problems.append(f"not verified: its initial copy is not finished (state "
                               f"{result.state}); verify again once `repl status` shows it ready")
    elif differ := [c.name for c in check.spec.columns if actual.column(c.name) is None
                    or actual.column(c.name).type != c.type]:
        result.problems.append(f"the target table lacks column(s) {', '.join(differ)} or has "
                               "them with another type; `repl setup` reshapes it")
    else:
        return True
    if check.masks:
        result.raw_check = "not run"
    return False


@contextlib.contextmanager
def _attempt(result: TableVerification, *dbs: Database) -> Iterator[None]:
    """A savepoint on each database; an error becomes a problem of this table only."""
    try:
        with contextlib.ExitStack() as stack:
            for db in dbs:
                stack.enter_context(db.conn.transaction(force_rollback=True))
            yield
    except psycopg.Error as exc:
        first_line = (redact(str(exc)).strip().splitlines() or ["?"])[0]
        result.problems.append(f"could not verify: {first_line}")


def _settings(db: Database, settings: dict[str, str]) -> None:
    db.execute("SELECT pg_catalog.set_config(s.name, s.value, true) "
               "FROM unnest(%s::text[], %s::text[]) AS s(name, value)",
               (list(settings), list(settings.values())))


def _await(source: Database, report: TargetVerification, slot: str | None,
           sub: Subscription | None, timeout: float) -> None:
    """Wait until the subscription has applied everything the source snapshot sees."""
    if sub is None or slot is None or not sub.enabled:
        report.caught_up = False
        report.notes.append("the subscription is missing or disabled: the target may lag "
                            "behind the source")
        return
    deadline = time.monotonic() + timeout
    while True:
        caught_up, behind = slots.confirmed_up_to(source, slot, report.source_lsn)
        if caught_up is None:
            report.caught_up = False
            report.notes.append(f"replication slot {slot} is missing or has confirmed nothing")
            return
        if caught_up:
            report.caught_up = True
            return
        if time.monotonic() > deadline:
            report.caught_up = False
            report.notes.append(
                f"the subscription had not applied the source's changes up to "
                f"{report.source_lsn} after {timeout:.0f} s ({behind} bytes "
                "behind): differences may be replication lag")
            return
        time.sleep(POLL_S)


# --- human output ---------------------------------------------------------------------
