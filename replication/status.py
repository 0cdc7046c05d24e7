"""Health of every target (SPEC section 3, guarantee 8): read-only, the same data for the
human table and for `--json`. Anything unhealthy makes the report unhealthy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .config import Config
from .db import describe
from .model import subscription_name
from .session import Session, Snapshot

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
    state: str  # one of SYNC_STATES' values, or "missing" (not in the subscription)
    rows_copied: int | None
    estimated_rows: int | None


@dataclass
class TargetStatus:
    target: str
    database: str
    server_version: str
    subscription: str
    subscription_exists: bool
    enabled: bool
    worker_running: bool
    slot_exists: bool
    wal_status: str | None
    retained_bytes: int | None
    safe_wal_size: int | None
    lag_bytes: int | None
    lag_seconds: float | None
    apply_errors: int
    sync_errors: int
    tables: list[TableStatus] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

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
        data = asdict(self)
        data["healthy"] = self.healthy
        for target, raw in zip(self.targets, data["targets"], strict=True):
            raw["healthy"] = target.healthy
        return data


def target_status(config: Config, name: str, snap: Snapshot, drift: list[str]) -> TargetStatus:
    cat = snap.targets[name]
    sub_name = subscription_name(config.name, name)
    sub = cat.subscriptions.get(sub_name)
    slot = snap.source.slots.get(sub_name)
    status = TargetStatus(
        target=name,
        database=describe(config.targets[name].dsn),
        server_version=cat.info.version,
        subscription=sub_name,
        subscription_exists=sub is not None,
        enabled=bool(sub and sub.enabled),
        worker_running=bool(sub and sub.worker_pid),
        slot_exists=slot is not None,
        wal_status=slot.wal_status if slot else None,
        retained_bytes=slot.retained_bytes if slot else None,
        safe_wal_size=slot.safe_wal_size if slot else None,
        lag_bytes=slot.lag_bytes if slot else None,
        lag_seconds=slot.replay_lag_seconds if slot else None,
        apply_errors=sub.apply_error_count if sub else 0,
        sync_errors=sub.sync_error_count if sub else 0,
        drift=drift,
    )
    problems = status.problems
    if sub is None:
        problems.append(f"subscription {sub_name} does not exist; run `repl setup`")
    else:
        if not sub.enabled:
            problems.append(f"subscription {sub_name} is disabled; `repl setup` enables it")
        elif not sub.worker_pid:
            problems.append(f"subscription {sub_name} has no running apply worker "
                            "(starting, or failing: see the target's server log)")
    if slot is None:
        problems.append(f"replication slot {sub_name} is missing on the source; "
                        "`repl setup` recreates the subscription and copies every table")
    elif slot.wal_status == "lost":
        problems.append(f"replication slot {sub_name} is lost (its WAL was removed past "
                        "max_slot_wal_keep_size); the subscription must be recreated and its "
                        "tables copied again")
    elif slot.wal_status == "unreserved":
        problems.append(f"replication slot {sub_name} is about to lose required WAL "
                        f"(wal_status unreserved)")
    for relation in config.targets[name].tables:
        state = sub.state_of(relation) if sub else None
        rows = next((r for rel, _, r in (sub.table_states if sub else ()) if rel == relation),
                    None)
        src = snap.source.tables.get(relation)
        status.tables.append(TableStatus(
            str(relation), SYNC_STATES.get(state or "", "missing"), rows,
            src.estimated_rows if src else None))
        if state != "r":
            retrying = (f"; its copy has failed {status.sync_errors} time(s) so far: see the "
                        "target's server log" if state and status.sync_errors else "")
            problems.append(f"table {relation} is {SYNC_STATES.get(state or '', 'missing')}"
                            + ("" if state else " (not in the subscription)") + retrying)
        if config.targets[name].tables[relation].mask:
            here = cat.tables.get(relation)
            trigger = here.mask_trigger if here else None
            if trigger != "A":
                what = "missing" if trigger is None else \
                    f"not ENABLE ALWAYS (tgenabled = {trigger})"
                problems.append(f"masking trigger of {relation} is {what}: raw values may "
                                "arrive; `repl setup` restores it and copies the table again")
    if drift:
        problems.append(f"{len(drift)} difference(s) between the config and the databases; "
                        "`repl plan` shows them, `repl setup` fixes them")
    return status


def collect(session: Session) -> StatusReport:
    snap = session.snapshot()
    config = session.config
    drift: dict[str, list[str]] = {n: [] for n in session.target_names}
    if not snap.errors:
        # A column added on production under `columns: all` is unclassified until the
        # next setup picks it up: not drift (SPEC: unclassified alone is not unhealthy).
        plans, _ = session.plans(snap, expand_all=False)
        for name, plan in plans.items():
            drift[name] = [f"{s.database}: {s.summary}" for s in plan.steps
                           if s.action != "await_slot"]
    targets = [target_status(config, n, snap, drift[n]) for n in session.target_names]
    return StatusReport(
        source=describe(config.source.dsn),
        source_version=snap.source.info.version,
        targets=targets,
        # An abandoned slot keeps production's WAL without bound: that is unhealthy.
        problems=[str(p) for p in snap.problems
                  if p.severity == "error" or p.kind == "orphan slot retaining WAL"],
        warnings=[str(p) for p in snap.problems
                  if p.severity == "warning" and p.kind != "orphan slot retaining WAL"],
    )
