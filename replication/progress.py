"""`setup --wait`: block until every table's initial copy is done, with a bar per table.

Rows copied come from `pg_stat_progress_copy` on the target while a table-sync
worker runs its COPY; the total is the source's row estimate (`reltuples`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .errors import ReplError
from .names import QualifiedName, subscription_name
from .pubsub import subscriptions
from .session import Session
from .snapshot_copy import Progress as CopyProgress

POLL_S = 0.5
# A wait stops when no table's state or row count moved for this long (a copy of one big
# table moves its row count all along); `--timeout` bounds the whole wait too.
STALL_S = 300.0
STALL_CHECK_S = 3.0  # how often the subscriptions are asked whether they can still apply
# A table copy PostgreSQL retried this many times during the wait is not going to
# succeed by waiting longer (a missing privilege, a type that does not accept the data).
SYNC_FAILURES = 3


@dataclass
class TableSync:
    target: str
    relation: QualifiedName
    state: str | None
    rows_copied: int | None
    estimated_rows: int | None

    @property
    def ready(self) -> bool:
        return self.state == "r"


def bar_columns() -> tuple:
    """A bar per table: its name, rows done of estimated, its state, the time so far."""
    return (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[state]}"), TimeElapsedColumn())


def poll(session: Session, estimates: dict[QualifiedName, int | None],
         sync_errors: dict[str, int] | None = None) -> list[TableSync]:
    """Every configured table's sync state; fills `sync_errors` per target if given."""
    out = []
    for name in session.target_names:
        sub_name = subscription_name(session.config.name, name)
        sub = subscriptions(session.db(name), session.config.name, with_conninfo=False
                            ).get(sub_name)
        if sync_errors is not None:
            sync_errors[name] = sub.sync_error_count if sub else 0
        states = {s.relation: (s.state, s.rows_copied) for s in (sub.table_states if sub else ())}
        for relation in session.config.targets[name].tables:
            state, rows = states.get(relation, (None, None))
            out.append(TableSync(name, relation, state, rows, estimates.get(relation, 0)))
    return out


def wait_for_sync(session: Session, estimates: dict[QualifiedName, int | None], console: Console,
                  timeout: float | None = None) -> None:
    """Return when every table of the session's targets is ready; raise on timeout."""
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout
    progressed, asked = started, started
    last: list[tuple] = []
    stalls = {name: session.stall_check(name) for name in session.target_names}
    columns = bar_columns()
    announced: set[tuple[str, QualifiedName]] = set()
    errors: dict[str, int] = {}
    with Progress(*columns, console=console, disable=not console.is_terminal) as bars:
        tasks = {}
        poll(session, estimates, errors)
        before = dict(errors)
        while True:
            tables = poll(session, estimates, errors)
            for t in tables:
                key = (t.target, t.relation)
                total = max(t.estimated_rows or 0, t.rows_copied or 0, 1)
                done = total if t.state in ("f", "s", "r") else (t.rows_copied or 0)
                label = {None: "waiting", "i": "starting", "d": "copying", "f": "copied",
                         "s": "catching up", "r": "ready"}[t.state]
                if key not in tasks:
                    tasks[key] = bars.add_task(f"{t.target}: {t.relation}", total=total,
                                               state=label)
                bars.update(tasks[key], total=total, completed=done, state=label)
                if t.ready and key not in announced and not console.is_terminal:
                    console.print(f"{t.target}: {t.relation} ready")
                if t.ready:
                    announced.add(key)
            if all(t.ready for t in tables):
                return
            now = time.monotonic()
            seen = [(t.target, t.relation, t.state, t.rows_copied) for t in tables]
            if seen != last:
                last, progressed = seen, now
            if now - asked > STALL_CHECK_S:  # can the copies still finish?
                asked = now
                for name, stalled in stalls.items():
                    if reason := stalled():
                        raise ReplError(f"target {name}: the copies cannot finish: {reason}")
            if now - progressed > STALL_S:
                waiting = ", ".join(f"{t.target}: {t.relation} ({t.state or 'waiting'})"
                                    for t in tables if not t.ready)
                raise ReplError(
                    f"no table's copy made progress in {STALL_S:.0f} s: {waiting}; `repl "
                    "status` shows their state and error counts (a copy waits for a free "
                    "table-sync worker: max_sync_workers_per_subscription)")
            for name, count in errors.items():
                if count - before.get(name, 0) >= SYNC_FAILURES:
                    failing = ", ".join(str(t.relation) for t in tables
                                        if t.target == name and not t.ready)
                    raise ReplError(
                        f"target {name}: the copy of {failing} failed {count - before[name]} "
                        "times while waiting (pg_stat_subscription_stats.sync_error_count); "
                        "PostgreSQL keeps retrying; the target's server log says why")
            if deadline is not None and time.monotonic() > deadline:
                waiting = ", ".join(f"{t.target}: {t.relation}" for t in tables if not t.ready)
                raise ReplError(f"tables not ready after {timeout:.0f} s: {waiting}; "
                                "`repl status` shows their state and error counts")
            time.sleep(POLL_S)


class CopyBars:
    """An initial copy from a snapshot as `setup` shows it while it runs: a bar per table
    on a terminal (rows copied of estimated), else a line per table copied. Told from the
    copy's worker threads (rich's Progress and Console lock for themselves)."""

    def __init__(self, console: Console):
        self.console = console
        self.bars = Progress(*bar_columns(), console=console,
                             disable=not console.is_terminal)
        self.tasks: dict[tuple[str, QualifiedName], int] = {}

    def __enter__(self) -> CopyBars:
        self.bars.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bars.__exit__(*exc)

    def __call__(self, target: str, p: CopyProgress) -> None:
        key = (target, p.relation)
        total = max(p.estimated_rows or 0, p.rows_copied, 1)
        done = total if p.finished else p.rows_copied
        state = "copied" if p.finished else f"{p.chunks_done}/{p.chunks} chunks"
        if key not in self.tasks:
            self.tasks[key] = self.bars.add_task(f"{target}: {p.relation}", total=total,
                                                 state=state)
        self.bars.update(self.tasks[key], total=total, completed=done, state=state)
        if p.finished is not None and not self.console.is_terminal:
            self.console.print(f"{target}: {p.relation} copied, {p.rows_copied} rows in "
                               f"{p.finished - p.started:.1f} s ({p.chunks} chunk(s))")
