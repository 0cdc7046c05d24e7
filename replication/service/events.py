"""`repl run`'s log: one JSON object per line, every line with the same keys (`FIELDS`),
secrets redacted before encoding; and the setup workflow's `Report` told as such events.

A finding that needs a person (a pending column, an orphan slot, a config the catalogs
refute) is logged when it appears and when it goes away, not at every pass.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from datetime import UTC, datetime
from typing import TextIO

from ..plan import Plan, Step
from ..problems import Problem
from ..redact import redact_data

FIELDS = ("time", "level", "event", "target", "table", "step", "message")
# Problem.where: "source", "target dev", "target dev, table public.users, column email".
_DIGITS = re.compile(r"\d+")
_WHERE = re.compile(r"target (?P<target>[^,]+)(?:, table (?P<table>.+?))?(?:, column .+)?")


class EventLog:
    """Writes events as JSON lines; safe to use from several threads."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        # Reentrant: a signal handler logs, and may run while this thread writes a line.
        self._lock = threading.RLock()

    def __call__(self, level: str, event: str, message: str, *, target: str | None = None,
                 table: str | None = None, step: str | None = None) -> None:
        record = dict(zip(FIELDS, (datetime.now(UTC).isoformat(timespec="milliseconds"),
                                   level, event, target, table, step, message), strict=True))
        line = json.dumps(redact_data(record), ensure_ascii=False, default=str)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()


def located(where: str) -> dict[str, str | None]:
    """The target and table a Problem's `where` names."""
    if where == "source":
        return {"target": "source", "table": None}
    found = _WHERE.fullmatch(where)
    return {"target": found["target"], "table": found["table"]} if found else \
        {"target": None, "table": None}


class Findings:
    """What needs a person, logged once when it appears and once when it is gone. A
    finding is the same while only its figures change (bytes of WAL kept, errors
    counted)."""

    def __init__(self, log: EventLog):
        self.log = log
        self.known: dict[str, Problem] = {}

    def update(self, found: list[Problem]) -> None:
        now = {_DIGITS.sub("#", str(p)): p for p in found}
        for key, p in now.items():
            if key not in self.known:
                self.log("error" if p.severity == "error" else "warning", "problem",
                         f"{p.message} [{p.kind}]", **located(p.where))
        for key, p in self.known.items():
            if key not in now:
                self.log("info", "problem_resolved", p.message, **located(p.where))
        self.known = now


class LogReport:
    """The setup workflow's events (workflow.Report) as log events."""

    def __init__(self, log: EventLog, findings: Findings):
        self.log, self.findings = log, findings
        self.steps = self.copies = 0  # done by this pass, for the counters

    def problems(self, found: list[Problem]) -> None:
        self.findings.update(found)

    def planned(self, plan: Plan) -> None:
        if plan.empty:  # the usual pass: the counters of /metrics tell it
            return
        self.log("info", "planned", f"{len(plan.steps)} step(s) to apply"
                 + "".join(f"; note: {note}" for note in plan.notes))
        for copy in plan.copies:
            self.log("info", "copy", f"the table will be copied: {copy.reason}",
                     target=copy.target, table=str(copy.relation))

    def step(self, number: int, total: int, step: Step) -> None:
        self.log("info", "step", f"[{number}/{total}] {step.database}: {step.summary}",
                 target=step.database, step=step.summary)
        self.steps = number - 1  # those before it are done

    def applied(self, plan: Plan) -> None:
        self.steps, self.copies = len(plan.steps), len(plan.copies)
        self.log("info", "applied", f"{len(plan.steps)} step(s) applied, "
                                    f"{len(plan.copies)} table copy(ies) started")
