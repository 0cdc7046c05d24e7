"""The `repl` command line. Commands are thin: load the config, call the library, render,
exit. Exit codes are decided here only: 0 success, 1 problems found, 2 usage or config.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer

from . import metrics as prometheus
from . import render, workflow
from .apply import apply
from .config import Config, dsn_passwords
from .config_file import load_config, resolve_config_path
from .demo import run_demo
from .errors import ConfigError, ReplError, UsageError, ValidationFailed
from .init_config import init as run_init
from .preview import preview as run_preview
from .redact import redact
from .service import RunOptions, Service
from .service.events import EventLog
from .session import Asked, Session, configured_table
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
AcceptOption = Annotated[bool, typer.Option(
    "--accept-new-columns",
    help="Replicate the columns production added to `columns: all` tables since their "
         "first setup (pending columns); those tables are copied again.")]
DropColumnsOption = Annotated[bool, typer.Option(
    "--drop-columns", help="Drop target columns no longer replicated, instead of keeping them.")]
Targets = Annotated[list[str] | None, typer.Argument(help="Targets (default: all).",
                                                      show_default=False)]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
# What `check --strict` counts as problems: production columns and tables no config
# classifies (unclassified, pending under `columns: all`, tables no target mentions).
STRICT_KINDS = ("unclassified", "pending", "unmentioned")
out = render.console()
err = render.console(stderr=True)


@app.callback()
def _global(ctx: typer.Context, config: ConfigOption = None) -> None:
    ctx.obj = {"config": config}


def _config_path(ctx: typer.Context, option: str | None) -> Path:
    return resolve_config_path(option or (ctx.obj or {}).get("config"), os.environ)


def _config(ctx: typer.Context, option: str | None) -> Config:
    config = load_config(_config_path(ctx, option), os.environ)
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
) -> None:
    """Converge every database to the config. Idempotent."""

    def body() -> int:
        with Session(_config(ctx, config), targets) as session:
            _setup(session, Asked(accept_new_columns=accept_new_columns,
                                  drop_columns=drop_columns), wait, timeout)
        return EXIT_OK

    _run(body)


def _setup(session: Session, asked: Asked, wait: bool, timeout: float | None) -> None:
    """setup and resync: plan, apply, plan again (must be empty), optionally wait."""
    snap = workflow.validated(session)
    workflow.setup(session, workflow.ConsoleReport(out), asked, snap)
    if wait:
        workflow.wait(session, snap, out, timeout)
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
            return fresh_report(cfg, targets, watch_budget=prometheus.WATCH_BUDGET_S)

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
def run(
    ctx: typer.Context,
    config: ConfigOption = None,
    interval: Annotated[float, typer.Option(
        min=0.1, help="Seconds between passes (sooner when something breaks).")] = 30.0,
    metrics_port: Annotated[int | None, typer.Option(
        help="Serve /metrics and /healthz on this port.", show_default=False)] = None,
    metrics_host: Annotated[str, typer.Option(
        help="With --metrics-port: the address to listen on.")] = "127.0.0.1",
) -> None:
    """Keep every target converged, as a service: every interval what `setup` would do,
    /metrics and /healthz, one JSON object per log line. One per config at a time (another
    waits); SIGTERM or SIGINT finish the step in hand; SIGHUP reads the config again."""
    log = EventLog(sys.stdout)

    def body() -> int:
        try:
            cfg = _config(ctx, config)
        except ConfigError as exc:  # as JSON too: every line run writes is
            redact.add(*exc.secrets)
            for line in exc.problems:
                log("error", "config_invalid", line)
            return EXIT_USAGE
        try:
            Service(_config_path(ctx, config), cfg,
                    RunOptions(interval, metrics_host, metrics_port), log).run()
        except ReplError as exc:
            log("error", "fatal", str(exc))
            return EXIT_PROBLEMS
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
def init(
    ctx: typer.Context,
    source: Annotated[str, typer.Option(help="Production's DSN (only read; its password is "
                                             "never written).", show_default=False)],
    schemas: Annotated[list[str] | None, typer.Option(
        "--schema", help="A schema to configure; repeat it (default: all).")] = None,
    targets: Annotated[list[str] | None, typer.Option(
        "--target", help="NAME:KIND, KIND masked or filtered; repeat it "
                         "(default: dev:masked analytics:filtered).")] = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help=(
        "The file to write (default: --config, $REPL_CONFIG, ./repl.yaml)."))] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the file.")] = False,
    sample: Annotated[bool, typer.Option("--sample/--no-sample", help=(
        "Judge values too, from a bounded sample (or names and types only)."))] = True,
) -> None:
    """Write a starting repl.yaml from production's catalogs, every column classified and
    personal-looking ones masked or excluded. Reads production only."""

    def body() -> int:
        redact.add(*dsn_passwords(source))
        path = Path(output or resolve_config_path((ctx.obj or {}).get("config"), os.environ))
        render.init(out, run_init(source, schemas or [], targets or [], path, force, sample),
                    str(path))
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
