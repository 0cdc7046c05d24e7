"""The commands around the reconciler: init writes a starting config, demo runs
everything on a local server.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from .. import render
from ..config import dsn_passwords
from ..config_file import resolve_config_path
from ..demo import run_demo
from ..init_config import init as run_init
from ..redact import redact
from . import (
    EXIT_OK,
    _run,
    app,
    out,
)


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
