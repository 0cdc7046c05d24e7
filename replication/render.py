"""Human output: rich tables with colours on a terminal, aligned plain text otherwise.

Every function takes the same data the `--json` output is made of.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .config import Config
from .inventory import SAMPLE_ROWS
from .plan import Plan
from .preview import Preview
from .problems import Problem
from .redact import redact_data
from .session import Snapshot
from .status import StatusReport
from .verify import TableVerification, VerifyReport

if TYPE_CHECKING:
    from .config import Config
    from .init_config import Draft
    from .session import Snapshot
    from .skip import Skipped


def console(stderr: bool = False) -> Console:
    """Colours and the terminal's width on a TTY; plain, unwrapped text otherwise."""
    plain = Console(stderr=stderr)
    if plain.is_terminal:
        return Console(stderr=stderr, highlight=False, markup=False)
    return Console(stderr=stderr, highlight=False, markup=False, soft_wrap=True, width=240,
                   no_color=True)


def table(con: Console, *columns: str, title: str | None = None) -> Table:
    styled = con.is_terminal
    t = Table(*columns, title=title, box=box.SIMPLE_HEAD if styled else None,
              show_edge=False, pad_edge=False, title_justify="left",
              header_style="bold" if styled else "")
    return t


def emit_json(con: Console, data: Any) -> None:
    con.print_json(json.dumps(redact_data(data), default=str), highlight=False)


def problems(con: Console, found: list[Problem]) -> None:
    for p in found:
        style = "red" if p.severity == "error" else "yellow"
        con.print(f"[{style}]{p.severity}[/]: {escape(p.where)}: {escape(p.message)}",
                  markup=True)


def check_to_dict(snap: Snapshot, found: list[Problem]) -> dict[str, Any]:
    return {
        "ok": not any(p.severity == "error" for p in found),
        "source": {"version": snap.source.info.version,
                   "wal_level": snap.source.info.wal_level},
        "targets": {n: {"version": c.info.version} for n, c in snap.targets.items()},
        "problems": [{"severity": p.severity, "where": p.where, "message": p.message,
                      "kind": p.kind} for p in found],
        "pinned": {str(rel): columns for rel, columns in snap.source.pinned.items()},
    }


def check(con: Console, config: Config, snap: Snapshot, found: list[Problem]) -> None:
    info = snap.source.info
    con.print(f"source: PostgreSQL {info.version}, wal_level={info.wal_level}, "
              f"{info.max_replication_slots - info.slots_used} free slot(s), "
              f"{info.max_wal_senders - info.senders_used} free WAL sender(s)")
    for name, cat in snap.targets.items():
        con.print(f"target {name}: PostgreSQL {cat.info.version}, "
                  f"{len(config.targets[name].tables)} table(s)")
    if snap.source.pinned:
        con.print("pinned by repl (production cannot DROP COLUMN or ALTER COLUMN TYPE these "
                  "while they are replicated; docs/schema-changes.md has the routes):",
                  markup=False)
        for rel, columns in snap.source.pinned.items():
            con.print(f"  {rel}: {', '.join(columns)}", markup=False)
    problems(con, found)
    failing = [p for p in found if p.severity == "error"]
    con.print("OK: the config is valid against the live databases." if not failing
              else f"{len(failing)} problem(s) found.")


def init(con: Console, draft: Draft, path: str) -> None:
    """What `repl init` wrote, in counts and names: never a sampled value."""
    gone: dict[tuple[Any, str], list[str]] = {}
    for target in draft.targets:
        for relation, why in target.left_out:
            gone.setdefault((relation, why), []).append(target.spec.name)
    tables = {t.relation for target in draft.targets for t in target.tables} | {
        relation for relation, _ in gone}
    by_values = sum(1 for f in draft.findings.values() if f.by_values)
    read = f"{draft.sampled} sampled (at most {SAMPLE_ROWS} rows each)"
    skipped = ", ".join(f"{n} not: {why}" for why, n in sorted(draft.not_sampled.items()))
    con.print(f"Read {len(tables)} table(s) of {draft.source}: {read}"
              + (f", {skipped}" if skipped else "") + ".", markup=False)
    con.print(f"{len(draft.findings)} column(s) look personal, {by_values} of them by their "
              "values alone.", markup=False)
    for target in draft.targets:
        what = "masked" if target.spec.kind == "masked" else "excluded"
        only = sum(1 for t in target.tables if t.insert_only)
        con.print(f"target {target.spec.name} ({target.spec.kind}): {len(target.tables)} "
                  f"table(s), personal columns {what}"
                  + (f", {only} table(s) insert-only (no usable replica identity)"
                     if only else ""), markup=False)
    for (relation, why), names in gone.items():
        con.print(f"left out of {', '.join(names)}: {relation}: {why}", markup=False)
    names = ", ".join(t.spec.variable for t in draft.targets)
    con.print(f"Wrote {path}. Read it; then, with PRODUCTION_DSN (the DSN given to --source) "
              f"and {names} set: repl check --strict", markup=False)


def skipped(con: Console, done: Skipped, target: str) -> None:
    con.print(f"skipped transaction {done.xid} (finish LSN {done.finish_lsn}) on "
              f"subscription {done.subscription}: {done.changes} change(s) to "
              f"{', '.join(done.tables) or 'no table'}", markup=False)
    for table in done.tables:
        con.print(f"those changes are missing on {target}: repl resync {target} {table}",
                  markup=False)


def plan(con: Console, p: Plan) -> None:
    for note in p.notes:  # pending columns, also when there is nothing to do
        con.print(f"note: {note}")
    if p.empty:
        con.print("Nothing to do: the databases match the config.")
        return
    current = None
    for number, step in enumerate(p.steps, 1):
        if step.database != current:
            current = step.database
            con.print()
            where = "the source" if current == "source" else f"target {current}"
            con.print(f"[bold]-- on {escape(where)}[/]", markup=True)
        flag = "" if step.transactional else "  (outside a transaction)"
        con.print(f"-- {number}. {step.summary}{flag}")
        if step.statements:
            con.print(step.text(), markup=False)
        for hazard in step.hazards:
            con.print(f"   [yellow]! {escape(hazard)}[/]", markup=True)
    if p.copies:
        con.print()
        t = table(con, "target", "table", "est. rows", "why", title="Tables to copy")
        for c in p.copies:
            t.add_row(c.target, str(c.relation), _count(c.estimated_rows), c.reason)
        con.print(t)


def plan_to_dict(p: Plan) -> dict[str, Any]:
    return {
        "notes": p.notes,
        "steps": [
            {"database": s.database, "summary": s.summary, "sql": s.text() if s.statements
             else None, "transactional": s.transactional, "hazards": list(s.hazards),
             "action": s.kind}
            for s in p.steps
        ],
        "copies": [{"target": c.target, "table": str(c.relation),
                    "estimated_rows": c.estimated_rows, "reason": c.reason} for c in p.copies],
    }


def preview(con: Console, result: Preview) -> None:
    for note in result.notes:
        con.print(f"note: {note}", markup=False)
    t = table(con, *result.columns, title=f"{result.table} as target {result.target} stores it")
    for row in result.rows:
        t.add_row(*("NULL" if v is None else str(v) for v in row))
    con.print(t)
    con.print(f"({len(result.rows)} row(s))", markup=False)


def _count(n: int | None) -> str:
    return "?" if n is None else str(n)


def _bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _lag(t) -> str:
    if t.lag_seconds is None:
        return "?"
    return (">=" if t.lag_basis in ("inactive", "at least") else "") + f"{t.lag_seconds:.1f}"


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def status(con: Console, report: StatusReport) -> None:
    con.print(status_view(con, report))


def status_view(con: Console, report: StatusReport) -> Group:
    """The whole report as one renderable, so that `--watch` can redraw it in place."""
    parts: list[Any] = [Text(f"source {report.source} (PostgreSQL {report.source_version})")]
    parts += [Text(f"  {line}", style="red") for line in report.problems]
    parts += [Text(f"  {line}", style="yellow") for line in report.warnings]
    summary = table(con, "target", "subscription", "worker", "slot", "lag", "lag s",
                    "retained WAL", "errors", "health")
    for t in report.targets:
        summary.add_row(
            t.target,
            ("enabled" if t.enabled else "DISABLED") if t.subscription_exists else
            ("?" if not t.reachable else "MISSING"),
            "?" if not t.reachable else "running" if t.worker_running else "stopped",
            (t.wal_status or "?") if t.slot_exists else "MISSING",
            _bytes(t.lag_bytes),
            _lag(t),
            _bytes(t.retained_bytes),
            f"apply {t.apply_errors}, sync {t.sync_errors}" if t.reachable else "?",
            Text("ok", style="green") if t.healthy else
            Text("UNREACHABLE" if not t.reachable else "UNHEALTHY", style="red"),
        )
    parts += [Text(""), summary]
    for t in report.targets:
        parts.append(Text(""))
        if t.reachable:
            copying = any(ts.rows_copied is not None for ts in t.tables)
            columns = ["table", "state", "rows copied", "est. rows"]
            columns += ["rows/s", "ETA"] if copying else []
            tables = table(con, *columns,
                           title=f"{t.target} ({t.database}, PostgreSQL {t.server_version})")
            for ts in t.tables:
                state = ts.state if not ts.indexes_waiting else \
                    f"{ts.state} ({ts.indexes_waiting} index(es) wait for the copy)"
                row = [ts.table, state,
                       "-" if ts.rows_copied is None else str(ts.rows_copied),
                       _count(ts.estimated_rows)]
                if copying:
                    row += ["-" if ts.rows_per_second is None else f"{ts.rows_per_second:.0f}",
                            _eta(ts.eta_seconds)]
                tables.add_row(*row)
            parts.append(tables)
        else:
            parts.append(Text(f"{t.target} ({t.database})"))
        parts += [Text.assemble(("  problem: ", "red"), line) for line in t.problems]
        parts += [Text.assemble(("  warning: ", "yellow"), line) for line in t.warnings]
        parts += [Text.assemble(("  drift: ", "yellow"), line) for line in t.drift]
    parts.append(Text(""))
    unhealthy = [t.target for t in report.targets if not t.healthy]
    if report.healthy:
        parts.append(Text("healthy: every target is streaming and matches the config",
                          style="green"))
    else:
        where = ", ".join(unhealthy) if unhealthy else "source"
        parts.append(Text(f"UNHEALTHY: {where}", style="red"))
    return Group(*parts)


def verify(con: Console, report: VerifyReport) -> None:
    t = table(con, "target", "table", "state", "source rows", "target rows",
                     "checksum", "raw values", "result", title="Data verification")
    for target in report.targets:
        for tv in target.tables:
            t.add_row(target.target, tv.table, tv.state, _count(tv.source_rows),
                      _count(tv.target_rows), tv.checksum or "-", _raw(tv),
                      Text("ok", style="green") if tv.ok else Text("FAILED", style="red"))
    con.print(t)
    for target in report.targets:
        for note in target.notes:
            con.print(f"note: target {target.target}: {note}", markup=False)
        for tv in target.tables:
            for note in tv.notes:
                con.print(f"note: target {target.target}, table {tv.table}: {note}",
                          markup=False)
    for line in report.problems:
        con.print(f"[red]problem:[/] {escape(line)}", markup=True)
    con.print("OK: every table matches its source." if report.ok
              else f"{len(report.problems)} problem(s) found.", markup=False)


def _raw(tv: TableVerification) -> str:
    if tv.raw_check != "done":
        return "-" if tv.raw_check == "no masked columns" else tv.raw_check
    return ", ".join(f"{m.column}: {_count(m.raw_rows)}" for m in tv.masked)
