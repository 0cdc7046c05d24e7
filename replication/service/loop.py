"""`repl run`: the reconciler as a long-running process. It takes its config's lock on the
source (or waits for it), then every interval runs a pass: the setup workflow
(`workflow.setup`, the config the only authority, nothing asked beyond it), each step
behind the lock's fence. Between passes it takes the pulse of the databases and starts
a pass at once when something broke. It logs JSON events, serves `/metrics` and
`/healthz`, and never exits on a fault: a server out of reach or a failed pass is
retried with backoff (1, 2, 4... seconds, at most the interval).

SIGTERM and SIGINT: the step in hand finishes (a wait inside a step is cut short, which
the plan allows: an interrupted setup converges), then the process exits; a second
Ctrl-C abandons the step in hand (exit 130). SIGHUP: the config file is read again; one
that does not validate is logged and the old one kept.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from .. import __version__, metrics, workflow
from ..config import Config
from ..config_file import load_config
from ..errors import ConfigError, ConnectError, ReplError, ValidationFailed
from ..plan import Plan, Step
from ..problems import Problem
from ..redact import redact
from ..session import AS_CONFIGURED, Session
from ..status import collect, fresh_report
from .events import EventLog, Findings, LogReport
from .health import Health
from .lock import RunLock, application_name
from .pulse import Watcher, alarms, copies_finished

PULSE_S = 1.0  # between passes, the databases' pulse is taken this often
LOCK_POLL_S = 1.0  # a process waiting for the lock tries this often (at most the interval)
# A process that lost the lock lets one that waits take it first: the loss may say
# that this one is the unwell one (cut off, or too slow to keep its heartbeat).
LOST_WAIT_S = 2 * LOCK_POLL_S
BACKOFF_FIRST_S = 1.0


@dataclass(frozen=True)
class RunOptions:
    interval: float = 30.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None


class Stopping(ReplError):
    """SIGTERM or SIGINT arrived: no further step starts."""


class PassSession(Session):
    """A pass's session: a wait inside a step (a subscription catching up) stops early
    when the process stops or loses its lock."""

    def __init__(self, config: Config, interrupted: Callable[[], str | None]):
        super().__init__(config, targets_optional=True)
        self.interrupted = interrupted

    def stall_check(self, target: str) -> Callable[[], str | None]:
        stalled = super().stall_check(target)
        return lambda: self.interrupted() or stalled()


class FencedReport:
    """The workflow's Report, with the fence before every step."""

    def __init__(self, inner: LogReport, fence: Callable[[], None]):
        self.inner, self.fence = inner, fence

    def problems(self, found: list[Problem]) -> None:
        self.inner.problems(found)

    def planned(self, plan: Plan) -> None:
        self.inner.planned(plan)

    def step(self, number: int, total: int, step: Step) -> None:
        self.fence()
        self.inner.step(number, total, step)

    def applied(self, plan: Plan) -> None:
        self.inner.applied(plan)


class Service:
    def __init__(self, path: Path, config: Config, options: RunOptions, log: EventLog):
        self.path, self.config, self.options, self.log = path, config, options, log
        self.health = Health(options.interval)
        self.findings = Findings(log)  # what check and setup find
        self.troubles = Findings(log)  # what status finds that a pass cannot heal
        self.stop, self.reload, self.wake = threading.Event(), threading.Event(), threading.Event()
        self.session: Session | None = None  # the pass under way, for a cancel
        self.lock = RunLock(config.source.dsn, config.name, self._lost)
        self.failures = 0  # consecutive: the backoff
        self.mute_symptoms = False  # an early pass found nothing to do for them
        self.holder_seen: str | None = None

    # --- the process -------------------------------------------------------------------

    def run(self) -> None:
        """Until SIGTERM or SIGINT. Raises ReplError when it cannot start."""
        with self._serving(), self._signals():
            address = (f"; metrics on http://{self.options.metrics_host}:"
                       f"{self.options.metrics_port}/metrics"
                       if self.options.metrics_port is not None else "")
            self.log("info", "started", f"repl run {__version__} ({application_name()}): "
                     f"config {self.config.name} ({self.path}), interval "
                     f"{self.options.interval:g} s{address}")
            watcher = Watcher(self.config)
            try:
                self._loop(watcher)
            finally:
                self.health.role = "stopping"
                self.lock.release()
                watcher.close()
                self.log("info", "stopped", "repl run exits; nothing it started is left under way")

    @contextlib.contextmanager
    def _serving(self) -> Iterator[None]:
        if self.options.metrics_port is None:
            yield
            return
        host, port = self.options.metrics_host, self.options.metrics_port
        try:
            server = metrics.listen(
                lambda: fresh_report(self.config, watch_budget=metrics.WATCH_BUDGET_S),
                host, port, more=self.health.exposition, pages={"/healthz": self.health.healthz})
        except OSError as exc:
            raise ReplError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from None
        thread = threading.Thread(target=server.serve_forever, daemon=True, name="repl-http")
        thread.start()
        try:
            yield
        finally:
            server.shutdown()
            server.server_close()

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        def stop(signum: int, _frame) -> None:
            if self.stop.is_set():
                if signum == signal.SIGINT:
                    raise KeyboardInterrupt  # a second Ctrl-C: the step in hand is abandoned
                return
            self.log("info", "stopping", f"{signal.Signals(signum).name}: the step in hand "
                                         "finishes, then repl run exits")
            self.stop.set()
            self.wake.set()

        def hup(_signum: int, _frame) -> None:
            self.reload.set()
            self.wake.set()

        wanted = {signal.SIGTERM: stop, signal.SIGINT: stop, signal.SIGHUP: hup}
        saved = {s: signal.signal(s, handler) for s, handler in wanted.items()}
        try:
            yield
        finally:
            for s, handler in saved.items():
                signal.signal(s, handler)

    def _lost(self) -> None:
        """The lock is lost or unconfirmed (called from the lock's threads): cancel the
        statements under way, so that nothing this process started goes on."""
        self.wake.set()
        session = self.session
        for db in [session.source, *session.targets.values()] if session else []:
            if db is not None:
                with contextlib.suppress(Exception):
                    db.conn.cancel_safe(timeout=2)

    # --- the loop ----------------------------------------------------------------------

    def _loop(self, watcher: Watcher) -> None:
        alarm = False
        while not self.stop.is_set():
            if self.reload.is_set():
                watcher = self._reload(watcher)
            if not self.lock.held:
                if self.lock.was_taken:
                    self.log("error", "lock_lost", "this process lost the lock of config "
                             f"{self.config.name} on the source: it stopped acting, and tries "
                             f"to take the lock again in {LOST_WAIT_S:g} s")
                    self.health.unreachable("the lock was lost")
                    self.lock.release()
                    # A process waiting for the lock goes first: only a stop ends this
                    # wait early (the loss itself set `wake`, and a pass may have left it).
                    self._sleep(LOST_WAIT_S, only_stop=True)
                    continue
                if wait := self._take_lock():
                    self._sleep(wait)
                    continue
            ok, planned_nothing = self._pass(alarm)
            # A conflict makes the same symptoms again and again, and a pass cannot help:
            # after an early pass that found nothing to do, they wait for the interval.
            self.mute_symptoms = alarm and ok and planned_nothing
            alarm = self._between(watcher, self.options.interval if ok else self._backoff())

    def _backoff(self) -> float:
        return min(self.options.interval, BACKOFF_FIRST_S * 2 ** max(self.failures - 1, 0))

    def _sleep(self, seconds: float, *, only_stop: bool = False) -> None:
        """Wait `seconds`, cut short by a wake (a stop, a reload, a lost lock); with
        `only_stop`, by a stop alone (a reload waits for the loop's next turn)."""
        deadline = time.monotonic() + seconds
        while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
            if self.wake.wait(left):
                self.wake.clear()
                if not only_stop:
                    return

    def _take_lock(self) -> float:
        """0 when this process holds the lock now; else how long to wait before trying
        again."""
        try:
            holder = self.lock.try_take()
        except (ConnectError, psycopg.Error) as exc:
            self.failures += 1
            retry = self._backoff()
            message = redact(str(exc)).strip()
            self.log("error", "unreachable", f"{message}; retrying in {retry:g} s",
                     target="source")
            self.health.unreachable(message)
            return retry
        self.failures = 0
        if holder is None:
            self.log("info", "lock_acquired", f"this process holds the lock of config "
                     f"{self.config.name} on the source and acts")
            self.health.acting()
            self.holder_seen = None
            return 0
        seen = holder.describe()
        if seen != self.holder_seen:
            self.log("warning", "lock_waiting", f"another repl run holds the lock of config "
                     f"{self.config.name}: {seen}; this process waits and takes over when "
                     "it lets go")
            self.holder_seen = seen
        self.health.standby(seen)
        return min(self.options.interval, LOCK_POLL_S)

    def _fence(self) -> None:
        if self.stop.is_set():
            raise Stopping("repl run is stopping")
        self.lock.confirm()

    def _interrupted(self) -> str | None:
        if self.stop.is_set():
            return "repl run is stopping"
        return None if self.lock.fresh() else "repl run lost its lock"

    def _pass(self, alarm: bool) -> tuple[bool, bool]:
        """One pass: whether it succeeded, and whether it planned nothing."""
        started, report = time.monotonic(), LogReport(self.log, self.findings)
        error, planned_nothing = None, False
        try:
            with PassSession(self.config, self._interrupted) as session:
                self.session = session
                try:
                    for name, exc in session.unreachable.items():
                        self.log("error", "unreachable", f"{exc}; the other targets are "
                                                         "converged", target=name)
                    workflow.exclusive(session)  # no `repl setup` at the same time
                    snap = session.snapshot()
                    self.findings.update(snap.problems)
                    if snap.errors:
                        raise ValidationFailed(snap.errors)
                    plan = workflow.setup(session, FencedReport(report, self._fence),
                                          AS_CONFIGURED, snap)
                    planned_nothing = plan.empty
                    if (alarm and plan.empty) or self.troubles.known:
                        self._diagnose(session)
                    if session.unreachable:
                        error = f"target(s) {', '.join(session.unreachable)} cannot be reached"
                finally:
                    self.session = None
        except Stopping:
            return True, False
        except ValidationFailed as exc:
            error = (f"the config does not hold against the live catalogs "
                     f"({len(exc.problems)} problem(s), logged); nothing was changed")
        except ConnectError as exc:
            error = str(exc)
            self.log("error", "unreachable", error, target="source")
        except (ReplError, psycopg.Error) as exc:
            if self.stop.is_set():  # a wait cut short by the stop
                return True, False
            error = redact(str(exc)).strip()
            if not self.lock.held:
                error = f"the lock was lost during the pass: {error}"
        except Exception as exc:  # noqa: BLE001 - a service logs its own bug and goes on
            error = redact(f"internal error: {type(exc).__name__}: {exc}")
        ok = error is None
        self.failures = 0 if ok else self.failures + 1
        self.health.passed(ok, time.monotonic() - started, report.steps, report.copies,
                           alarm, error)
        if not ok:
            self.log("error", "pass_failed", f"{error}; retrying in {self._backoff():g} s")
        return ok, planned_nothing

    def _diagnose(self, session: Session) -> None:
        """What a pass cannot heal (an apply conflict, a subscription stuck on a change
        production made), as `status` tells it, with the way out: logged when it appears
        and when it is gone. Asked after an alarm that found nothing to do, and at every
        pass while something is known."""
        report = collect(session, watch_budget=metrics.WATCH_BUDGET_S)
        self.troubles.update([Problem("error", f"target {t.target}", message, kind="status")
                              for t in report.targets for message in t.problems])

    def _between(self, watcher: Watcher, seconds: float) -> bool:
        """Wait up to `seconds`, taking the pulse; True when an alarm cuts the wait short.
        A stop, a reload or a lost lock end it too."""
        deadline = time.monotonic() + seconds
        was = watcher.read()
        while not (self.stop.is_set() or self.reload.is_set()) and self.lock.held:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self.wake.wait(min(PULSE_S, remaining)):
                self.wake.clear()
                continue
            now = watcher.read()
            for target, table in copies_finished(was, now):
                self.log("info", "copied", "the table's copy finished; it streams",
                         target=target, table=table)
            found = [a for a in alarms(self.config, was, now)
                     if not (a.symptom and self.mute_symptoms)]
            was = now
            for a in found:
                self.log("warning", "alarm", f"{a.message}: a pass starts now", target=a.target)
            if found:
                return True
        return False

    def _reload(self, watcher: Watcher) -> Watcher:
        self.reload.clear()
        try:
            config = load_config(self.path, os.environ)
        except ConfigError as exc:
            redact.add(*exc.secrets)
            for line in exc.problems:
                self.log("error", "config_invalid", f"{line}; the config read before is kept")
            return watcher
        redact.add(*config.secrets())
        if (config.name, config.source.dsn) != (self.config.name, self.config.source.dsn):
            self.lock.release()
            self.lock = RunLock(config.source.dsn, config.name, self._lost)
            self.log("info", "lock_released", "the config names another source or name: "
                                              "its lock is taken instead")
        self.config = config
        watcher.close()
        self.log("info", "config_reloaded", f"read {self.path} again; a pass starts now")
        return Watcher(config)
