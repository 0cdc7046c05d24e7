"""A slot PostgreSQL invalidated (max_slot_wal_keep_size exceeded while its target was
away): status fails with the remedy, setup recreates subscription and slot and copies
every table again."""

from __future__ import annotations

import json

import pytest

from replication.cluster import installations

from conftest import admin, private_cluster, rows, wait_until

pytestmark = [pytest.mark.pg, pytest.mark.slow]

CONFIG = """
version: 1
source: {{dsn: "{source}"}}
targets:
  analytics:
    dsn: "{target}"
    tables:
      public.items: {{columns: [note]}}
"""


@pytest.fixture(params=sorted({i.major for i in installations()}), ids=lambda m: f"pg{m}")
def small_wal_source(request):
    """A source of its own, keeping at most two WAL segments (32 MB) for slots."""
    with private_cluster(request.param, {
            "max_slot_wal_keep_size": "32MB", "min_wal_size": "32MB", "max_wal_size": "64MB",
            "wal_retrieve_retry_interval": "1s"}, "repl-lost-") as cluster:
        yield cluster


def test_lost_slot_is_unhealthy_and_setup_repairs_it(small_wal_source, repl, tmp_path):
    cluster = small_wal_source
    with admin(cluster.dsn()) as conn:
        conn.execute("CREATE DATABASE prod")
        conn.execute("CREATE DATABASE staging")
    with admin(cluster.dsn("prod")) as src:
        src.execute("CREATE TABLE public.items (id int PRIMARY KEY, note text)")
        src.execute("INSERT INTO public.items SELECT g, 'n' || g FROM generate_series(1, 100) g")
    cfg = tmp_path / "repl.yaml"
    cfg.write_text(CONFIG.format(source=cluster.dsn("prod"), target=cluster.dsn("staging")))
    repl("setup", "--wait", "--timeout", "120", config=cfg)

    with admin(cluster.dsn("staging")) as tgt:
        tgt.execute("ALTER SUBSCRIPTION repl_analytics DISABLE")
    with admin(cluster.dsn("prod")) as src:
        wait_until(lambda: rows(src, "SELECT active FROM pg_replication_slots WHERE "
                                     "slot_name = 'repl_analytics'") == [(False,)],
                   what="slot inactive")
        # While the target is away, status shows the retained WAL growing and warns
        # before the slot reaches max_slot_wal_keep_size.
        retained, warned = [], None
        for step in range(40):
            src.execute("INSERT INTO public.items SELECT g, repeat('w', 500) FROM "
                        "generate_series(100001 + %s * 3000, 100000 + (%s + 1) * 3000) g",
                        (step, step))
            (target,) = json.loads(repl("status", "--json", config=cfg, expect=1)
                                   .stdout)["targets"]
            if target["wal_status"] == "lost":
                break
            retained.append(target["retained_bytes"])
            assert any("has no consumer" in w for w in target["warnings"])
            warned = next((w for w in target["warnings"] + target["problems"]
                           if "max_slot_wal_keep_size" in w or "unreserved" in w), None)
            if warned:
                break
        assert warned, f"no warning while the slot's WAL grew: {retained}"
        assert len(retained) >= 3 and retained == sorted(retained) and \
            retained[-1] > retained[0]
        for _ in range(12):  # WAL segments well past max_slot_wal_keep_size
            src.execute("INSERT INTO public.items SELECT g, repeat('x', 500) FROM "
                        "generate_series((SELECT max(id) FROM public.items) + 1, "
                        "                (SELECT max(id) FROM public.items) + 19000) g")
            src.execute("SELECT pg_switch_wal()")
        src.execute("CHECKPOINT")
        wait_until(lambda: rows(src, "SELECT wal_status FROM pg_replication_slots WHERE "
                                     "slot_name = 'repl_analytics'") == [("lost",)],
                   what="the slot to be invalidated", timeout=60)
        # Keep the re-copy small: in one cluster its own WAL counts against the
        # tiny max_slot_wal_keep_size of this test too.
        src.execute("DELETE FROM public.items WHERE id > 500")
        expected = rows(src, "SELECT count(*) FROM public.items")[0][0]

    report = json.loads(repl("status", "--json", config=cfg, expect=1).stdout)
    (target,) = report["targets"]
    assert target["wal_status"] == "lost"
    assert any("is lost" in p and "recreates" in p for p in target["problems"])
    planned = repl("plan", config=cfg).stdout
    assert "invalidated (wal_status lost)" in planned
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with admin(cluster.dsn("staging")) as tgt:
        assert rows(tgt, "SELECT count(*) FROM public.items") == [(expected,)]
    assert json.loads(repl("status", "--json", config=cfg).stdout)["healthy"] is True
    with admin(cluster.dsn("staging")) as tgt:  # leave nothing behind in the cluster
        tgt.execute("ALTER SUBSCRIPTION repl_analytics DISABLE")
        tgt.execute("ALTER SUBSCRIPTION repl_analytics SET (slot_name = NONE)")
        tgt.execute("DROP SUBSCRIPTION repl_analytics")
