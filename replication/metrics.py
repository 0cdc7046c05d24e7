"""The status report in Prometheus' text exposition format (`repl metrics`), printed once
or served over HTTP so that existing dashboards and alerts can scrape it.

Every figure comes from the same `StatusReport` as `repl status`: a scrape runs one
status collection with fresh connections. `repl run` serves the same families, followed
by its own (`service/health.py`), and a `/healthz` beside them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .redact import redact
from .status import SYNC_STATES, StatusReport

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# How long a scrape may watch a suspect subscription: the whole collection must answer
# within Prometheus' default 10 s scrape timeout.
WATCH_BUDGET_S = 4.0

# name -> (type, help)
FAMILIES: dict[str, tuple[str, str]] = {
    "repl_up": ("gauge", "1 if the status could be collected (source reachable)."),
    "repl_healthy": ("gauge", "1 if repl status would exit 0."),
    "repl_collect_seconds": ("gauge", "Time taken to collect this status."),
    "repl_target_healthy": ("gauge", "1 if the target has no problem."),
    "repl_target_reachable": ("gauge", "1 if repl could connect to the target."),
    "repl_target_problems": ("gauge", "Problems found for the target."),
    "repl_target_drift": ("gauge", "Differences between the config and the databases."),
    "repl_subscription_enabled": ("gauge", "1 if the target's subscription is enabled."),
    "repl_apply_worker_running": ("gauge", "1 if the subscription's apply worker runs."),
    "repl_slot_active": ("gauge", "1 if a walsender consumes the target's slot."),
    "repl_slot_wal_status": ("gauge", "1 for the slot's wal_status (label)."),
    "repl_slot_retained_wal_bytes": ("gauge", "WAL the target's slot keeps on the source."),
    "repl_slot_safe_wal_bytes": ("gauge",
                                 "WAL that can still be written before the slot is lost "
                                 "(absent when max_slot_wal_keep_size is unlimited)."),
    "repl_lag_bytes": ("gauge", "WAL the subscriber has not confirmed."),
    "repl_lag_seconds": ("gauge",
                         "Subscriber lag; label basis says how it was measured "
                         "(absent when unknown)."),
    "repl_apply_errors_total": ("counter", "pg_stat_subscription_stats.apply_error_count."),
    "repl_sync_errors_total": ("counter", "pg_stat_subscription_stats.sync_error_count."),
    "repl_table_state": ("gauge", "1 for the table's sync state (label)."),
    "repl_table_rows_copied": ("gauge", "Rows copied so far by the table's running copy."),
    "repl_table_copy_eta_seconds": ("gauge", "Estimated time left in the table's copy."),
}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _sample(name: str, labels: dict[str, str], value: float | int | bool) -> str:
    inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
    number = float(value) if not isinstance(value, bool) else float(int(value))
    text = repr(int(number)) if number.is_integer() else repr(number)
    return f"{name}{{{inner}}} {text}" if inner else f"{name} {text}"


def _samples(report: StatusReport | None, seconds: float) -> Iterable[Sample]:
    yield "repl_up", {}, report is not None
    yield "repl_collect_seconds", {}, round(seconds, 6)
    if report is None:
        return
    yield "repl_healthy", {}, report.healthy
    for t in report.targets:
        who = {"target": t.target}
        yield "repl_target_healthy", who, t.healthy
        yield "repl_target_reachable", who, t.reachable
        yield "repl_target_problems", who, len(t.problems)
        yield "repl_target_drift", who, len(t.drift)
        if t.reachable:
            yield "repl_subscription_enabled", who, t.enabled
            yield "repl_apply_worker_running", who, t.worker_running
            yield "repl_apply_errors_total", who, t.apply_errors
            yield "repl_sync_errors_total", who, t.sync_errors
        if t.slot_exists:
            slot = {**who, "slot": t.subscription}
            yield "repl_slot_active", slot, t.slot_active
            yield "repl_slot_wal_status", {**slot, "wal_status": t.wal_status or "unknown"}, 1
            if t.retained_bytes is not None:
                yield "repl_slot_retained_wal_bytes", slot, t.retained_bytes
            if t.safe_wal_size is not None:
                yield "repl_slot_safe_wal_bytes", slot, t.safe_wal_size
            if t.lag_bytes is not None:
                yield "repl_lag_bytes", who, t.lag_bytes
        if t.lag_seconds is not None:
            yield "repl_lag_seconds", {**who, "basis": t.lag_basis}, round(t.lag_seconds, 3)
        for ts in t.tables:
            table = {**who, "table": ts.table}
            for state in (*SYNC_STATES.values(), "missing", "interrupted"):
                yield "repl_table_state", {**table, "state": state}, ts.state == state
            if ts.rows_copied is not None:
                yield "repl_table_rows_copied", table, ts.rows_copied
            if ts.eta_seconds is not None:
                yield "repl_table_copy_eta_seconds", table, round(ts.eta_seconds, 1)


Sample = tuple[str, dict[str, str], float | int | bool]


def render(families: dict[str, tuple[str, str]], samples: Iterable[Sample]) -> str:
    """Samples as exposition text, grouped by family in the order of `families` (name ->
    (type, help)), each family that has a sample under its HELP and TYPE lines."""
    by_family: dict[str, list[str]] = {name: [] for name in families}
    for name, labels, value in samples:
        by_family[name].append(_sample(name, labels, value))
    lines = []
    for name, found in by_family.items():
        if found:
            kind, text = families[name]
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *found]
    return "\n".join(lines) + "\n" if lines else ""


def exposition(report: StatusReport | None, seconds: float = 0.0) -> str:
    """The metrics of `report` (None: the source could not be reached) as text."""
    return render(FAMILIES, _samples(report, seconds))


def scrape(collect: Callable[[], StatusReport]) -> str:
    """One collection as exposition text; a failure to collect is `repl_up 0`."""
    started = time.monotonic()
    try:
        report: StatusReport | None = collect()
    except Exception:  # noqa: BLE001 - a scrape reports the outage instead of failing
        report = None
    return exposition(report, time.monotonic() - started)


# Another page served beside /metrics: its status code, content type and body.
Page = Callable[[], tuple[int, str, str]]


def listen(collect: Callable[[], StatusReport], host: str, port: int, *,
           more: Callable[[], str] | None = None,
           pages: dict[str, Page] | None = None) -> ThreadingHTTPServer:
    """An HTTP server bound to host:port (OSError if it cannot be) whose serve_forever()
    answers /metrics: one status collection per scrape, followed by `more` (families of
    the caller's own). `pages`: other paths, answered without waiting for a scrape under
    way (a health check must not queue behind a slow status collection)."""
    lock = threading.Lock()  # one collection at a time: scrapes must not pile up
    pages = dict(pages or {})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path in pages:
                code, kind, text = pages[path]()
                self._answer(code, kind, text)
                return
            if path not in ("/metrics", "/"):
                self.send_error(404)
                return
            with lock:
                text = scrape(collect) + (more() if more else "")
            self._answer(200, CONTENT_TYPE, text)

        def _answer(self, code: int, kind: str, text: str) -> None:
            body = redact(text).encode()
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet
            pass

    return ThreadingHTTPServer((host, port), Handler)


def serve(collect: Callable[[], StatusReport], host: str, port: int,
          ready: threading.Event | None = None,
          stop: threading.Event | None = None) -> None:
    """Serve /metrics on host:port until `stop` is set (or forever)."""
    with listen(collect, host, port) as server:
        if ready is not None:
            ready.set()
        if stop is None:
            server.serve_forever()
            return
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        stop.wait()
        server.shutdown()
