"""Between passes, `repl run` takes a pulse of its databases: one small catalog query per
target (sql/run/pulse.sql) and one on the source (its slots), not a full snapshot. A
pulse worse than the one before starts a pass at once instead of at the next interval:
repl's objects changed (a masking trigger no longer ENABLE ALWAYS or gone, a
subscription disabled or dropped, a slot dropped or invalidated), or the subscription
shows symptoms (an error count grew, the apply worker stopped). It also tells when a
table's copy finished.

A connection made again (a server restarted) starts a new baseline: a worker that has
not started yet after a restart is not a symptom.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import psycopg

from ..config import Config
from ..db import Database, connect
from ..errors import ConnectError
from ..masking import TRIGGER_NAME
from ..names import subscription_name

CONNECT_TIMEOUT_S = 3  # a pulse is not worth a long wait: the next pass will tell


@dataclass(frozen=True)
class TargetPulse:
    subscribed: bool
    enabled: bool
    worker: bool
    apply_errors: int
    sync_errors: int
    not_ready: frozenset[str] = frozenset()
    triggers: dict[str, str] = field(default_factory=dict)  # table -> pg_trigger.tgenabled
    connection: int = 0  # which connection read it: a new one is a new baseline


@dataclass(frozen=True)
class Pulse:
    targets: dict[str, TargetPulse] = field(default_factory=dict)  # those that answered
    slots: dict[str, str] | None = None  # slot -> wal_status; None: no answer
    source_connection: int = 0


@dataclass(frozen=True)
class Alarm:
    target: str  # a target's name, or "source"
    message: str
    symptom: bool  # True: may repeat while nothing repl can do helps (a conflict loop)


def _target_alarms(name: str, sub: str, was: TargetPulse, now: TargetPulse) -> list[Alarm]:
    found = []
    if was.subscribed and not now.subscribed:
        found.append(Alarm(name, f"subscription {sub} was dropped", False))
    elif was.enabled and not now.enabled:
        found.append(Alarm(name, f"subscription {sub} was disabled", False))
    elif was.worker and not now.worker:
        found.append(Alarm(name, f"the apply worker of subscription {sub} stopped", True))
    for kind, before, after in (("apply", was.apply_errors, now.apply_errors),
                                ("sync", was.sync_errors, now.sync_errors)):
        if now.subscribed and after > before:
            found.append(Alarm(name, f"the {kind} error count of subscription {sub} rose "
                                     f"from {before} to {after}", True))
    for table, state in was.triggers.items():
        if state == "A" and now.triggers.get(table) != "A":
            how = ("was dropped" if table not in now.triggers else
                   f"is no longer ENABLE ALWAYS (tgenabled {now.triggers[table]})")
            found.append(Alarm(name, f"the masking trigger of {table} {how}", False))
    return found


def alarms(config: Config, was: Pulse, now: Pulse) -> list[Alarm]:
    """What got worse from one pulse to the next, read on the same connections."""
    found = []
    for name, pulse in now.targets.items():
        before = was.targets.get(name)
        if before is not None and before.connection == pulse.connection:
            found += _target_alarms(name, subscription_name(config.name, name), before, pulse)
    if was.slots is not None and now.slots is not None \
            and was.source_connection == now.source_connection:
        for slot, status in was.slots.items():
            if slot not in now.slots:
                found.append(Alarm("source", f"replication slot {slot} was dropped", False))
            elif now.slots[slot] == "lost" != status:
                found.append(Alarm("source", f"replication slot {slot} was invalidated "
                                             "(wal_status lost)", False))
    return found


def copies_finished(was: Pulse, now: Pulse) -> list[tuple[str, str]]:
    """(target, table) whose copy finished between the two pulses."""
    return [(name, table) for name, pulse in now.targets.items()
            if (before := was.targets.get(name)) is not None and pulse.subscribed
            for table in sorted(before.not_ready - pulse.not_ready)]


class Watcher:
    """Connections of its own to every database, made again when one breaks."""

    def __init__(self, config: Config):
        self.config = config
        self.dbs: dict[str, Database] = {}
        self.made: dict[str, int] = {}  # connections made per database: the generation
        self.slots = [subscription_name(config.name, t) for t in config.targets]

    def _db(self, name: str) -> Database:
        if name not in self.dbs:
            dsn = self.config.source.dsn if name == "source" else self.config.targets[name].dsn
            self.dbs[name] = connect(dsn, name if name == "source" else f"target {name}",
                                     connect_timeout=CONNECT_TIMEOUT_S)
            self.made[name] = self.made.get(name, 0) + 1
        return self.dbs[name]

    def _read(self, name: str, query: str, params: dict) -> list[dict] | None:
        try:
            return self._db(name).query(query, params)
        except (ConnectError, psycopg.Error):
            self._close(name)
            return None

    def read(self) -> Pulse:
        targets = {}
        for name in self.config.targets:
            rows = self._read(name, "run/pulse", {
                "subscription": subscription_name(self.config.name, name),
                "trigger": TRIGGER_NAME})
            if rows:
                r = rows[0]
                targets[name] = TargetPulse(
                    r["subscribed"], r["enabled"], r["worker"], r["apply_errors"],
                    r["sync_errors"], frozenset(r["not_ready"]), dict(r["triggers"]),
                    self.made[name])
        slots = self._read("source", "run/pulse_slots", {"slots": self.slots})
        return Pulse(targets, None if slots is None else {r["name"]: r["wal_status"]
                                                          for r in slots},
                     self.made.get("source", 0))

    def _close(self, name: str) -> None:
        db = self.dbs.pop(name, None)
        if db is not None:
            with contextlib.suppress(Exception):
                db.close()

    def close(self) -> None:
        for name in list(self.dbs):
            self._close(name)
