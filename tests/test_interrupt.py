"""Guarantee 5 under interruption: `repl setup` stopped after any step of its plan, then
run again, converges. Covered for every step index of: a re-copy plan (a table's
column list and masks change: publication entries dropped, await_slot, refresh,
repl's indexes set aside, truncate, triggers), a plan adding a target, the initial
setup of masked tables (sequences, defaults, generated columns, the read-only guard),
and setup after a teardown; the indexes built after the copies by every `setup --wait`.
The steps run in-process up to the cut (as a kill between steps would leave things);
one test kills a real `repl setup` process with SIGKILL in the middle of a step. After
each rerun: the plan is empty, the data matches and is masked (`repl verify`), and the
source holds exactly one slot per target and no table-sync leftovers, and only the
wanted publications.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from replication.apply import run_step
from replication.config_file import load_config
from replication.session import Session

from conftest import rows, wait_until

pytestmark = pytest.mark.pg

# With what a target table gets of production's definition (SPEC section 7): an index
# (set aside while users is copied again, built after), a serial sequence, defaults, a
# generated column, and the read-only guard (the TRUNCATE before a copy passes it).
SCHEMA = """
CREATE TABLE public.users (id int PRIMARY KEY, name text, email text, country text,
                           score int);
CREATE INDEX users_email ON public.users (email);
CREATE TABLE public.orders (id serial PRIMARY KEY, user_id int, total numeric(10,2) DEFAULT 0,
                            note text,
                            cents bigint GENERATED ALWAYS AS ((total * 100)::bigint) STORED);
CREATE INDEX orders_user ON public.orders (user_id);
INSERT INTO public.users SELECT g, 'Person ' || g, 'p' || g || '@corp.example',
       CASE WHEN g % 3 = 0 THEN 'FR' ELSE 'DE' END, g FROM generate_series(1, 60) g;
INSERT INTO public.orders SELECT g, g % 60 + 1, g * 1.5, 'n' || g FROM generate_series(1, 90) g;
"""

DEV_A = """
  dev:
    dsn: "{target:dev}"
    tables:
      public.users:
        columns: [name, email, country]
        mask: {email: email}
      public.orders: {columns: all, where: "id > 30"}
"""

# The same target with users' column list and masks changed: users is copied again.
DEV_B = """
  dev:
    dsn: "{target:dev}"
    tables:
      public.users:
        columns: [name, email, score]
        exclude: [country]
        mask: {email: hash, name: fake_name}
      public.orders: {columns: all, where: "id > 30"}
"""

ANALYTICS = """
  analytics:
    dsn: "{target:analytics}"
    tables:
      public.users: {columns: [country, score], where: "id % 2 = 0"}
"""

HEAD = """
version: 1
source: {dsn: "{source}"}
masking: {secret: "interrupt secret"}
targets:
"""


def config(env, *targets: str, name: str) -> Path:
    return env.write_config(HEAD + "".join(targets), name)


def summaries(cfg: Path) -> list[str]:
    with Session(load_config(cfg, {})) as session:
        return [f"{s.database}: {s.summary}" for s in session.plan(session.snapshot()).steps]


def interrupt_after(cfg: Path, k: int, expected: list[str]) -> None:
    """Run the first k steps of the plan for `cfg`, which must be `expected`."""
    with Session(load_config(cfg, {})) as session:
        steps = session.plan(session.snapshot()).steps
        assert [f"{s.database}: {s.summary}" for s in steps] == expected
        for step in steps[:k]:
            run_step(session, step)


def converged(env, repl, cfg: Path, targets: tuple[str, ...]) -> None:
    """Setup again; then nothing is left to do, the data is right and masked, and the
    source holds one slot per target and only publications of the config."""
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    assert json.loads(repl("plan", "--json", config=cfg).stdout)["steps"] == []
    repl("verify", config=cfg)
    with env.source() as src:
        slots = sorted(r[0] for r in rows(src, "SELECT slot_name FROM pg_replication_slots "
                                               "WHERE database = current_database()"))
        assert slots == sorted(f"repl_{t}" for t in targets)
        publications = sorted(r[0] for r in rows(src, "SELECT pubname FROM pg_publication"))
        assert publications == sorted(f"repl_{t}_iudt" for t in targets)
    for target in targets:
        with env.target(target) as tgt:
            assert rows(tgt, "SELECT subname FROM pg_subscription s JOIN pg_database d ON "
                             "d.oid = s.subdbid AND d.datname = current_database()") == \
                [(f"repl_{target}",)]
    if "dev" in targets:
        with env.target("dev") as dev:  # production's indexes, once the copies are done
            assert rows(dev, "SELECT count(*) FROM pg_index WHERE indrelid IN "
                             "('public.users'::regclass, 'public.orders'::regclass) "
                             "AND NOT indisprimary") == [(2,)]
        with env.source() as src, env.target("dev") as dev:
            assert rows(dev, "SELECT id FROM public.users ORDER BY id") == \
                rows(src, "SELECT id FROM public.users ORDER BY id")
            assert rows(dev, "SELECT id FROM public.orders ORDER BY id") == \
                rows(src, "SELECT id FROM public.orders WHERE id > 30 ORDER BY id")
            assert rows(dev, "SELECT count(*) FROM public.users WHERE email LIKE "
                             "'%@corp.example'") == [(0,)]


def write_meanwhile(env, k: int) -> None:
    """Production keeps changing while setup is interrupted."""
    with env.source() as src:
        src.execute("INSERT INTO public.users VALUES (%s, %s, %s, 'IT', %s)",
                    (1000 + k, f"Late {k}", f"late{k}@corp.example", k))
        src.execute("UPDATE public.users SET email = %s, score = %s WHERE id = %s",
                    (f"changed{k}@corp.example", -k, k))
        src.execute("DELETE FROM public.orders WHERE id = %s", (90 - k,))
        src.execute("INSERT INTO public.orders VALUES (%s, %s, %s, 'late')",
                    (1000 + k, k, k + 0.5))


def test_interrupted_recopy_converges_from_every_step(env_any, repl):
    """Columns and masks of dev's users change back and forth; each plan is cut after
    every step in turn, and the rerun converges."""
    env = env_any
    env.run_source(SCHEMA)
    cfg_a = config(env, DEV_A, ANALYTICS, name="a.yaml")
    cfg_b = config(env, DEV_B, ANALYTICS, name="b.yaml")
    repl("setup", "--wait", "--timeout", "120", config=cfg_a)
    to_b = summaries(cfg_b)
    assert any("wait until" in s for s in to_b) and any("empty table" in s for s in to_b)
    assert any("forget the tables" in s for s in to_b)
    repl("setup", "--wait", "--timeout", "120", config=cfg_b)
    to_a = summaries(cfg_a)
    repl("setup", "--wait", "--timeout", "120", config=cfg_a)
    for k in range(1, max(len(to_a), len(to_b))):
        if k < len(to_b):
            interrupt_after(cfg_b, k, to_b)
            write_meanwhile(env, k)
        converged(env, repl, cfg_b, ("dev", "analytics"))
        with env.target("dev") as dev:
            assert rows(dev, "SELECT count(*) FROM public.users WHERE name LIKE 'Person %'") \
                == [(0,)]
        if k < len(to_a):
            interrupt_after(cfg_a, k, to_a)
        converged(env, repl, cfg_a, ("dev", "analytics"))


def test_interrupted_new_target_converges_from_every_step(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    one = config(env, ANALYTICS, name="one.yaml")
    two = config(env, ANALYTICS, DEV_A, name="two.yaml")
    repl("setup", "--wait", "--timeout", "120", config=one)
    adding = summaries(two)
    assert {s.split(":")[0] for s in adding} == {"source", "dev"}  # analytics: left alone
    for k in range(1, len(adding)):
        interrupt_after(two, k, adding)
        write_meanwhile(env, k)
        converged(env, repl, two, ("analytics", "dev"))
        repl("teardown", "dev", "--drop-tables", config=two)


def test_interrupted_initial_setup_and_setup_after_teardown_converge(env_any, repl):
    """The initial setup of masked tables (after `teardown --drop-tables` the target is
    as new), and setup after a teardown that kept the data (tables to empty first)."""
    env = env_any
    env.run_source(SCHEMA)
    cfg = config(env, DEV_A, name="dev.yaml")
    initial = summaries(cfg)
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    repl("teardown", config=cfg)
    after_teardown = summaries(cfg)
    assert any("empty table" in s for s in after_teardown)
    assert not any("empty table" in s for s in initial)
    for k in range(1, max(len(initial), len(after_teardown))):
        if k < len(after_teardown):
            interrupt_after(cfg, k, after_teardown)
        converged(env, repl, cfg, ("dev",))
        repl("teardown", "--drop-tables", config=cfg)
        if k < len(initial):
            interrupt_after(cfg, k, initial)
            write_meanwhile(env, k)
        converged(env, repl, cfg, ("dev",))
        repl("teardown", config=cfg)


def test_setup_killed_mid_step_converges(env_any, repl, tmp_path):
    """SIGKILL of a real `repl setup` while it waits for the subscriber (its apply
    worker held up by a lock on the target), in a re-copy plan; then setup again."""
    env = env_any
    env.run_source(SCHEMA)
    cfg_a = config(env, DEV_A, ANALYTICS, name="a.yaml")
    cfg_b = config(env, DEV_B, ANALYTICS, name="b.yaml")
    repl("setup", "--wait", "--timeout", "120", config=cfg_a)
    waiting = next(i for i, s in enumerate(summaries(cfg_b), 1) if "wait until repl_dev" in s)
    with env.target("dev") as blocker:
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE public.orders IN ACCESS EXCLUSIVE MODE")
        # A change the apply worker cannot write while the lock is held: the slot does
        # not confirm it, so setup's await_slot step waits.
        env.run_source("UPDATE public.orders SET note = 'held' WHERE id = 50")
        proc = subprocess.Popen(
            [sys.executable, "-m", "replication.cli", "-c", str(cfg_b), "setup"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"})
        try:
            assert proc.stdout is not None
            seen = []
            for line in proc.stdout:
                seen.append(line)
                if line.startswith(f"[{waiting}/"):
                    break
            else:
                raise AssertionError("setup ended before its await step:\n" + "".join(seen))
            time.sleep(0.5)
            assert proc.poll() is None, "setup did not wait: " + "".join(seen)
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(30) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        blocker.execute("ROLLBACK")
    converged(env, repl, cfg_b, ("dev", "analytics"))
    with env.target("dev") as dev:
        assert rows(dev, "SELECT note FROM public.orders WHERE id = 50") == [("held",)]
    # And once more at the very first step of the way back, as soon as it is printed.
    proc = subprocess.Popen(
        [sys.executable, "-m", "replication.cli", "-c", str(cfg_a), "setup"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("[1/"):
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(30)
    converged(env, repl, cfg_a, ("dev", "analytics"))
    wait_until(lambda: repl("status", config=cfg_a, expect=None).exit_code == 0,
               what="status healthy")


DEV_WIDE = """
  dev:
    dsn: "{target:dev}"
    tables:
      public.users:
        columns: [name, email, country]
        mask: {email: email}
      public.orders: {columns: all, where: "id > 30"}
"""

# country leaves users' column list: released from the publication without a copy.
DEV_NARROW = DEV_WIDE.replace("columns: [name, email, country]",
                              "columns: [name, email]\n        exclude: [country]")


def test_interrupted_rename_and_release_converge_from_every_step(env_any, repl):
    """A column production renamed (followed under columns: all) and a column released
    from the config, in one plan, cut after every step."""
    env = env_any
    env.run_source(SCHEMA)
    wide = config(env, DEV_WIDE, name="wide.yaml")
    narrow = config(env, DEV_NARROW, name="narrow.yaml")
    repl("setup", "--wait", "--timeout", "120", config=wide)
    env.run_source("ALTER TABLE public.orders RENAME COLUMN note TO memo")
    steps = summaries(narrow)
    assert any("rename, as production did, column note to memo" in s for s in steps)
    assert any("release country of public.users" in s for s in steps)
    for k in range(1, len(steps)):
        interrupt_after(narrow, k, steps)
        write_meanwhile(env, k)
        converged(env, repl, narrow, ("dev",))
        env.run_source("ALTER TABLE public.orders RENAME COLUMN memo TO note")
        repl("setup", "--wait", "--timeout", "120", config=wide)  # back: users copied
        env.run_source("ALTER TABLE public.orders RENAME COLUMN note TO memo")
TYPES = """
CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN public.zip AS text CHECK (VALUE ~ '^[0-9]{5}$');
CREATE TYPE public.address AS (zip public.zip, street text);
CREATE TABLE public.homes (id int PRIMARY KEY, mood public.mood, address public.address);
INSERT INTO public.homes SELECT g, (ARRAY['sad', 'ok', 'happy']::public.mood[])[g % 3 + 1],
       ROW(lpad(g::text, 5, '0'), 'Elm')::public.address FROM generate_series(1, 30) g;
"""

HOMES = """
  dev:
    dsn: "{target:dev}"
    tables:
      public.homes: {columns: all}
"""


def homes_converged(env, repl, cfg: Path) -> None:
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    assert json.loads(repl("plan", "--json", config=cfg).stdout)["steps"] == []
    query = "SELECT id, mood::text, address::text FROM public.homes ORDER BY id"
    with env.source() as src, env.target("dev") as dev:
        wait_until(lambda: rows(src, query) == rows(dev, query), what="homes in step")


def test_interrupted_type_steps_converge(env_any, repl):
    """Setup cut after each step that creates a type (the types it needs made, the rest
    not), and after each step that renames a type or adds what production added: the
    next setup converges, and a type repl made stays repl's to change."""
    env = env_any
    env.run_source(TYPES)
    cfg = config(env, HOMES, name="homes.yaml")
    initial = summaries(cfg)
    creating = [k for k, s in enumerate(initial, 1) if s.startswith("dev: create ")
                and s.split()[2] in ("enum", "domain", "composite")]
    assert len(creating) == 3
    for k in creating:
        interrupt_after(cfg, k, initial)
        homes_converged(env, repl, cfg)
        repl("teardown", "--drop-tables", config=cfg)
        with env.target("dev") as dev:  # teardown leaves types: as new for the next cut
            dev.execute("DROP TYPE public.address, public.zip, public.mood")
    homes_converged(env, repl, cfg)
    # After a teardown the types are still there, unrecorded (repl's schema went): setup
    # takes each as production's; cut after the first of those steps.
    repl("teardown", "--drop-tables", config=cfg)
    adopting = summaries(cfg)
    recording = [k for k, s in enumerate(adopting, 1)
                 if s.startswith(("dev: record enum", "dev: record domain", "dev: record comp"))]
    assert len(recording) == 3 and not any(" type " in s and "create" in s for s in adopting)
    interrupt_after(cfg, recording[0], adopting)
    homes_converged(env, repl, cfg)
    for k, name in ((1, "feeling"), (2, "mood")):
        env.run_source(f"ALTER TYPE public.{'mood' if k == 1 else 'feeling'} RENAME TO {name}; "
                       f"ALTER TYPE public.{name} ADD VALUE 'new{k}' BEFORE 'ok'; "
                       f"ALTER TYPE public.address ADD ATTRIBUTE extra{k} int")
        with env.source() as src:  # a row that needs the new label and attribute
            src.execute("INSERT INTO public.homes VALUES (%s, %s, %s)",
                        (100 + k, f"new{k}", "(00001,Oak,1)" if k == 1 else "(00001,Oak,2,1)"))
        changing = summaries(cfg)
        assert [s.split()[1] for s in changing] == ["rename", "bring", "bring"], changing
        interrupt_after(cfg, k, changing)
        homes_converged(env, repl, cfg)
