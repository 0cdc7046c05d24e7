"""The commands that converge the databases to the config, and check it first: check,
plan, setup, resync, skip and teardown.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from .. import render, workflow
from ..apply import apply
from ..errors import UsageError
from ..progress import CopyBars
from ..session import Asked, Session, configured_table
from ..skip import skip as run_skip
from ..snapshot_copy import CopyOptions, parse_size
from ..teardown import teardown_plan
from . import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    STRICT_KINDS,
    AcceptOption,
    ConfigOption,
    DropColumnsOption,
    JobsOption,
    JsonOption,
    SplitOption,
    TableSyncOption,
    Targets,
    TimeoutOption,
    WaitOption,
    _config,
    _run,
    _show,
    app,
    err,
    out,
)


@app.command()
def check(
    ctx: typer.Context,
    config: ConfigOption = None,
    strict: Annotated[bool, typer.Option("--strict",
                                         help="Production columns and tables no config "
                                              "classifies are problems too.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Validate the config against the live catalogs. Changes nothing."""

    def body() -> int:
        cfg = _config(ctx, config)
        with Session(cfg) as session:
            snap = session.snapshot()
        found = snap.problems
        if strict:
            found = [p.as_error() if p.kind in STRICT_KINDS else p for p in found]
        failing = [p for p in found if p.severity == "error"]
        # A config the live catalogs refute makes setup exit 2 with nothing changed:
        # check says the same. Only what --strict adds counts as problems found (1).
        refuted = any(p.severity == "error" and p.kind not in STRICT_KINDS
                      for p in snap.problems)
        _show(as_json, lambda: render.check_to_dict(snap, found),
              lambda: render.check(out, cfg, snap, found))
        return EXIT_USAGE if refuted else EXIT_PROBLEMS if failing else EXIT_OK

    _run(body)


@app.command()
def plan(ctx: typer.Context, targets: Targets = None, config: ConfigOption = None,
         as_json: JsonOption = False, accept_new_columns: AcceptOption = False,
         drop_columns: DropColumnsOption = False) -> None:
    """Print the SQL `setup` would run, per database in execution order. Changes nothing."""

    def body() -> int:
        with Session(_config(ctx, config), targets) as session:
            p = session.plan(workflow.validated(session),
                             Asked(accept_new_columns=accept_new_columns,
                                   drop_columns=drop_columns))
        _show(as_json, lambda: render.plan_to_dict(p), lambda: render.plan(out, p))
        return EXIT_OK

    _run(body)


@app.command()
def setup(
    ctx: typer.Context,
    targets: Targets = None,
    config: ConfigOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    accept_new_columns: AcceptOption = False,
    drop_columns: DropColumnsOption = False,
    jobs: JobsOption = None,
    split_larger_than: SplitOption = "256MB",
    table_sync: TableSyncOption = False,
) -> None:
    """Converge every database to the config. Idempotent."""

    def body() -> int:
        try:
            split = parse_size(split_larger_than)
        except ValueError as exc:
            raise UsageError(f"--split-larger-than: {exc}") from None
        copy = CopyOptions(table_sync=table_sync, jobs=jobs, split_bytes=split)
        with Session(_config(ctx, config), targets) as session:
            _setup(session, Asked(accept_new_columns=accept_new_columns,
                                  drop_columns=drop_columns, copy=copy), wait, timeout)
        return EXIT_OK

    _run(body)


def _setup(session: Session, asked: Asked, wait: bool, timeout: float | None) -> None:
    """setup and resync: plan, apply, plan again (must be empty), optionally wait."""
    snap = workflow.validated(session)
    report = workflow.ConsoleReport(out)
    with CopyBars(out) as bars:
        session.copy_report = bars
        workflow.setup(session, report, asked, snap)
    if wait:
        workflow.wait(session, snap, out, timeout, report)
        out.print("Every table is ready.")


@app.command()
def resync(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="The target whose tables to copy again.")],
    tables: Annotated[list[str], typer.Argument(help="schema.table as configured.")],
    config: ConfigOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
) -> None:
    """Copy those tables of TARGET again (and converge anything else that drifted there)."""

    def body() -> int:
        cfg = _config(ctx, config)
        with Session(cfg, [target]) as session:
            wanted = frozenset(configured_table(cfg, target, t) for t in tables)
            _setup(session, Asked(resync=wanted), wait, timeout)
        return EXIT_OK

    _run(body)


@app.command()
def skip(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="The target whose subscription is stuck.")],
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Skip the source transaction TARGET's subscription fails to apply (a conflict).

    Its changes are then missing on TARGET: `repl resync` the tables it names."""

    def body() -> int:
        cfg = _config(ctx, config)
        with Session(cfg, [target]) as session:
            done = run_skip(session, target)
        _show(as_json, lambda: asdict(done), lambda: render.skipped(out, done, target))
        return EXIT_OK

    _run(body)


@app.command()
def teardown(
    ctx: typer.Context,
    targets: Targets = None,
    config: ConfigOption = None,
    drop_tables: Annotated[bool, typer.Option("--drop-tables",
                                              help="Also drop the replicated tables.")] = False,
) -> None:
    """Remove subscriptions (and their slots), publications, triggers, functions and
    repl's schema. Target tables and their data stay unless --drop-tables."""

    def body() -> int:
        with Session(_config(ctx, config), targets, source_optional=True) as session:
            p, by_hand = teardown_plan(session, drop_tables)
            for note in p.notes:
                out.print(f"note: {note}", markup=False)
            if p.empty and not by_hand:
                out.print("Nothing to remove.")
                return EXIT_OK

            def show(number: int, step) -> None:
                out.print(f"[{number}/{len(p.steps)}] {step.database}: {step.summary}")

            apply(session, p, show, record=False)
            out.print(f"Done: {len(p.steps)} step(s) applied.")
            if by_hand:
                err.print(f"error: {session.source_error}")
                err.print("The source keeps WAL for these slots until they are dropped. Once "
                          "it can be reached, run there:")
                for line in by_hand:
                    err.print(f"  {line}")
                return EXIT_PROBLEMS
        return EXIT_OK

    _run(body)
