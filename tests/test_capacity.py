"""Server settings check judges: a target server without a free logical replication
worker would leave the subscription waiting silently (refused, naming the setting); a
source that keeps WAL for slots without limit is warned about."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from psycopg import sql

from replication.cluster import installations

from conftest import admin, private_cluster, rows

pytestmark = pytest.mark.pg

CONFIG = """
version: 1
source: {{dsn: "{source}"}}
targets:
{targets}
"""
TARGET = """  {name}:
    dsn: "{dsn}"
    tables:
      public.items: {{columns: [note]}}
"""


@pytest.fixture
def two_workers():
    """One cluster (source and targets) allowing two logical replication workers, and
    keeping WAL for slots without limit."""
    with private_cluster(installations()[0].major, {
            "max_logical_replication_workers": "2", "max_slot_wal_keep_size": "-1"},
            "repl-workers-") as cluster:
        yield cluster


def write(tmp_path, cluster, names) -> Path:
    cfg = tmp_path / f"{'-'.join(names)}.yaml"
    cfg.write_text(CONFIG.format(source=cluster.dsn("prod"), targets="".join(
        TARGET.format(name=n, dsn=cluster.dsn(n)) for n in names)))
    return cfg


def test_no_free_apply_worker_is_refused(two_workers, repl, tmp_path):
    cluster = two_workers
    with admin(cluster.dsn()) as conn:
        for db in ("prod", "first", "second"):
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db)))
    with admin(cluster.dsn("prod")) as src:
        src.execute("CREATE TABLE public.items (id int PRIMARY KEY, note text)")
        src.execute("INSERT INTO public.items SELECT g, 'n' FROM generate_series(1, 10) g")
    first = write(tmp_path, cluster, ["first"])
    checked = json.loads(repl("check", "--json", config=first).stdout)
    assert any(p["where"] == "source" and "max_slot_wal_keep_size is unlimited" in p["message"]
               for p in checked["problems"] if p["severity"] == "warning")
    repl("setup", "--wait", "--timeout", "120", config=first)
    (target,) = json.loads(repl("status", "--json", config=first).stdout)["targets"]
    assert target["safe_wal_size"] is None and target["retained_bytes"] >= 0

    both = write(tmp_path, cluster, ["first", "second"])
    report = json.loads(repl("check", "--json", config=both, expect=2).stdout)
    (problem,) = [p for p in report["problems"] if p["severity"] == "error"]
    assert problem["where"] == "target second"
    assert "max_logical_replication_workers is 2" in problem["message"]
    assert "1 other enabled subscription(s)" in problem["message"]
    assert "nothing was changed" in repl("setup", config=both, expect=2).stderr
    with admin(cluster.dsn("second")) as tgt:
        assert rows(tgt, "SELECT count(*) FROM pg_subscription WHERE subdbid = "
                         "(SELECT oid FROM pg_database WHERE datname = 'second')") == [(0,)]
    # Another enabled subscription in the cluster: first's own keeps streaming, but a
    # table it copies again would wait for a free worker (a warning, not a refusal).
    with admin(cluster.dsn("second")) as tgt:
        tgt.execute(sql.SQL("CREATE SUBSCRIPTION other CONNECTION {} PUBLICATION p WITH "
                            "(connect = false, slot_name = 'other', create_slot = false)")
                    .format(sql.Literal(cluster.dsn("prod"))))
        tgt.execute("ALTER SUBSCRIPTION other ENABLE")
    try:
        checked = json.loads(repl("check", "--json", config=first).stdout)
        (warning,) = [p for p in checked["problems"] if p["where"] == "target first"]
        assert warning["severity"] == "warning"
        assert "copied again" in warning["message"]
    finally:
        with admin(cluster.dsn("second")) as tgt:
            tgt.execute("ALTER SUBSCRIPTION other DISABLE")
            tgt.execute("ALTER SUBSCRIPTION other SET (slot_name = NONE)")
            tgt.execute("DROP SUBSCRIPTION other")
    repl("teardown", config=first)
