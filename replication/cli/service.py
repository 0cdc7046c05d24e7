"""The long-running command: run.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..errors import ConfigError, ReplError
from ..redact import redact
from ..service import RunOptions, Service
from ..service.events import EventLog
from . import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, ConfigOption, _config, _config_path, _run, app


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
