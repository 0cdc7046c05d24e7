"""One command's view of the world: connections to the source and the selected targets,
the catalogs read from them, the validation problems, and the plan.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from . import catalog, slots, user_types
from .catalog import SourceCatalog, TargetCatalog
from .config import Config
from .db import Database, connect, dsn_problem
from .diagnosis import ApplyStall
from .errors import ConnectError, UsageError
from .exposure import check_exposure
from .model import RowFilter, TargetState
from .names import QualifiedName, owns_publication, subscription_name
from .ownership import another_configs, check_ownership, slot_of_another_config
from .plan import Plan, merge, plan_target
from .privileges import check_target_privileges
from .probes import probe_mask_expressions, probe_row_filters
from .problems import Problem
from .server_checks import (
    check_distinct_databases,
    check_roles,
    check_source_server,
    check_target_server,
)
from .snapshot_copy import FROM_SNAPSHOT, CopyOptions
from .snapshot_copy import Progress as CopyProgress
from .state import Desired, actual, desired, subscriber_conninfo
from .validate import check_config, unclassified_columns


@dataclass(frozen=True)
class Asked:
    """What the person running `setup` asked for beyond the config."""

    resync: frozenset[QualifiedName] = frozenset()  # tables to copy again anyway
    accept_new_columns: bool = False  # columns production added under `columns: all`
    drop_columns: bool = False  # target columns no longer replicated are dropped
    copy: CopyOptions = FROM_SNAPSHOT  # how a new target's tables are first copied


AS_CONFIGURED = Asked()  # nothing beyond the config


@dataclass
class Snapshot:
    source: SourceCatalog
    targets: dict[str, TargetCatalog]
    filters: dict[tuple[str, QualifiedName], RowFilter] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def select_targets(config: Config, names: list[str] | None) -> list[str]:
    if not names:
        return list(config.targets)
    unknown = [n for n in names if n not in config.targets]
    if unknown:
        raise UsageError(f"unknown target(s): {', '.join(unknown)} "
                         f"(configured: {', '.join(config.targets)})")
    return list(dict.fromkeys(names))


def configured_table(config: Config, target: str, text: str) -> QualifiedName:
    """The table `text` names, which must be configured for `target`."""
    try:
        relation = QualifiedName.parse(text)
    except ValueError as exc:
        raise UsageError(f"table {text!r}: {exc}") from None
    if relation not in config.targets[target].tables:
        raise UsageError(f"table {relation} is not configured for target {target}")
    return relation


class Session:
    """Open connections for one command; use as a context manager."""

    def __init__(self, config: Config, targets: list[str] | None = None,
                 source_optional: bool = False, targets_optional: bool = False):
        self.config = config
        self.target_names = select_targets(config, targets)
        self.source: Database | None = None
        self.source_error: ConnectError | None = None  # when the source is optional
        self.source_optional = source_optional
        self.targets: dict[str, Database] = {}
        # With targets_optional, a target that cannot be reached is left out of
        # target_names (so the rest of the session works on the others) and kept here.
        self.targets_optional = targets_optional
        self.unreachable: dict[str, ConnectError] = {}
        # Told of an initial copy's progress (target, progress), if anyone listens.
        self.copy_report: Callable[[str, CopyProgress], None] | None = None

    def __enter__(self) -> Session:
        try:
            try:
                self.source = connect(self.config.source.dsn, "source", source=True)
            except ConnectError as exc:
                if not self.source_optional:
                    raise
                self.source_error = exc
            for name in self.target_names:
                try:
                    self.targets[name] = connect(self.config.targets[name].dsn,
                                                 f"target {name}")
                except ConnectError as exc:
                    if not self.targets_optional:
                        raise
                    self.unreachable[name] = exc
            self.target_names = [n for n in self.target_names if n not in self.unreachable]
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for db in [self.source, *self.targets.values()]:
            if db is not None:
                with contextlib.suppress(Exception):
                    db.close()

    def db(self, name: str) -> Database:
        if name == "source":
            assert self.source is not None
            return self.source
        return self.targets[name]

    def stall_check(self, target: str) -> Callable[[], str | None]:
        return ApplyStall(self, target)

    def interrupted(self) -> str | None:
        return None  # a command stops on Ctrl-C; `repl run` says more (service/loop.py)

    def dsn(self, name: str) -> str:
        return self.config.source.dsn if name == "source" else self.config.targets[name].dsn

    # --- reading ---------------------------------------------------------------------

    def relations(self, target: str | None = None) -> list[QualifiedName]:
        names = [target] if target else self.target_names
        return list(dict.fromkeys(r for n in names for r in self.config.targets[n].tables))

    def snapshot(self, reuse_filters: bool = False) -> Snapshot:
        """Read every catalog and validate the config against it. Writes nothing, but
        parsing a row filter takes a transaction ID on the source: with `reuse_filters`
        (status), a filter whose text is the one the last setup parsed is not parsed again.
        """
        assert self.source is not None
        src = catalog.read_source(self.source, self.config.name, self.relations())
        targets = {}
        for name, db in self.targets.items():
            # Every user type a configured column could need, whether or not it flows.
            types = {n.type.name for n in user_types.needed(
                [(rel, c) for rel in self.relations(name) if rel in src.tables
                 for c in src.tables[rel].columns], src.types)}
            role_names = {n for role, spec in self.config.targets[name].roles.items()
                          for n in (role, *spec.members)}
            targets[name] = catalog.read_target(db, self.config.name, self.relations(name),
                                                types, role_names)
        src.add_recorded(self.source, [i.source_oid for cat in targets.values()
                                       for i in cat.identities.values()])
        snap = Snapshot(src, targets)
        new_slots = sum(1 for name in self.target_names
                        if subscription_name(self.config.name, name) not in src.slots)
        snap.problems += check_source_server(src, new_slots, need_publications=True)
        snap.problems += check_distinct_databases(src, targets)
        names = {subscription_name(self.config.name, t): t for t in self.target_names}
        for slot, database in slots.elsewhere(self.source, list(names)).items():
            snap.problems.append(Problem(
                "error", f"target {names[slot]}",
                f"replication slot {slot} already exists for database {database} of the "
                "source's cluster (slot names are cluster-wide); give this config another "
                "`name`"))
        snap.problems += check_ownership(self.config, src, targets)
        for name, cat in targets.items():
            snap.problems += check_target_server(name, cat)
            snap.problems += check_roles(name, self.config, targets)
        if src.info.version_num >= 150000:
            wanted = [
                (name, rel, table, src.tables[rel])
                for name in self.target_names
                for rel, table in self.config.targets[name].tables.items()
                if table.where is not None and rel in src.tables
                and src.tables[rel].relkind in ("r", "p")
            ]
            if reuse_filters:  # those parsed at the last setup, when the text is the same
                for name, rel, table, _ in wanted:
                    kept = targets[name].row_filters.get(rel)
                    if kept is not None and kept[0] == table.where:
                        snap.filters[(name, rel)] = kept[1]
                wanted = [w for w in wanted if (w[0], w[1]) not in snap.filters]
            probed, probe_problems = probe_row_filters(self.source, wanted)
            snap.filters.update(probed)
            snap.problems += probe_problems
        snap.problems += check_config(self._selected_config(), src, targets, snap.filters)
        snap.problems += user_types.check(self._selected_config(), src.tables, src.types,
                                          {n: c.user_types.values() for n, c in targets.items()})
        snap.problems += check_exposure(self._selected_config(), targets)
        conninfo = subscriber_conninfo(self.config)
        if self.config.source.subscriber_dsn and (bad := dsn_problem(conninfo)):
            snap.problems.append(Problem("error", "source.subscriber_dsn", bad))
        for name, cat in targets.items():
            snap.problems += check_target_privileges(name, self.config.targets[name], cat,
                                                     conninfo)
        for name, db in self.targets.items():
            custom = [
                (rel, src.tables[rel].column(column), spec)
                for rel, table in self.config.targets[name].tables.items()
                if rel in src.tables
                for column, spec in table.mask.items()
                if spec.strategy == "sql" and src.tables[rel].column(column) is not None
            ]
            snap.problems += probe_mask_expressions(db, name, custom)
        snap.problems += self._unclassified(src, targets)
        snap.problems += self._unmentioned()
        snap.problems += self._orphans(src)
        return snap

    def _orphans(self, src: SourceCatalog) -> list[Problem]:
        """repl's slots and publications on the source that no configured target owns:
        left by a target removed from the config without `repl teardown`."""
        found = []
        mine = {subscription_name(self.config.name, t) for t in self.config.targets}
        for name, slot in src.slots.items():
            if name.startswith(f"{self.config.name}_") and name not in mine \
                    and not slot_of_another_config(self.config.name, name, src):
                growing = "" if slot.active else " (and growing: nothing consumes it)"
                found.append(Problem(
                    "warning", "source",
                    f"replication slot {name} belongs to no configured target and keeps "
                    f"{slot.retained_bytes or 0} bytes of WAL{growing}; run `repl "
                    f"teardown` with the config that created it, or drop it: "
                    f"{slots.drop_by_hand(name)}",
                    kind="orphan slot" if slot.active else "orphan slot retaining WAL"))
        for name, pub in src.publications.items():
            if not any(owns_publication(self.config.name, t, name) for t in self.config.targets) \
                    and not another_configs(self.config.name, pub):
                found.append(Problem("warning", "source",
                                     f"publication {name} belongs to no configured target"))
        return found

    def _unclassified(self, src: SourceCatalog, targets: dict[str, TargetCatalog]
                      ) -> list[Problem]:
        found = []
        for name in self.target_names:
            pubs = [p for n, p in src.publications.items()
                    if owns_publication(self.config.name, name, n)]
            for rel, table in self.config.targets[name].tables.items():
                if rel not in src.tables:
                    continue
                entry = next((e for p in pubs if (e := p.table(rel)) is not None), None)
                source = src.tables[rel]
                found += unclassified_columns(name, rel, table, source,
                                              targets[name].identity_of(source.oid),
                                              entry.columns if entry else None)
        return found

    def _unmentioned(self) -> list[Problem]:
        """Production tables that no target of the config mentions (CREATE TABLE on
        production since the config was written): `check --strict` fails on them."""
        assert self.source is not None
        mentioned = {rel for t in self.config.targets.values() for rel in t.tables}
        mentioned |= set(self.config.source.exclude)
        return [Problem("warning", "source", f"table {rel} is in no target of the config; "
                                             "add it to a target, or to source.exclude to "
                                             "keep it in production", kind="unmentioned")
                for r in self.source.query("catalog/all_tables")
                if (rel := QualifiedName(r["schema"], r["name"])) not in mentioned]

    def _selected_config(self) -> Config:
        if len(self.target_names) == len(self.config.targets):
            return self.config
        return self.config.model_copy(update={
            "targets": {n: self.config.targets[n] for n in self.target_names}})

    def states(self, snap: Snapshot, asked: Asked = AS_CONFIGURED
               ) -> tuple[Desired, dict[str, TargetState]]:
        """Desired and actual state of every selected target. Only call on a snapshot
        without errors (desired assumes the config's tables and columns exist)."""
        want = desired(self.config, snap.source, snap.targets, snap.filters, self.target_names,
                       asked.accept_new_columns, asked.drop_columns)
        return want, actual(self.config, snap.source, snap.targets, self.target_names)

    def plans(self, snap: Snapshot, asked: Asked = AS_CONFIGURED
              ) -> tuple[dict[str, Plan], list[str]]:
        """Per target, the steps converging it; and the notes on the config. Only call on
        a snapshot without errors."""
        want, have = self.states(snap, asked)
        return {
            n: plan_target(want.states[n], have[n], snap.targets[n].schemas, asked.resync,
                           asked.copy)
            for n in self.target_names
        }, want.notes

    def plan(self, snap: Snapshot, asked: Asked = AS_CONFIGURED) -> Plan:
        per_target, notes = self.plans(snap, asked)
        return merge(list(per_target.values()), notes)
