"""`repl run` (issue 15), started as a real process, asserted in the databases without any
other repl command: it heals what `setup` would (a disabled masking trigger, a dropped
slot, a column rename under `columns: all`), sooner than its interval when the pulse
shows it; one process per config, the second taking over from a killed holder; a source
restart ridden out with /healthz unhealthy and back; SIGHUP, SIGTERM; JSON log lines
with no secret in them. And the pure pieces (alarms, health, the log's shape) without a
server.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from replication.cluster import free_port, installations
from replication.config import TargetConfig
from replication.config_file import parse_config
from replication.service import loop
from replication.service.events import FIELDS, EventLog, Findings, located
from replication.service.health import Health, stale_after
from replication.service.lock import Holder, application_name, lock_key
from replication.service.pulse import Pulse, TargetPulse, alarms, copies_finished

from conftest import StreamOfWrites, admin, private_cluster, relfilenode, rows, wait_until

SRC_PW, TGT_PW, SECRET = "RunSrcPw-4kq", "RunTgtPw-9jx", "RunKey-Q7mz"
SECRETS = (SRC_PW, TGT_PW, SECRET)

SCHEMA = """
CREATE TABLE public.users (id int PRIMARY KEY, name text, email text, country text);
INSERT INTO public.users SELECT g, 'Name ' || g, 'u' || g || '@corp.example', 'DE'
  FROM generate_series(1, 40) g;
CREATE TABLE public.orders (id int PRIMARY KEY, note text, total numeric(10,2));
INSERT INTO public.orders SELECT g, 'n' || g, g FROM generate_series(1, 30) g;
"""

CONFIG = """
version: 1
source: {dsn: "{source} password=RunSrcPw-4kq"}
masking: {secret: "RunKey-Q7mz"}
targets:
  dev:
    dsn: "{target:dev} password=RunTgtPw-9jx"
    tables:
      public.users:
        columns: [name, email, country]
        mask: {email: email}
      public.orders: {columns: all}
"""


class Run:
    """`repl run` as a process of its own; its output collected line by line."""

    def __init__(self, cfg: Path, *args: str):
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "replication", "-c", str(cfg), "run", "--metrics-port",
             str(self.port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.readers = [threading.Thread(target=self._read, args=(stream, into), daemon=True)
                        for stream, into in ((self.proc.stdout, self.lines),
                                             (self.proc.stderr, self.errors))]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    def events(self, name: str | None = None) -> list[dict]:
        parsed = [json.loads(line) for line in list(self.lines)]
        return [e for e in parsed if name is None or e["event"] == name]

    def wait_for(self, name: str, timeout: float = 90, since: int = 0,
                 contains: str = "") -> dict:
        def seen():
            assert self.proc.poll() is None, self.output()
            return next((e for e in self.events()[since:] if e["event"] == name
                         and contains in e["message"]), None)
        try:
            return wait_until(seen, timeout, f"event {name} {contains!r}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.output()}{self.stacks()}") from None

    def stacks(self) -> str:
        """Where the process's threads are (py-spy, when installed): for a timeout."""
        spy = Path(sys.executable).with_name("py-spy")
        if self.proc.poll() is not None or not spy.exists():
            return ""
        dump = subprocess.run([spy, "dump", "--pid", str(self.proc.pid)],
                              capture_output=True, text=True, timeout=30)
        return f"\npy-spy dump of {self.proc.pid}:\n{dump.stdout}{dump.stderr}"

    def health(self) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz",
                                        timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())
        except OSError:
            return 0, {}

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics",
                                    timeout=30) as resp:
            return resp.read().decode()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        """Send `sig`; the exit code, within `timeout`."""
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        for reader in self.readers:
            reader.join(10)
        return code

    def output(self) -> str:
        return "".join(self.lines[-40:]) + "".join(self.errors[-20:])

    def assert_clean(self) -> None:
        """Every line a JSON object of the documented shape; no secret anywhere."""
        for line in self.lines:
            event = json.loads(line)
            assert tuple(event) == FIELDS, line
        text = "".join(self.lines + self.errors)
        assert not [s for s in SECRETS if s in text], "a secret in repl run's output"
        assert not self.errors, "".join(self.errors)


def ready(conn, count: int) -> bool:
    return rows(conn, "SELECT count(*) FILTER (WHERE srsubstate = 'r') FROM "
                      "pg_subscription_rel") == [(count,)]


def trigger_state(conn) -> list[tuple]:
    return rows(conn, "SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'repl_mask' "
                      "AND tgrelid = 'public.users'::regclass")


def raw_emails(src, tgt) -> set[str]:
    source = {e for (e,) in rows(src, "SELECT email FROM public.users")}
    return source & {e for (e,) in rows(tgt, "SELECT email FROM public.users")}


@pytest.mark.pg
def test_run_heals_without_a_person(env_any, tmp_path):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    interval = 20  # what follows is healed sooner: by the pulse between passes
    run = Run(cfg, "--interval", str(interval))
    try:
        run.wait_for("lock_acquired")
        run.wait_for("applied")
        with env.source() as src, env.target("dev") as dev:
            wait_until(lambda: ready(dev, 2), 90, "the first copies")
            assert not raw_emails(src, dev)
            wait_until(lambda: run.health()[0] == 200, 30, "healthy")
            scraped = run.metrics()
            assert "repl_up 1" in scraped and "repl_reconcile_runs_total" in scraped
            assert "repl_reconcile_lock_held 1" in scraped

            # A masking trigger disabled by hand: raw values may have arrived, so it is
            # enabled again and the table copied again, behind it.
            users = relfilenode(dev, "public.users")
            mark = len(run.events())
            dev.execute("ALTER TABLE public.users DISABLE TRIGGER repl_mask")
            src.execute("INSERT INTO public.users VALUES (100, 'New', 'new@corp.example', 'FR')")
            started = time.monotonic()
            wait_until(lambda: trigger_state(dev) == [("A",)]
                       and relfilenode(dev, "public.users") != users, 90, "the trigger back")
            assert time.monotonic() - started < interval
            run.wait_for("alarm", since=mark, contains="masking trigger of public.users")
            wait_until(lambda: ready(dev, 2) and rows(
                dev, "SELECT count(*) FROM public.users") == [(41,)], 90, "the copy")
            assert not raw_emails(src, dev)

            # A dropped slot: the subscription is made again and its tables copied.
            slot = "repl_dev"
            wait_until(lambda: drop_slot(src, slot), 30, "the slot dropped")
            src.execute("INSERT INTO public.orders VALUES (100, 'after the drop', 1)")
            wait_until(lambda: rows(src, "SELECT active FROM pg_replication_slots WHERE "
                                         "slot_name = %s", (slot,)) == [(True,)], 90,
                       "the slot back")
            wait_until(lambda: rows(dev, "SELECT note FROM public.orders WHERE id = 100")
                       == [("after the drop",)], 90, "a change after the repair")
            wait_until(lambda: ready(dev, 2), 90, "the copies")

            # A column renamed under `columns: all`: renamed on the target, no copy.
            orders = relfilenode(dev, "public.orders")
            src.execute("ALTER TABLE public.orders RENAME COLUMN note TO remark")
            src.execute("INSERT INTO public.orders VALUES (101, 'renamed', 2)")
            wait_until(lambda: columns(dev, "orders") == ["id", "remark", "total"], 90,
                       "the column renamed on the target")
            wait_until(lambda: rows(dev, "SELECT remark FROM public.orders WHERE id = 101")
                       == [("renamed",)], 90, "the change queued behind it")
            assert relfilenode(dev, "public.orders") == orders

            # A conflict no pass can heal: a row written on the target, which production
            # then inserts too. It is logged with the way out; gone, replication resumes.
            mark = len(run.events())
            dev.execute("SET session_replication_role = replica")  # past any local guard
            dev.execute("INSERT INTO public.orders VALUES (200, 'local', 0)")
            src.execute("INSERT INTO public.orders VALUES (200, 'production', 0)")
            trouble = run.wait_for("problem", since=mark, contains="repl skip dev")
            assert trouble["target"] == "dev" and trouble["level"] == "error"
            dev.execute("DELETE FROM public.orders WHERE id = 200")
            wait_until(lambda: rows(dev, "SELECT remark FROM public.orders WHERE id = 200")
                       == [("production",)], 60, "the conflict resolved")

            # SIGHUP: a config that does not validate is logged, the old one kept; a
            # valid one is applied.
            mark = len(run.events())
            cfg.write_text(cfg.read_text().replace("version: 1", "version: 1\ncolour: red"))
            run.proc.send_signal(signal.SIGHUP)
            assert "colour: unknown key" in run.wait_for("config_invalid", since=mark)["message"]
            cfg.write_text(cfg.read_text().replace("colour: red\n", "").replace(
                "mask: {email: email}", "mask: {email: email, name: fake_name}"))
            run.proc.send_signal(signal.SIGHUP)
            run.wait_for("config_reloaded", since=mark)
            wait_until(lambda: rows(dev, "SELECT count(*) FROM public.users WHERE name "
                                         "LIKE 'Name %'") == [(0,)] and ready(dev, 2), 90,
                       "names masked after the reload")
        assert run.proc.poll() is None
        started = time.monotonic()
        assert run.stop() == 0
        assert time.monotonic() - started < 10
        assert run.events()[-1]["event"] == "stopped"
        run.assert_clean()
        assert {e["event"] for e in run.events()} >= {"started", "lock_acquired", "step",
                                                      "applied", "alarm", "stopping"}
    finally:
        if run.proc.poll() is None:
            run.proc.kill()


def healthy(run: Run, role: str) -> bool:
    code, body = run.health()
    return code == 200 and body["role"] == role


def columns(conn, table: str) -> list[str]:
    return [c for (c,) in rows(conn, "SELECT column_name FROM information_schema.columns "
                                     "WHERE table_schema = 'public' AND table_name = %s "
                                     "ORDER BY ordinal_position", (table,))]


def setup_runs(conn) -> int:
    return rows(conn, "SELECT count(*) FROM repl.setup_run")[0][0]


def drop_slot(src, slot: str) -> bool:
    """Drop the slot from under its subscription (its walsender ended first)."""
    src.execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                "WHERE slot_name = %s AND active_pid IS NOT NULL", (slot,))
    try:
        src.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
    except Exception:  # noqa: BLE001 - the walsender came back first: again
        return False
    return True


SEQUENCES = """
version: 1
source: {dsn: "{source}"}
targets:
  dev:
    dsn: "{target:dev}"
    read_only: false
    tables:
      public.orders: {columns: all}
"""


@pytest.mark.pg
@pytest.mark.skipif("read_only" not in TargetConfig.model_fields,
                    reason="read_only and replicated sequences are built on branch "
                           "staging-tables, not merged yet")
def test_run_keeps_sequences_ahead_on_a_writable_target(env_any, tmp_path):
    env = env_any
    env.run_source("CREATE TABLE public.orders (id serial PRIMARY KEY, note text); "
                   "INSERT INTO public.orders (note) SELECT 'n' FROM generate_series(1, 20)")
    run = Run(env.write_config(SEQUENCES), "--interval", "1")
    try:
        with env.target("dev") as dev, env.source() as src:
            wait_until(lambda: ready(dev, 1), 90, "the copy")

            def ahead() -> bool:
                (theirs,), = rows(src, "SELECT last_value FROM public.orders_id_seq")
                (ours,), = rows(dev, "SELECT last_value FROM public.orders_id_seq")
                return ours > theirs

            wait_until(ahead, 30, "the target's sequence ahead of production's")
            with StreamOfWrites(env.source_dsn, lambda: [
                    "INSERT INTO public.orders (note) SELECT 'w' FROM generate_series(1, 50)"]):
                for _ in range(5):
                    time.sleep(1)
                    assert ahead()
            dev.execute("INSERT INTO public.orders (note) VALUES ('local')")
            src.execute("INSERT INTO public.orders (note) VALUES ('after')")
            wait_until(lambda: rows(dev, "SELECT count(*) FROM public.orders WHERE note = "
                                         "'after'") == [(1,)], 60, "production's row")
        assert run.stop() == 0
        run.assert_clean()
    finally:
        if run.proc.poll() is None:
            run.proc.kill()


TAKEOVER = """
version: 1
source: {{dsn: "postgresql://postgres:{password}@127.0.0.1:{port}/prod"}}
masking: {{secret: "{secret}"}}
targets:
  dev:
    dsn: "host=127.0.0.1 port={port} dbname=staging user=postgres password={password}"
    tables:
      public.users:
        columns: [name, email, country]
        mask: {{email: email}}
"""


@pytest.mark.pg
@pytest.mark.slow
def test_one_run_per_config_takeover_and_a_source_restart(tmp_path):
    """A second process waits, naming the holder, and does nothing; a SIGKILL of the
    holder lets it take over within two intervals; it rides out a restart of the source
    (one cluster here: the target restarts too), /healthz unhealthy and back. A failed
    step is reported and retried."""
    major = installations()[-1].major
    interval = 2
    with private_cluster(major, {"wal_retrieve_retry_interval": "1s"}, "repl-run-",
                         password=SRC_PW) as cluster:
        with admin(cluster.dsn()) as conn:
            conn.execute("CREATE DATABASE prod")
            conn.execute("CREATE DATABASE staging")
        with admin(cluster.dsn("prod")) as src:
            src.execute(SCHEMA)
        cfg = tmp_path / "repl.yaml"
        # The cluster has one password; the target's DSN carries it too.
        cfg.write_text(TAKEOVER.format(password=SRC_PW, port=cluster.port, secret=SECRET))
        first = Run(cfg, "--interval", str(interval))
        second = None
        try:
            first.wait_for("applied")
            with admin(cluster.dsn("staging")) as dev:
                wait_until(lambda: ready(dev, 1), 90, "the first copy")
            second = Run(cfg, "--interval", str(interval))
            waiting = second.wait_for("lock_waiting")["message"]
            assert f"process {first.proc.pid} on host" in waiting
            wait_until(lambda: healthy(second, "standby"), 30, "a healthy standby")

            # Drift: the holder heals it, the other does nothing. Each pass that applied
            # steps on the target records itself there: as many as the holder logged.
            with admin(cluster.dsn("staging")) as dev:
                before = (setup_runs(dev), len(first.events("applied")))
                dev.execute("ALTER TABLE public.users DISABLE TRIGGER repl_mask")
                wait_until(lambda: trigger_state(dev) == [("A",)] and ready(dev, 1), 60,
                           "the trigger back, the table copied")
                time.sleep(2 * interval)  # a pass or two more: nothing is done twice
                assert setup_runs(dev) - before[0] == len(first.events("applied")) - before[1]
            assert len(first.events("applied")) > before[1]

            # A step that fails (production's table locked past repl's lock_timeout) is
            # reported and retried until it succeeds; the guard holds raw values back.
            with admin(cluster.dsn("prod")) as src, admin(cluster.dsn("staging")) as dev:
                mark = len(first.events())
                with src.transaction():
                    src.execute("LOCK TABLE public.users IN ACCESS EXCLUSIVE MODE")
                    dev.execute("ALTER TABLE public.users DISABLE TRIGGER repl_mask")
                    failed = first.wait_for("pass_failed", since=mark, timeout=60)["message"]
                    assert "lock timeout" in failed and "retrying in" in failed
                wait_until(lambda: trigger_state(dev) == [("A",)] and ready(dev, 1), 60,
                           "the step done once the lock is gone")
                assert not raw_emails(src, dev)
            assert not second.events("step") and not second.events("lock_acquired")

            # The holder's session ends under it (as when the source frees the lock of a
            # holder it lost sight of): it stops acting at once, the other takes over,
            # and the former holder waits in turn, naming the new one.
            with admin(cluster.dsn("prod")) as src:
                wait_until(lambda: rows(src, "SELECT pg_terminate_backend(pid) FROM "
                                             "pg_stat_activity WHERE application_name = %s",
                                        (application_name(first.proc.pid),)) == [(True,)],
                           30, "the holder's lock session ended")
            lost = first.wait_for("lock_lost", timeout=30)
            second.wait_for("lock_acquired", timeout=30)
            waiting = first.wait_for("lock_waiting", timeout=30)["message"]
            assert f"process {second.proc.pid} on host" in waiting
            after = first.events()[first.events().index(lost):]
            assert not [e for e in after if e["event"] in ("step", "lock_acquired")]

            # The holder killed: the other takes over within two intervals.
            holder, standby = second, first
            killed = time.time()
            holder.proc.kill()
            taken = standby.wait_for("lock_acquired", since=standby.events().index(lost),
                                     timeout=30)
            took = datetime.fromisoformat(taken["time"]).timestamp() - killed
            assert took <= 2 * interval, f"took over after {took:.1f} s"
            wait_until(lambda: healthy(standby, "acting"), 60, "healthy, acting")

            # The source restarts: logged, retried, unhealthy meanwhile; then healthy.
            mark = len(standby.events())
            cluster.stop("fast")
            wait_until(lambda: standby.health()[0] == 503, 30, "unhealthy while it is down")
            standby.wait_for("unreachable", since=mark)
            cluster.start()
            wait_until(lambda: standby.health()[0] == 200, 90, "healthy again")
            with admin(cluster.dsn("staging")) as dev, admin(cluster.dsn("prod")) as src:
                src.execute("INSERT INTO public.users VALUES (500, 'x', 'late@corp.example', 'DE')")
                wait_until(lambda: rows(dev, "SELECT email <> 'late@corp.example' FROM "
                                             "public.users WHERE id = 500") == [(True,)],
                           60, "replication carries on, masked")
            assert "repl_reconcile_failures_total" in standby.metrics()

            started = time.monotonic()
            assert standby.stop() == 0
            assert time.monotonic() - started < 10
            for run in (first, second):
                run.assert_clean()
        finally:
            for run in (first, second):
                if run is not None and run.proc.poll() is None:
                    run.proc.kill()
            with admin(cluster.dsn("staging")) as dev:
                for (sub,) in rows(dev, "SELECT subname FROM pg_subscription"):
                    dev.execute(f'ALTER SUBSCRIPTION "{sub}" DISABLE')
                    dev.execute(f'ALTER SUBSCRIPTION "{sub}" SET (slot_name = NONE)')
                    dev.execute(f'DROP SUBSCRIPTION "{sub}"')


# --- without a server ------------------------------------------------------------------

PULSE_CONFIG = parse_config("""
version: 1
source: {dsn: "host=h"}
targets:
  dev: {dsn: "host=h", tables: {public.users: {columns: [name]}}}
""", {})
HEALTHY = TargetPulse(True, True, True, 2, 0, frozenset(), {"public.users": "A"})


@pytest.mark.parametrize("now, expected", [
    (HEALTHY, []),
    (TargetPulse(True, True, True, 3, 0, frozenset(), {"public.users": "A"}),
     ["the apply error count of subscription repl_dev rose from 2 to 3"]),
    (TargetPulse(True, True, False, 2, 0, frozenset(), {"public.users": "A"}),
     ["the apply worker of subscription repl_dev stopped"]),
    (TargetPulse(True, False, False, 2, 0, frozenset(), {"public.users": "A"}),
     ["subscription repl_dev was disabled"]),
    (TargetPulse(False, False, False, 0, 0, frozenset(), {"public.users": "A"}),
     ["subscription repl_dev was dropped"]),
    (TargetPulse(True, True, True, 2, 0, frozenset(), {"public.users": "D"}),
     ["the masking trigger of public.users is no longer ENABLE ALWAYS (tgenabled D)"]),
    (TargetPulse(True, True, True, 2, 0, frozenset(), {}),
     ["the masking trigger of public.users was dropped"]),
    # Read on a connection made again (a restart): a new baseline, not an alarm.
    (TargetPulse(True, True, False, 5, 0, frozenset(), {}, connection=1), []),
], ids=["same", "errors", "worker", "disabled", "dropped", "trigger", "no trigger",
        "reconnected"])
def test_alarms_are_what_got_worse(now, expected):
    was = Pulse({"dev": HEALTHY}, {"repl_dev": "reserved"})
    found = alarms(PULSE_CONFIG, was, Pulse({"dev": now}, {"repl_dev": "reserved"}))
    assert [a.message for a in found] == expected
    assert all(a.target == "dev" for a in found)


def test_alarms_of_slots_and_finished_copies():
    was = Pulse({"dev": TargetPulse(True, True, True, 0, 0, frozenset({"public.users"}))},
                {"repl_dev": "reserved"})
    gone = Pulse({"dev": TargetPulse(True, True, True, 0, 0)}, {})
    assert [(a.target, a.message) for a in alarms(PULSE_CONFIG, was, gone)] == [
        ("source", "replication slot repl_dev was dropped")]
    lost = Pulse(gone.targets, {"repl_dev": "lost"})
    assert [a.message for a in alarms(PULSE_CONFIG, was, lost)] == [
        "replication slot repl_dev was invalidated (wal_status lost)"]
    assert alarms(PULSE_CONFIG, was, Pulse(gone.targets, None)) == []  # no answer
    assert copies_finished(was, gone) == [("dev", "public.users")]


def test_health_is_the_last_pass_recent_and_successful(monkeypatch):
    health = Health(interval=5)
    assert health.healthz()[0] == 503  # no pass yet
    health.acting()
    health.passed(True, 0.5, 3, 1, alarm=False)
    code, kind, body = health.healthz()
    assert (code, kind, json.loads(body)["role"]) == (200, "application/json", "acting")
    health.passed(False, 0.1, 0, 0, alarm=True, error="cannot connect to source")
    assert "cannot connect to source" in json.loads(health.healthz()[2])["reason"]
    assert health.healthz()[0] == 503
    health.passed(True, 0.1, 0, 0, alarm=False)
    later = time.monotonic() + stale_after(5) + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    assert health.healthz()[0] == 503  # no pass for too long
    text = health.exposition()
    for sample in ("repl_reconcile_runs_total 3", "repl_reconcile_failures_total 1",
                   "repl_reconcile_steps_applied_total 3", "repl_reconcile_copies_total 1",
                   "repl_reconcile_alarms_total 1", "repl_reconcile_lock_held 1"):
        assert sample in text
    health.standby("process 1 on host h")
    assert json.loads(health.healthz()[2])["role"] == "standby"


def test_log_lines_have_one_shape_and_no_secret(capsys):
    from replication.problems import Problem
    from replication.redact import redact

    redact.add("Hush-77")
    log = EventLog()
    findings = Findings(log)
    problem = Problem("warning", "target dev, table public.users, column email", "Hush-77 x 1")
    findings.update([problem])
    findings.update([problem])  # once while it lasts, whatever its figures
    findings.update([Problem(problem.severity, problem.where, "Hush-77 x 12")])
    findings.update([Problem(problem.severity, problem.where, "Hush-77 x 13")])
    findings.update([])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["event"], e["target"], e["table"]) for e in lines] == [
        ("problem", "dev", "public.users"), ("problem_resolved", "dev", "public.users")]
    assert all(tuple(e) == FIELDS for e in lines)
    assert "Hush-77" not in json.dumps(lines)
    assert located("source") == {"target": "source", "table": None}
    redact.reset()


def test_lock_names_its_holder():
    assert lock_key("repl") == lock_key("repl") != lock_key("repl2")
    assert 0 <= lock_key("x") < 2 ** 31
    name = application_name(4242, "host-" + "x" * 80)
    assert name.startswith("repl run 4242@host-") and len(name.encode()) <= 63
    holder = Holder(77, application_name(4242, "web-1"), "10.0.0.5", None)
    assert holder.describe() == ("process 4242 on host web-1 (connected from 10.0.0.5), "
                                 "backend pid 77 on the source")


def test_a_process_that_lost_its_lock_lets_a_waiting_one_go_first(monkeypatch, tmp_path):
    """The loss wakes the loop, and a pass it cut short leaves the wake set: the wait
    before this process tries the lock again is still the whole LOST_WAIT_S (a process
    waiting for the lock polls within it)."""
    monkeypatch.setattr(loop, "LOST_WAIT_S", 0.5)
    service = loop.Service(tmp_path / "repl.yaml", PULSE_CONFIG, loop.RunOptions(interval=2),
                           EventLog(io.StringIO()))

    class LostLock:
        held, was_taken, released, tried = False, True, 0.0, 0.0

        def release(self) -> None:
            self.was_taken, self.released = False, time.monotonic()

        def try_take(self) -> Holder:
            self.tried = time.monotonic()
            service.stop.set()
            return Holder(77, application_name(4242, "web-1"), None, None)

    service.lock = lock = LostLock()
    service._lost()  # as the lock's threads do: the wake is set
    service._loop(watcher=None)
    assert lock.tried - lock.released >= 0.5
