"""Apply conflicts (issue 6): a row written directly into a target table, then the same key
inserted on the source. status must name the stuck subscription, its error count and the
way out; `repl skip` gets it past the failing transaction without copying everything
again; `disable_on_error` stops the subscription instead of retrying."""

from __future__ import annotations

import json
import re
import time

import pytest

from conftest import rows, wait_until

pytestmark = pytest.mark.pg

SCHEMA = """
CREATE TABLE public.users (id int PRIMARY KEY, name text, email text);
CREATE TABLE public.events (id int PRIMARY KEY, kind text);
INSERT INTO public.users SELECT g, 'u' || g, 'u' || g || '@example.com'
  FROM generate_series(1, 20) g;
INSERT INTO public.events SELECT g, 'k' FROM generate_series(1, 10) g;
"""

CONFIG = """
version: 1
source: {dsn: "{source}"}
masking: {secret: s3cret-for-tests}
targets:
  dev:
    dsn: "{target:dev}"
    disable_on_error: %s
    read_only: false  # a local row is what makes the conflict
    tables:
      public.users: {columns: [name, email], mask: {email: email}}
      public.events: {columns: all}
"""


def status_json(repl, cfg) -> dict:
    return json.loads(repl("status", "--json", config=cfg, expect=None).stdout)


def make_conflict(env) -> None:
    with env.target("dev") as tgt:
        tgt.execute("INSERT INTO public.users (id, name, email) VALUES (100, 'by hand', 'x')")
    with env.source() as src:
        src.execute("INSERT INTO public.users VALUES (100, 'from prod', 'p@example.com')")
        src.execute("INSERT INTO public.events VALUES (100, 'same transaction? no')")


@pytest.mark.parametrize("disable_on_error", [False, True], ids=["retrying", "disable_on_error"])
def test_conflict_is_reported_and_skip_resumes_replication(env_any, repl, disable_on_error):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG % str(disable_on_error).lower())
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.target("dev") as tgt:
        assert rows(tgt, "SELECT subdisableonerr FROM pg_subscription") == [(disable_on_error,)]
    make_conflict(env)

    def failing() -> tuple[dict, dict, str] | None:
        # Not the first unhealthy report: that may be a transient one ("has no running
        # apply worker" while the worker restarts) before the watch sees the failure;
        # and PostgreSQL disables a subscription (disable_on_error) just after counting
        # its error.
        report = status_json(repl, cfg)
        (dev,) = report["targets"]
        problem = next((p for p in dev["problems"] if "is failing" in p), None)
        if problem is None or (disable_on_error and dev["enabled"]):
            return None
        return report, dev, problem

    report, dev, problem = wait_until(failing, timeout=60,
                                      what="status to report the subscription failing")
    assert report["healthy"] is False and dev["healthy"] is False
    assert "repl_dev" in problem and "repl skip dev" in problem
    assert "pg_stat_subscription_stats" in problem and dev["apply_errors"] >= 1
    if not disable_on_error:  # the count is seen growing while the slot stands still
        assert re.search(r"apply error count in pg_stat_subscription_stats rose from \d+ to "
                         r"\d+ in \d+ s while its slot stood still", problem), problem
    if disable_on_error:
        assert "disable_on_error" in problem and dev["enabled"] is False
    human = repl("status", config=cfg, expect=1)
    assert "UNHEALTHY" in human.stdout
    started = time.monotonic()  # a scrape answers within Prometheus' default timeout
    scraped = repl("metrics", config=cfg).stdout
    assert time.monotonic() - started < 8
    assert 'repl_target_healthy{target="dev"} 0' in scraped

    skipped = json.loads(repl("skip", "dev", "--json", config=cfg).stdout)
    assert skipped["tables"] == ["public.users"] and skipped["changes"] == 1
    with env.source() as src:
        src.execute("INSERT INTO public.users VALUES (101, 'after', 'a@example.com')")
    with env.target("dev") as tgt:
        wait_until(lambda: rows(tgt, "SELECT name FROM public.users WHERE id = 101")
                   == [("after",)], what="replication past the skipped transaction")
        # The event was committed on its own, after the conflicting insert: not skipped.
        assert rows(tgt, "SELECT kind FROM public.events WHERE id = 100") == \
            [("same transaction? no",)]
        assert rows(tgt, "SELECT name FROM public.users WHERE id = 100") == [("by hand",)]
    wait_until(lambda: status_json(repl, cfg)["healthy"], timeout=60, what="healthy again")
    assert repl("verify", config=cfg, expect=1).exit_code == 1  # row 100 differs
    repl("resync", "dev", "public.users", "--wait", "--timeout", "120", config=cfg)
    repl("verify", config=cfg)
    with env.target("dev") as tgt:
        assert rows(tgt, "SELECT name FROM public.users WHERE id = 100") == [("from prod",)]


@pytest.mark.parametrize("disable_on_error", [False, True], ids=["retrying", "disable_on_error"])
def test_skip_refuses_unless_the_subscription_is_failing_now(env_any, repl, disable_on_error):
    """Error counts only grow: after a conflict was resolved by hand (or a connection was
    lost), skip must not drop the next transaction, which applies fine."""
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG % str(disable_on_error).lower())
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    assert "no apply error" in repl("skip", "dev", config=cfg, expect=1).stderr
    make_conflict(env)
    wait_until(lambda: not status_json(repl, cfg)["healthy"], timeout=60,
               what="status to report the conflict")
    with env.target("dev") as tgt:  # the first way out: remove the conflicting row
        tgt.execute("DELETE FROM public.users WHERE id = 100")
        if disable_on_error:
            tgt.execute("ALTER SUBSCRIPTION repl_dev ENABLE")
        wait_until(lambda: rows(tgt, "SELECT name FROM public.users WHERE id = 100")
                   == [("from prod",)], what="the conflicting row replicated")
    if disable_on_error:  # stopped by hand now, with errors counted
        with env.target("dev") as tgt:
            tgt.execute("ALTER SUBSCRIPTION repl_dev DISABLE")
    with env.source() as src:
        src.execute("INSERT INTO public.users VALUES (102, 'next', 'n@example.com')")
    refused = repl("skip", "dev", config=cfg, expect=1).stderr
    assert "is not failing now" in refused and "nothing was skipped" in refused
    with env.target("dev") as tgt:
        wait_until(lambda: rows(tgt, "SELECT name FROM public.users WHERE id = 102")
                   == [("next",)], what="the next transaction applied, not skipped")
        assert rows(tgt, "SELECT subenabled FROM pg_subscription") == [(True,)]
    repl("skip", "nope", config=cfg, expect=2)


def test_setup_wait_gives_up_on_a_copy_that_keeps_failing(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    with env.target("dev") as tgt:  # a target table that refuses one of the rows
        tgt.execute("CREATE TABLE public.events (id int PRIMARY KEY, kind text "
                    "CHECK (id <> 7))")
    cfg = env.write_config(CONFIG % "false")
    # From a snapshot (a new target's default): setup's own copy retries the chunk, then
    # stops with the server's reason, and drops its slot.
    result = repl("setup", config=cfg, expect=1)
    assert "the copy of public.events (from public.events) failed 3 times: new row for " \
           'relation "events" violates check constraint "events_id_check"' in result.stderr
    with env.source() as src:
        assert rows(src, "SELECT count(*) FROM pg_replication_slots") == [(0,)]
    (dev,) = status_json(repl, cfg)["targets"]
    assert not dev["healthy"] and any("the initial copy from a snapshot stopped at" in p
                                      for p in dev["problems"])
    # PostgreSQL's table sync retries for ever: `setup --wait` gives up on it.
    result = repl("setup", "--table-sync", "--wait", "--timeout", "120", config=cfg, expect=1)
    assert "target dev: the copy of public.events failed 3 times while waiting" \
        in result.stderr
    (dev,) = status_json(repl, cfg)["targets"]
    assert dev["sync_errors"] >= 3 and not dev["healthy"]
    assert any("public.events" in p and "failed" in p for p in dev["problems"])


def test_setup_wait_stops_when_apply_cannot_happen(env_any, repl):
    """No wait without a bound: a setup that must wait for the subscriber (a table to copy
    again) while apply fails on a conflict stops, naming the cause and the way out."""
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG % "false")
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    make_conflict(env)
    refiltered = env.write_config((CONFIG % "false").replace(
        "public.events: {columns: all}", "public.events: {columns: all, where: 'id > 1'}"),
        "refiltered.yaml")
    started = time.monotonic()
    failed = repl("setup", "--wait", config=refiltered, expect=1)
    assert time.monotonic() - started < 90
    assert "wait until repl_dev has applied what was sent before" in failed.stdout
    # Stopped in the wait for what was sent before the re-copy, or in the wait for the
    # copy (which the stuck apply worker would bring to `ready`): the cause is named.
    assert re.search(r"(which cannot happen|the copies cannot finish): subscription repl_dev "
                     r"fails to apply: its apply error count rose from", failed.stderr)
    assert "a conflict: `repl status` shows it and the ways out" in failed.stderr
