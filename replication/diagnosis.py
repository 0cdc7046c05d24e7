"""Why a subscription does not apply: told from the catalogs, since the apply worker's
error text is only in the target's server log.

The error counters of pg_stat_subscription_stats only grow, and a dropped connection
counts too: a count says nothing about now, and neither does a worker that has just
restarted, which is what both a conflict loop and a healed fault look like at one
instant. So a suspect subscription is watched for one retry interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from . import slots
from .catalog import SourceCatalog, TargetCatalog
from .columns import column_changes
from .config import Config
from .model import Slot, Subscription
from .names import owns_publication, subscription_name
from .pubsub import subscriptions

if TYPE_CHECKING:
    from .session import Session

# A subscription that looks stuck on an apply error is watched for at most this long
# (PostgreSQL restarts a failed apply worker every wal_retrieve_retry_interval, 5 s by
# default, and a conflict fails it again at once).
WATCH_LIMIT_S = 12.0
WATCH_POLL_S = 0.25


def apply_failing(sub: Subscription, slot: Slot | None,
                  watch: Callable[[Subscription], str | None]) -> str | None:
    """Why the subscription is stuck on an apply error, or None.

    The error counters only grow, and a dropped connection counts too: a count says
    nothing about now, and neither does a worker that has just restarted, which is what
    both a conflict loop and a healed fault look like at one instant. So a suspect
    subscription (errors counted, its worker down or young, its slot behind) is watched
    for one retry interval: failing if the count grows while the slot stands still.
    """
    if not sub.apply_error_count:
        return None
    if not sub.enabled and sub.disable_on_error:
        return (f"PostgreSQL disabled it after an apply error (disable_on_error; "
                f"{sub.apply_error_count} apply error(s) counted in pg_stat_subscription_stats)")
    if not sub.enabled:
        return None  # disabled by someone: reported as such
    young = sub.worker_age_seconds is not None and sub.worker_age_seconds < WATCH_LIMIT_S
    behind = slot is not None and not slot.caught_up and (slot.lag_bytes or 0) > 0
    if (not sub.worker_pid or young) and behind:
        return watch(sub)
    return None


class SubscriptionWatch:
    """The watch of `apply_failing`, on the session's connections, within a time budget
    shared by every target of one report (a metrics scrape must answer in time). A watch
    the budget cut short says so in `inconclusive`."""

    def __init__(self, session: Session, target: str, slot_name: str, deadline: float):
        self.db, self.source = session.db(target), session.db("source")
        self.slot_name, self.deadline = slot_name, deadline
        self.inconclusive = False

    def errors(self, oid: int | None) -> int:
        return self.db.scalar("SELECT apply_error_count FROM "
                              "pg_catalog.pg_stat_subscription_stats WHERE subid = %s",
                              (oid,)) or 0

    def confirmed(self) -> str | None:
        return slots.confirmed_lsn(self.source, self.slot_name)

    def __call__(self, sub: Subscription) -> str | None:
        retry = self.db.scalar("SELECT setting::float8 / 1000 FROM pg_catalog.pg_settings "
                               "WHERE name = 'wal_retrieve_retry_interval'") or 5.0
        started, first, moves = time.monotonic(), self.errors(sub.oid), 0
        wanted_end = started + min(retry + 2.0, WATCH_LIMIT_S)
        end = min(wanted_end, self.deadline)
        last = self.confirmed()
        while time.monotonic() < end:
            time.sleep(WATCH_POLL_S)
            now = self.errors(sub.oid)
            if now > first:
                return (f"its apply error count in pg_stat_subscription_stats rose from "
                        f"{first} to {now} in {time.monotonic() - started:.0f} s while its "
                        "slot stood still")
            if (lsn := self.confirmed()) != last:
                last, moves = lsn, moves + 1
                if moves >= 2:  # applying and confirming: catching up, not stuck
                    return None
        self.inconclusive = end < wanted_end
        return None


def watch_subscription(session: Session, target: str, slot_name: str,
                       budget: float = WATCH_LIMIT_S) -> SubscriptionWatch:
    return SubscriptionWatch(session, target, slot_name, time.monotonic() + budget)


def way_out(name: str, sub_name: str) -> str:
    return (f"a change from the source cannot be applied on target {name}, most often a row "
            "written directly into a target table (duplicate key) or a target table changed "
            "by hand; the target's server log names the table and key. Ways out: remove the "
            "conflicting target rows and replication resumes by itself; or `repl skip "
            f"{name}` skips the failing source transaction (its changes are then missing on "
            f"{name}: `repl resync {name} TABLE` copies the table again)")


def schema_differences(config: Config, target: str, source: SourceCatalog,
                       catalog: TargetCatalog) -> list[str]:
    """Changes on production that stop (or will stop, at the next change to the table)
    the target's apply, in words, each with its way out. Read from the catalogs alone:
    what production publishes now (pg_publication_tables follows renames, since the
    publication stores OIDs and attnums) against what the target has (the subscriber
    matches by name), and the target's record of what it replicated, which tells a rename
    from an addition."""
    found = []
    owned = [p for n, p in source.publications.items()
             if owns_publication(config.name, target, n)]
    sub = catalog.subscriptions.get(subscription_name(config.name, target))
    for relation, table in config.targets[target].tables.items():
        src = source.tables.get(relation)
        if src is None:
            continue  # renamed or dropped: the config's validation names it
        entry = next((e for p in owned if (e := p.table(relation)) is not None), None)
        here = catalog.tables.get(relation)
        identity = catalog.identity_of(src.oid)
        if entry is None:
            # Out of its publication because production dropped a column with CASCADE
            # (taken out by anything else, a setup under way or by hand, it is drift).
            dropped = column_changes(identity, src).dropped
            if dropped and sub is not None and sub.state_of(relation) is not None:
                found.append(f"table {relation} is not in its publication (production "
                             f"dropped {', '.join(dropped)} with CASCADE, which took it "
                             "out): production's changes to it are not replicated; `repl "
                             "setup` puts it back and copies it again")
            continue
        if here is None:
            continue
        recorded = {c.attnum: c.name for c in identity.columns} if identity else {}
        by_name = {c.name: c for c in src.columns}
        for column in entry.columns:
            if here.column(column) is not None:
                continue
            old = recorded.get(by_name[column].attnum) if column in by_name else None
            way = ("`repl setup` renames it on the target without copying the table"
                   if table.columns == "all" else
                   f"write {column} for {old} in the config, then `repl setup` renames it on "
                   "the target without copying the table")
            what = (f"production renamed column {old} of {relation} to {column}"
                    if old is not None and here.column(old) is not None else
                    f"production publishes column {column} of {relation}, which the target "
                    "lacks")
            found.append(f"{what}: the subscription stops at the next change to that table, "
                         f"and every table of target {target} waits behind it; {way}")
    return found


class ApplyStall:
    """For a wait on a subscription (setup waiting until it applied what was sent, `setup
    --wait` for its copies): tells when what is waited for cannot happen, and why. The
    subscription is gone or disabled; or its apply error count grows while its slot does
    not move. The cause is named when it is a schema change on production."""

    def __init__(self, session: Session, target: str):
        self.session, self.target = session, target
        self.name = subscription_name(session.config.name, target)
        self.errors: int | None = None
        self.lsn: str | None = None

    def __call__(self) -> str | None:
        db, source = self.session.db(self.target), self.session.db("source")
        sub = subscriptions(db, self.session.config.name, with_conninfo=False).get(self.name)
        if sub is None:
            return f"subscription {self.name} is gone"
        if not sub.enabled:
            why = " after an apply error (disable_on_error)" if sub.disable_on_error \
                and sub.apply_error_count else ""
            return f"subscription {self.name} is disabled{why}: `repl setup` enables it"
        lsn = slots.confirmed_lsn(source, sub.slot_name or self.name)
        if self.errors is None or lsn != self.lsn:  # first look, or it applied something
            self.errors, self.lsn = sub.apply_error_count, lsn
            return None
        if sub.apply_error_count <= self.errors:
            return None
        snap = self.session.snapshot(reuse_filters=True)
        found = schema_differences(self.session.config, self.target, snap.source,
                                   snap.targets[self.target])
        found += [p.message for p in snap.errors if p.where.startswith(f"target {self.target}")]
        cause = "; ".join(found) if found else (
            "a change from production cannot be applied on the target (a conflict: `repl "
            "status` shows it and the ways out)")
        return (f"subscription {self.name} fails to apply: its apply error count rose from "
                f"{self.errors} to {sub.apply_error_count} while its slot stood still; {cause}")
