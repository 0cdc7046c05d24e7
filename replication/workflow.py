"""The setup workflow, one for every caller (`repl setup`, `repl resync`, `repl demo`, and
`repl run` at every interval): read every catalog and validate, plan, apply, plan again
(a converged setup leaves nothing to do), and optionally wait for the copies, then do
what waited for them (production's indexes are built once a table is copied).

What happens is told to a `Report`, so that each caller renders it its own way (lines on
a console, JSON log events) from the same events.
"""

from __future__ import annotations

from typing import Protocol

from rich.console import Console

from . import render
from .apply import converge
from .errors import ReplError, ValidationFailed
from .plan import Plan, Step
from .problems import Problem
from .progress import wait_for_sync
from .session import AS_CONFIGURED, Asked, Session, Snapshot


class Report(Protocol):
    def problems(self, found: list[Problem]) -> None: ...

    def planned(self, plan: Plan) -> None: ...

    def step(self, number: int, total: int, step: Step) -> None: ...

    def applied(self, plan: Plan) -> None: ...


class ConsoleReport:
    """What `repl setup` prints."""

    def __init__(self, console: Console):
        self.console = console

    def problems(self, found: list[Problem]) -> None:
        render.problems(self.console, found)

    def planned(self, plan: Plan) -> None:
        for note in plan.notes:
            self.console.print(f"note: {note}")
        if plan.empty:
            self.console.print("Nothing to do: the databases match the config.")

    def step(self, number: int, total: int, step: Step) -> None:
        self.console.print(f"[{number}/{total}] {step.database}: {step.summary}")

    def applied(self, plan: Plan) -> None:
        if not plan.empty:
            self.console.print(f"Done: {len(plan.steps)} step(s) applied, "
                               f"{len(plan.copies)} table copy(ies) started.")


def validated(session: Session) -> Snapshot:
    """Every catalog read and the config validated against it; ValidationFailed else.
    Only one setup converges a target at a time: its lock is taken first (see
    exclusive), so that what is read is not changing under another setup's hands."""
    exclusive(session)
    snap = session.snapshot()
    if snap.errors:
        raise ValidationFailed(snap.errors)
    return snap


def exclusive(session: Session) -> None:
    """Take, on every target of the session, the lock of the setup that converges it (a
    session-level advisory lock, held until the session ends); ReplError naming the
    holder when another setup, `repl run` or `repl demo` holds it. Two setups at once
    would plan from the same catalogs: the second would empty tables the first is
    copying into."""
    for name in session.target_names:
        db = session.db(name)
        if db.scalar(SETUP_LOCK, (SETUP_LOCK_CLASS,)):
            continue
        holder = db.query("catalog/setup_lock_holder", {"class": SETUP_LOCK_CLASS})
        who = "another session"
        if holder:
            h = holder[0]
            since = f", since {h['backend_start']:%Y-%m-%d %H:%M:%S %Z}" \
                if h["backend_start"] else ""
            who = f"backend pid {h['pid']} ({h['application_name'] or 'no name'}{since})"
        raise ReplError(f"target {name}: another repl setup is converging it: {who}; "
                        "run this one once it is done (its initial copy may take a while: "
                        "`repl status` shows it)")


SETUP_LOCK_CLASS = 0x72657073  # "reps"; the second key is 0: one setup per target database
# (Taken again by the session that holds it, it is granted again.)
SETUP_LOCK = "SELECT pg_catalog.pg_try_advisory_lock(%s::int4, 0)"


def setup(session: Session, report: Report, asked: Asked = AS_CONFIGURED,
          snap: Snapshot | None = None) -> Plan:
    """Converge the session's targets to the config and what the person `asked`; returns
    the plan applied. Raises ReplError when a second plan is not empty."""
    exclusive(session)
    snap = snap or validated(session)
    report.problems(snap.problems)
    plan = session.plan(snap, asked)
    report.planned(plan)
    if not plan.empty:
        _apply(session, report, plan, asked)
    return plan


def _apply(session: Session, report: Report, plan: Plan, asked: Asked = AS_CONFIGURED
           ) -> None:
    leftover = converge(session, plan,
                        lambda number, step: report.step(number, len(plan.steps), step), asked)
    # A copy that finished while setup ran makes its table's indexes due: not a plan
    # that failed to converge; `--wait` (or the next setup) builds them.
    if unfinished := [s for s in leftover.steps if not s.after_copy]:
        raise ReplError("setup did not converge; still to do: " + "; ".join(
            f"{s.database}: {s.summary}" for s in unfinished))
    report.applied(plan)


def wait(session: Session, snap: Snapshot, console: Console, timeout: float | None,
         report: Report) -> Plan:
    """Until every table of the session's targets finished its copy (progress bars);
    then plan and apply once more: what waited for the copies (production's indexes).
    Returns that plan."""
    estimates = {rel: t.estimated_rows for rel, t in snap.source.tables.items()}
    wait_for_sync(session, estimates, console, timeout)
    plan = session.plan(validated(session))
    if not plan.empty:
        report.planned(plan)
        _apply(session, report, plan)
    return plan
