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

from . import slots
from .model import Slot, Subscription
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
