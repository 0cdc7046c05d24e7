"""What `repl run` tells about itself: the reconcile counters (appended to the status
families of `/metrics`) and `/healthz`.

`/healthz` answers 200 when this process does its job: holding the lock, its last pass
succeeded and ended less than `stale_after` ago; waiting for the lock (a standby), it
could see the holder at its last try. Anything else (starting, a pass failed, a server
out of reach, no pass for too long) is 503, with the reason in the JSON body.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from .. import metrics

FAMILIES: dict[str, tuple[str, str]] = {
    "repl_reconcile_lock_held": ("gauge", "1 if this process holds the config's lock and "
                                          "acts; 0 while it waits for another to let go."),
    "repl_reconcile_runs_total": ("counter", "Reconcile passes started."),
    "repl_reconcile_failures_total": ("counter", "Reconcile passes that failed (a server out "
                                                 "of reach, a failed step, a refuted config)."),
    "repl_reconcile_steps_applied_total": ("counter", "Steps applied by reconcile passes."),
    "repl_reconcile_copies_total": ("counter", "Table copies started by reconcile passes."),
    "repl_reconcile_alarms_total": ("counter", "Passes started early by a change seen "
                                               "between passes."),
    "repl_reconcile_last_success_timestamp_seconds": ("gauge", "When the last successful "
                                                               "pass ended (Unix time)."),
    "repl_reconcile_last_duration_seconds": ("gauge", "How long the last pass took."),
}
JSON = "application/json"


def stale_after(interval: float) -> float:
    """How long a successful pass keeps the process healthy: two intervals, and a minute
    for a pass that waits (a subscription catching up before a table's copy)."""
    return 2 * interval + 60


@dataclass
class Health:
    """Updated by the loop, read by the HTTP server's threads."""

    interval: float
    role: str = "starting"  # "acting", "standby", "stopping"
    runs: int = 0
    failures: int = 0
    steps: int = 0
    copies: int = 0
    alarm_runs: int = 0
    last_ok: bool | None = None  # the last pass (or, in standby, the last try) succeeded
    last_end: float | None = None  # monotonic time it ended
    last_success: float | None = None  # wall time the last successful pass ended
    last_duration: float | None = None
    last_error: str | None = None
    holder: str | None = None  # in standby: who holds the lock

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def acting(self) -> None:
        with self._lock:
            self.role, self.holder = "acting", None
            self.last_ok = None  # until its first pass

    def standby(self, holder: str) -> None:
        with self._lock:
            self.role, self.holder = "standby", holder
            self.last_ok, self.last_end, self.last_error = True, time.monotonic(), None

    def unreachable(self, error: str) -> None:
        with self._lock:
            self.last_ok, self.last_end, self.last_error = False, time.monotonic(), error

    def passed(self, ok: bool, seconds: float, steps: int, copies: int, alarm: bool,
               error: str | None = None) -> None:
        with self._lock:
            self.runs += 1
            self.failures += not ok
            self.steps += steps
            self.copies += copies
            self.alarm_runs += alarm
            self.last_ok, self.last_end, self.last_error = ok, time.monotonic(), error
            self.last_duration = seconds
            if ok:
                self.last_success = time.time()

    def healthz(self) -> tuple[int, str, str]:
        with self._lock:
            since = None if self.last_end is None else time.monotonic() - self.last_end
            if self.last_ok is None or since is None:
                healthy, why = False, f"{self.role}: no pass has ended yet"
            elif not self.last_ok:
                healthy, why = False, f"the last {self._what()} failed: {self.last_error}"
            elif since > stale_after(self.interval):
                healthy, why = False, f"the last {self._what()} ended {since:.0f} s ago"
            else:
                healthy, why = True, f"the last {self._what()} succeeded {since:.0f} s ago"
            body = {"healthy": healthy, "role": self.role, "reason": why,
                    "holder": self.holder, "last_success": self.last_success}
        return (200 if healthy else 503), JSON, json.dumps(body) + "\n"

    def _what(self) -> str:
        return "look at the lock" if self.role == "standby" else "pass"

    def exposition(self) -> str:
        with self._lock:
            samples: list[metrics.Sample] = [
                ("repl_reconcile_lock_held", {}, self.role == "acting"),
                ("repl_reconcile_runs_total", {}, self.runs),
                ("repl_reconcile_failures_total", {}, self.failures),
                ("repl_reconcile_steps_applied_total", {}, self.steps),
                ("repl_reconcile_copies_total", {}, self.copies),
                ("repl_reconcile_alarms_total", {}, self.alarm_runs),
            ]
            if self.last_success is not None:
                samples.append(("repl_reconcile_last_success_timestamp_seconds", {},
                                round(self.last_success, 3)))
            if self.last_duration is not None:
                samples.append(("repl_reconcile_last_duration_seconds", {},
                                round(self.last_duration, 3)))
        return metrics.render(FAMILIES, samples)
