"""The read-only commands: status, metrics, verify and preview.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from .. import metrics as prometheus
from .. import render
from ..preview import preview as run_preview
from ..redact import redact
from ..session import Session
from ..status import StatusReport, fresh_report
from ..verify import verify as run_verify
from ..watching import watch_status
from . import (
    EXIT_OK,
    EXIT_PROBLEMS,
    ConfigOption,
    JsonOption,
    Targets,
    _config,
    _run,
    _show,
    app,
    err,
    out,
)


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
