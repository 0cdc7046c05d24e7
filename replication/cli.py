"""The `repl` command line. Commands are thin: load the config, call the library, render,
exit. Exit codes are decided here only: 0 success, 1 problems found, 2 usage or config.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any

import psycopg
import typer

from . import metrics as prometheus
from . import render, workflow
from .apply import apply
from .config import Config
from .config_file import load_config, resolve_config_path
from .demo import run_demo
from .errors import ConfigError, ReplError, UsageError, ValidationFailed
from .names import QualifiedName
from .preview import preview as run_preview
from .redact import redact
from .session import Session, configured_table
from .skip import skip as run_skip
from .status import StatusReport, fresh_report
from .teardown import teardown_plan
from .verify import verify as run_verify
from .watching import watch_status

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Keep filtered, masked staging copies of a production PostgreSQL database in sync.",
    context_settings={"help_option_names": ["-h", "--help"]},
)

ConfigOption = Annotated[
    str | None,
    typer.Option("--config", "-c", help="Path of repl.yaml (default: $REPL_CONFIG, ./repl.yaml)",
                 show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
WaitOption = Annotated[bool, typer.Option(
    "--wait", help="Block until every table's copy is done, with a progress bar per table.")]
TimeoutOption = Annotated[float | None, typer.Option(
    help="With --wait: give up after this many seconds.", show_default=False)]
Targets = Annotated[list[str] | None, typer.Argument(help="Targets (default: all).",
                                                      show_default=False)]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
METRICS_WATCH_BUDGET_S = 4.0
out = render.console()
err = render.console(stderr=True)


@app.callback()
def _global(ctx: typer.Context, config: ConfigOption = None) -> None:
    ctx.obj = {"config": config}


def _config(ctx: typer.Context, option: str | None) -> Config:
    chosen = option or (ctx.obj or {}).get("config")
    config = load_config(resolve_config_path(chosen, os.environ), os.environ)
    redact.add(*config.secrets())
    return config


def _show(as_json: bool, data: Callable[[], Any], human: Callable[[], None]) -> None:
    """One report, two forms: JSON for machines, or the human rendering."""
    if as_json:
        render.emit_json(out, data())
    else:
        human()


def _run(body: Callable[[], int]) -> None:
    """Run a command body; map repl's errors to messages and exit codes."""
    try:
        code = body()
    except ConfigError as exc:
        redact.add(*exc.secrets)
        for line in exc.problems:
            err.print(f"config error: {redact(line)}", markup=False)
        code = EXIT_USAGE
    except ValidationFailed as exc:
        render.problems(err, exc.problems)
        err.print(f"{len(exc.problems)} problem(s); nothing was changed.", markup=False)
        code = EXIT_USAGE
    except UsageError as exc:
        err.print(f"error: {redact(str(exc))}", markup=False)
        code = EXIT_USAGE
    except ReplError as exc:
        err.print(f"error: {redact(str(exc))}", markup=False)
        code = EXIT_PROBLEMS
    except psycopg.Error as exc:  # a connection lost mid-command, a server error
        err.print(f"error: PostgreSQL: {redact(str(exc)).strip()}", markup=False)
        code = EXIT_PROBLEMS
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        code = 130
    raise typer.Exit(code)


@app.command()
def check(
    ctx: typer.Context,
    config: ConfigOption = None,
    strict: Annotated[bool, typer.Option("--strict",
                                         help="Unclassified columns are problems too.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Validate the config against the live catalogs. Changes nothing."""

    def body() -> int:
        cfg = _config(ctx, config)
        with Session(cfg) as session:
            snap = session.snapshot()
        found = snap.problems
        if strict:
            found = [p if p.kind != "unclassified" else p.as_error() for p in found]
        failing = [p for p in found if p.severity == "error"]
        if as_json:
            render.emit_json(out, {
                "ok": not failing,
                "source": {"version": snap.source.info.version,
                           "wal_level": snap.source.info.wal_level},
                "targets": {n: {"version": c.info.version} for n, c in snap.targets.items()},
                "problems": [{"severity": p.severity, "where": p.where, "message": p.message,
                              "kind": p.kind} for p in found],
            })
        else:
            info = snap.source.info
            out.print(f"source: PostgreSQL {info.version}, wal_level={info.wal_level}, "
                      f"{info.max_replication_slots - info.slots_used} free slot(s), "
                      f"{info.max_wal_senders - info.senders_used} free WAL sender(s)")
            for name, cat in snap.targets.items():
                out.print(f"target {name}: PostgreSQL {cat.info.version}, "
                          f"{len(cfg.targets[name].tables)} table(s)")
            render.problems(out, found)
            out.print("OK: the config is valid against the live databases." if not failing
                      else f"{len(failing)} problem(s) found.")
        return EXIT_PROBLEMS if failing else EXIT_OK

    _run(body)


@app.command()
def plan(ctx: typer.Context, targets: Targets = None, config: ConfigOption = None,
         as_json: JsonOption = False) -> None:
    """Print the SQL `setup` would run, per database in execution order. Changes nothing."""

    def body() -> int:
        with Session(_config(ctx, config), targets) as session:
            p = session.plan(workflow.validated(session))
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
) -> None:
    """Converge every database to the config. Idempotent."""

    def body() -> int:
        with Session(_config(ctx, config), targets) as session:
            _setup(session, frozenset(), wait, timeout)
        return EXIT_OK

    _run(body)


def _setup(session: Session, resync: frozenset[QualifiedName], wait: bool,
           timeout: float | None) -> None:
    """setup and resync: plan, apply, plan again (must be empty), optionally wait."""
    snap = workflow.validated(session)
    report = workflow.ConsoleReport(out)
    workflow.setup(session, report, resync, snap)
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
            _setup(session, wanted, wait, timeout)
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

        def human() -> None:
            out.print(f"skipped transaction {done.xid} (finish LSN {done.finish_lsn}) on "
                      f"subscription {done.subscription}: {done.changes} change(s) to "
                      f"{', '.join(done.tables) or 'no table'}", markup=False)
            for table in done.tables:
                out.print(f"those changes are missing on {target}: repl resync {target} "
                          f"{table}", markup=False)

        _show(as_json, lambda: asdict(done), human)
        return EXIT_OK

    _run(body)


@app.command()
def status(
    ctx: typer.Context,
    targets: Targets = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh every few seconds.")] = False,
    interval: Annotated[float, typer.Option(help="With --watch: seconds between refreshes.")
                        ] = 2.0,
) -> None:
    """Health of every target. Exit 1 if anything is unhealthy."""

    def body() -> int:
        cfg = _config(ctx, config)

        def report() -> StatusReport:
            return fresh_report(cfg, targets)

        if not watch:
            once = report()
            _show(as_json, once.to_dict, lambda: render.status(out, once))
            return EXIT_OK if once.healthy else EXIT_PROBLEMS
        watch_status(out, report, interval, as_json)
        return EXIT_OK

    _run(body)


@app.command()
def metrics(
    ctx: typer.Context,
    targets: Targets = None,
    config: ConfigOption = None,
    port: Annotated[int | None, typer.Option(
        help="Serve the metrics on this port (GET /metrics) instead of printing them once.",
        show_default=False)] = None,
    host: Annotated[str, typer.Option(help="With --port: the address to listen on.")
                    ] = "127.0.0.1",
) -> None:
    """status's figures in Prometheus text format: printed once, or served on --port."""

    def body() -> int:
        cfg = _config(ctx, config)

        def report() -> StatusReport:  # within Prometheus' default 10 s scrape timeout
            return fresh_report(cfg, targets, watch_budget=METRICS_WATCH_BUDGET_S)

        if port is None:
            out.print(redact(prometheus.scrape(report)), end="", markup=False,
                      highlight=False, soft_wrap=True)
            return EXIT_OK
        err.print(f"serving metrics on http://{host}:{port}/metrics (Ctrl-C stops)",
                  markup=False)
        prometheus.serve(report, host, port)
        return EXIT_OK

    _run(body)


@app.command()
def verify(ctx: typer.Context, targets: Targets = None, config: ConfigOption = None,
           as_json: JsonOption = False) -> None:
    """Compare source and targets: row counts, checksums of unmasked columns, and no raw
    value in masked columns. Exit 1 on any difference."""

    def body() -> int:
        with Session(_config(ctx, config), targets) as session:
            report = run_verify(session)
        _show(as_json, report.to_dict, lambda: render.verify(out, report))
        return EXIT_OK if report.ok else EXIT_PROBLEMS

    _run(body)


@app.command()
def preview(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="The target whose view to show.")],
    table: Annotated[str, typer.Argument(help="schema.table as configured.")],
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Rows to show.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """The rows as TARGET would store them: filtered, shaped and masked. Writes nothing."""

    def body() -> int:
        with Session(_config(ctx, config), [target]) as session:
            result = run_preview(session, target, table, limit)
        _show(as_json, lambda: asdict(result), lambda: render.preview(out, result))
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


@app.command()
def demo(
    detach: Annotated[bool, typer.Option("--detach", help="Leave the server running in the "
                                                          "background and return.")] = False,
    stop: Annotated[bool, typer.Option("--stop", help="Stop a demo server left running by "
                                                      "--detach.")] = False,
) -> None:
    """Start a local PostgreSQL with sample data, replicate it into two staging databases
    (one filtered, one masked) and show status. Runs until Ctrl-C."""
    _run(lambda: run_demo(detach=detach, stop=stop, console=out))


def main(argv: list[str] | None = None) -> Any:
    return app(args=argv, prog_name="repl")


if __name__ == "__main__":
    sys.exit(main())
