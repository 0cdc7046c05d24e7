"""`status --watch`: the report again and again, redrawn in place on a terminal, one after
another otherwise (JSON documents with --json). Watching is for bad moments, so a
source that cannot be reached is shown as such and retried, not an exit.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

from . import render
from .errors import ReplError
from .redact import redact
from .status import JSON_FORMAT, StatusReport


def watch_status(out: Console, report: Callable[[], StatusReport], interval: float,
                 as_json: bool) -> None:
    """Runs until interrupted (KeyboardInterrupt propagates)."""

    def attempt() -> StatusReport | str:
        try:
            return report()
        except (ReplError, psycopg.Error) as exc:
            return redact(str(exc)).strip()

    def view(each: StatusReport | str) -> RenderableType:
        if isinstance(each, str):
            return Text(f"{each}\n(retrying every {interval:g} s)", style="red")
        return render.status_view(out, each)

    if as_json or not out.is_terminal:
        while True:
            each = attempt()
            if as_json:
                data = (each.to_dict() if isinstance(each, StatusReport) else
                        {"format": JSON_FORMAT, "healthy": False, "error": each})
                render.emit_json(out, data)
            else:
                out.print(view(each))
            time.sleep(interval)
    with Live(view(attempt()), console=out, auto_refresh=False) as live:
        while True:
            time.sleep(interval)
            live.update(view(attempt()), refresh=True)
