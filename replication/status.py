"""Health of every target (SPEC section 3, guarantee 8): read-only, the same data for the
human table, for `--json` and for the Prometheus metrics. Anything unhealthy makes the
report unhealthy; a target that cannot be reached is reported, not skipped.

Lag in seconds is PostgreSQL's own measurement, not a heartbeat of ours: repl is not in
the data path and puts nothing but publications and slots on the source. See
slot_health.lag.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from . import slots
from .config import Config
from .db import describe
from .diagnosis import (
    WATCH_LIMIT_S,
    SubscriptionWatch,
    apply_failing,
    schema_differences,
    way_out,
)
from .model import Subscription
from .names import QualifiedName, subscription_name
from .plan import indexes as planned_indexes
from .plan import plan_target, types
from .plan import sequences as planned_sequences
from .plan.diff import TargetDiff
from .session import Session, Snapshot
from .slot_health import lag, slot_findings
from .state import leftover_sync_slots

# `status --json` keeps this shape; a field is only ever added. A change that removes or
# renames one increments the number.
JSON_FORMAT = 1

SYNC_STATES = {
    "i": "initializing",
    "d": "copying",
    "f": "copied",
    "s": "synchronized",
    "r": "ready",
}


@dataclass
class TableStatus:
    table: str
    # One of SYNC_STATES' values, or "missing" (not in the subscription); an initial
    # copy from a snapshot: "copying", "copied" (the subscription comes next), "interrupted".
    state: str
    rows_copied: int | None  # while its copy runs
    estimated_rows: int | None  # of the source table (pg_class.reltuples), before filtering
    copy_seconds: float | None = None
    rows_per_second: float | None = None
    eta_seconds: float | None = None
    # Production's indexes to be built once the copy is done: not drift while it runs.
    indexes_waiting: int = 0


@dataclass
class TargetStatus:
    target: str
    database: str
    reachable: bool
    server_version: str | None
    subscription: str
    subscription_exists: bool
    enabled: bool
    disable_on_error: bool
    worker_running: bool
    slot_exists: bool
    slot_active: bool
    wal_status: str | None
    retained_bytes: int | None
    safe_wal_size: int | None
    lag_bytes: int | None
    lag_seconds: float | None
    lag_basis: str  # how lag_seconds was measured: see `lag`
    apply_errors: int
    sync_errors: int
    tables: list[TableStatus] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


@dataclass
class StatusReport:
    source: str
    source_version: str
    targets: list[TargetStatus]
    problems: list[str]  # source-level and config-vs-catalog problems
    warnings: list[str]

    @property
    def healthy(self) -> bool:
        return not self.problems and all(t.healthy for t in self.targets)

    def to_dict(self) -> dict:
        data = {"format": JSON_FORMAT, **asdict(self), "healthy": self.healthy}
        for target, raw in zip(self.targets, data["targets"], strict=True):
            raw["healthy"] = target.healthy
        return data


def copy_progress(ts: TableStatus) -> None:
    """Rate and ETA of a running copy, from the rows so far and the sync worker's age."""
    if ts.rows_copied is None or not ts.copy_seconds or ts.copy_seconds <= 0:
        return
    ts.rows_per_second = ts.rows_copied / ts.copy_seconds
    if ts.estimated_rows and ts.rows_per_second > 0:
        ts.eta_seconds = max(ts.estimated_rows - ts.rows_copied, 0) / ts.rows_per_second


def unreachable_status(config: Config, name: str, snap: Snapshot, error: str) -> TargetStatus:
    sub_name = subscription_name(config.name, name)
    slot = snap.source.slots.get(sub_name)
    seconds, basis = lag(slot)
    status = TargetStatus(
        target=name, database=describe(config.targets[name].dsn), reachable=False,
        server_version=None, subscription=sub_name, subscription_exists=False, enabled=False,
        disable_on_error=config.targets[name].disable_on_error, worker_running=False,
        slot_exists=slot is not None, slot_active=bool(slot and slot.active),
        wal_status=slot.wal_status if slot else None,
        retained_bytes=slot.retained_bytes if slot else None,
        safe_wal_size=slot.safe_wal_size if slot else None,
        lag_bytes=slot.lag_bytes if slot else None, lag_seconds=seconds, lag_basis=basis,
        apply_errors=0, sync_errors=0,
    )
    status.problems.append(f"target unreachable: {error}")
    if slot is not None:
        found, warned = slot_findings(slot, sub_name)
        status.problems += found
        status.warnings += warned
    return status


def leftover_sync_slot_problems(snap: Snapshot, sub: Subscription | None,
                                system_identifier: str) -> list[str]:
    return [f"table-sync slot {name} on the source is left over from a copy and keeps "
            f"{snap.source.slots[name].retained_bytes or 0} bytes of WAL; drop it: "
            f"{slots.drop_by_hand(name)}"
            for name in leftover_sync_slots(snap.source, sub, system_identifier)]


def target_status(config: Config, name: str, snap: Snapshot, drift: list[str],
                  masked: set[QualifiedName], watch: SubscriptionWatch,
                  types_behind: list[str] | None = None,
                  waiting: dict[QualifiedName, int] | None = None,
                  behind: list[str] | None = None) -> TargetStatus:
    """`types_behind`: what production added to types that this target lacks (a row
    using it stops apply until setup adds it: the likely cause of an apply failure);
    `waiting`: per table, the indexes that wait for its copy; `behind`: sequences that
    fell behind production's."""
    cat = snap.targets[name]
    sub_name = subscription_name(config.name, name)
    sub = cat.subscriptions.get(sub_name)
    slot = snap.source.slots.get(sub_name)
    seconds, basis = lag(slot)
    status = TargetStatus(
        target=name,
        database=describe(config.targets[name].dsn),
        reachable=True,
        server_version=cat.info.version,
        subscription=sub_name,
        subscription_exists=sub is not None,
        enabled=bool(sub and sub.enabled),
        disable_on_error=bool(sub and sub.disable_on_error),
        worker_running=bool(sub and sub.worker_pid),
        slot_exists=slot is not None,
        slot_active=bool(slot and slot.active),
        wal_status=slot.wal_status if slot else None,
        retained_bytes=slot.retained_bytes if slot else None,
        safe_wal_size=slot.safe_wal_size if slot else None,
        lag_bytes=slot.lag_bytes if slot else None,
        lag_seconds=seconds,
        lag_basis=basis,
        apply_errors=sub.apply_error_count if sub else 0,
        sync_errors=sub.sync_error_count if sub else 0,
        drift=drift,
    )
    problems = status.problems
    schema = schema_differences(config, name, snap.source, cat)
    copies = cat.initial_copies if sub is None else {}
    under_way = bool(copies) and {c.walsender_pid for c in copies.values()} <= \
        snap.source.snapshot_holders
    if copies:
        done = sum(c.chunks_done for c in copies.values())
        chunks = sum(c.chunks for c in copies.values())
        copied = sum(c.rows_copied for c in copies.values())
        if under_way:
            problems.append(f"the initial copy from a snapshot of the source is under way "
                            f"({done} of {chunks} chunks, {copied} rows); `repl setup` "
                            f"creates subscription {sub_name} once it is done")
        elif all(c.finished for c in copies.values()):
            problems.append(f"subscription {sub_name} does not exist: the initial copy "
                            "from a snapshot was done, but its `repl setup` failed to "
                            "create the subscription; `repl setup` copies the tables again")
        else:
            problems.append(f"subscription {sub_name} does not exist: the initial copy "
                            f"from a snapshot stopped at {done} of {chunks} chunks (its "
                            "`repl setup` was interrupted); `repl setup` empties the tables "
                            "and copies them again")
    elif sub is None:
        problems.append(f"subscription {sub_name} does not exist; run `repl setup`")
    else:
        failing = apply_failing(sub, slot, watch)
        if failing and types_behind:
            # Not a conflict to skip: skipping would lose the rows that need the type.
            problems.append(f"subscription {sub_name} is failing ({failing}), most likely on "
                            f"a row that uses what production added to a type the target "
                            f"lacks ({'; '.join(types_behind)}); `repl setup` adds it, and "
                            "PostgreSQL then applies the failed transaction by itself")
        elif failing and schema:
            problems.append(f"subscription {sub_name} is failing ({failing}): a schema "
                            "change on production stops it, below; `repl skip` would not "
                            "help (the next change fails alike) and is refused")
        elif failing:
            problems.append(f"subscription {sub_name} is failing ({failing}): "
                            + way_out(name, sub_name))
        elif not sub.enabled:
            problems.append(f"subscription {sub_name} is disabled; `repl setup` enables it")
        elif not sub.worker_pid:
            problems.append(f"subscription {sub_name} has no running apply worker "
                            "(starting, or failing: see the target's server log)")
        if watch.inconclusive:
            status.warnings.append(
                f"subscription {sub_name} has {sub.apply_error_count} apply error(s) counted "
                "and its worker restarting or down: not watched long enough to tell whether "
                "it is stuck on a conflict; `repl status` watches it for a retry interval")
    problems += schema
    found, warned = slot_findings(slot, sub_name)
    problems += found
    status.warnings += warned
    problems += leftover_sync_slot_problems(snap, sub, cat.info.system_identifier)
    for relation in config.targets[name].tables:
        sync = sub.sync_of(relation) if sub else None
        src = snap.source.tables.get(relation)
        state = sync.state if sync else None
        ts = TableStatus(str(relation), SYNC_STATES.get(state or "", "missing"),
                         sync.rows_copied if sync else None,
                         src.estimated_rows if src else None,
                         sync.copy_seconds if sync and sync.rows_copied is not None else None)
        if (initial := copies.get(relation)) is not None:  # from a snapshot, by repl setup
            ts.state = ("copied" if initial.finished else "copying") if under_way \
                else "interrupted"
            ts.rows_copied, ts.copy_seconds = initial.rows_copied, initial.seconds
        copy_progress(ts)
        ts.indexes_waiting = (waiting or {}).get(relation, 0)
        status.tables.append(ts)
        if initial is not None:  # said once for the target above
            continue
        if state != "r":
            retrying = (f"; its copy has failed {status.sync_errors} time(s) so far: see the "
                        "target's server log" if state and status.sync_errors else "")
            problems.append(f"table {relation} is {ts.state}"
                            + ("" if state else " (not in the subscription)") + retrying)
        if relation in masked:
            here = cat.tables.get(relation)
            trigger = here.mask_trigger if here else None
            if trigger != "A":
                what = "missing" if trigger is None else \
                    f"not ENABLE ALWAYS (tgenabled = {trigger})"
                problems.append(f"masking trigger of {relation} is {what}: raw values may "
                                "arrive; `repl setup` restores it and copies the table again")
    problems += behind or []
    if drift:
        problems.append(f"{len(drift)} difference(s) between the config and the databases; "
                        "`repl plan` shows them, `repl setup` fixes them")
    return status


def sequences_behind(d: TargetDiff) -> list[str]:
    """A target people write to whose sequence production caught up with."""
    if d.want.read_only:
        return []
    return [f"sequence {seq.name} fell behind production's (last value {current.position} "
            f"here, {seq.position} on production): a local insert may take an id that "
            "production will send, and its row would stop the subscription; `repl setup` "
            "moves it ahead" for seq, current in planned_sequences.behind(d)
            if current is not None]


def collect(session: Session, watch_budget: float = WATCH_LIMIT_S) -> StatusReport:
    """`watch_budget`: the seconds all suspect subscriptions may be watched, together."""
    snap = session.snapshot(reuse_filters=True)
    deadline = time.monotonic() + watch_budget
    config = session.config
    drift: dict[str, list[str]] = {n: [] for n in session.target_names}
    types_behind: dict[str, list[str]] = {n: [] for n in session.target_names}
    waiting: dict[str, dict[QualifiedName, int]] = {}
    behind: dict[str, list[str]] = {}
    # The masked tables as the desired state has them; from the config when the config
    # does not validate (a table missing on the source), so that a lost trigger still shows.
    masked = {n: {r for r, t in config.targets[n].tables.items() if t.mask}
              for n in session.target_names}
    if not snap.errors:
        # A column production added under `columns: all` is pending, not drift (SPEC:
        # pending and unclassified columns alone are not unhealthy).
        want, have = session.states(snap)
        for name in session.target_names:
            plan = plan_target(want.states[name], have[name], snap.targets[name].schemas)
            drift[name] = [f"{s.database}: {s.summary}" for s in plan.steps
                           if s.kind != "await_slot"]
            diff = TargetDiff(want.states[name], have[name],
                              frozenset(snap.targets[name].schemas))
            waiting[name] = planned_indexes.waiting(diff)
            behind[name] = sequences_behind(diff)
            masked[name] = {t.relation for t in want.states[name].tables if t.mask_function}
            types_behind[name] = types.behind(TargetDiff(want.states[name], have[name],
                                                         frozenset(snap.targets[name].schemas)))
    reports = {
        n: target_status(config, n, snap, drift[n], masked[n],
                         SubscriptionWatch(session, n, subscription_name(config.name, n),
                                           deadline), types_behind[n], waiting.get(n),
                         behind.get(n))
        for n in session.target_names
    }
    for name, error in session.unreachable.items():
        reports[name] = unreachable_status(config, name, snap, str(error))
    return StatusReport(
        source=describe(config.source.dsn),
        source_version=snap.source.info.version,
        targets=[reports[n] for n in config.targets if n in reports],
        # An abandoned slot keeps production's WAL without bound: that is unhealthy.
        problems=[str(p) for p in snap.problems
                  if p.severity == "error" or p.kind == "orphan slot retaining WAL"],
        # Exposure warnings are about the config, not about now: `check` tells them. A
        # type that differs is drift, which the target's report lists already.
        warnings=[str(p) for p in snap.problems if p.severity == "warning"
                  and p.kind not in ("orphan slot retaining WAL", "exposure", "type drift")],
    )


def fresh_report(config: Config, targets: list[str] | None = None,
                 watch_budget: float = WATCH_LIMIT_S) -> StatusReport:
    """One status collection on connections of its own: run again, it sees a target that
    went away or came back (`--watch`, each metrics scrape)."""
    with Session(config, targets, targets_optional=True) as session:
        return collect(session, watch_budget)
