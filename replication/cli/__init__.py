"""The `repl` command line. Commands are thin: load the config, call the library, render,
exit. Exit codes are decided here only: 0 success, 1 problems found, 2 usage or config.

This module holds the application, the options commands share and the mapping of
repl's errors to exit codes; the commands live in converge.py (check, plan, setup,
resync, skip, teardown), observe.py (status, metrics, verify, preview), service.py (run)
and tools.py (init, demo).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import psycopg
import typer

from .. import render
from ..config import Config
from ..config_file import load_config, resolve_config_path
from ..errors import ConfigError, ReplError, UsageError, ValidationFailed
from ..redact import redact

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
JobsOption = Annotated[int | None, typer.Option(
    "--jobs", min=1, show_default=False,
    help="Workers for a new target's initial copy from a snapshot (default: the target "
         "server's cores, as far as max_worker_processes allows; at least 2).")]
SplitOption = Annotated[str, typer.Option(
    "--split-larger-than", metavar="SIZE",
    help="In that copy, tables larger than this are split into page ranges (64MB, 1GB).")]
TableSyncOption = Annotated[bool, typer.Option(
    "--table-sync", help="Leave a new target's initial copy to PostgreSQL's table sync "
                         "(one backend per table) instead of the copy from a snapshot.")]
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


def main(argv: list[str] | None = None) -> Any:
    return app(args=argv, prog_name="repl")


if __name__ == "__main__":
    sys.exit(main())


# The commands register themselves on `app` when imported.
from . import converge, observe, service, tools  # noqa: E402, F401
