"""A target server without a free logical replication worker would leave the subscription
waiting silently: check refuses it (guarantee 1), naming the setting."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest
from psycopg import sql

from replication.cluster import LocalCluster, installations

from conftest import admin, rows

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
    """One cluster (source and targets) allowing two logical replication workers."""
    inst = installations()[0]
    cluster = LocalCluster(inst, Path(tempfile.mkdtemp(prefix="repl-workers-")) / "data")
    cluster.init({"max_logical_replication_workers": "2", "fsync": "off"})
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.destroy()
        shutil.rmtree(cluster.datadir.parent, ignore_errors=True)


def write(tmp_path, cluster, names) -> Path:
    cfg = tmp_path / "repl.yaml"
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
    repl("setup", "--wait", "--timeout", "120", config=write(tmp_path, cluster, ["first"]))

    both = write(tmp_path, cluster, ["first", "second"])
    report = json.loads(repl("check", "--json", config=both, expect=1).stdout)
    (problem,) = [p for p in report["problems"] if p["severity"] == "error"]
    assert problem["where"] == "target second"
    assert "max_logical_replication_workers is 2" in problem["message"]
    assert "1 other enabled subscription(s)" in problem["message"]
    assert "nothing was changed" in repl("setup", config=both, expect=2).stderr
    with admin(cluster.dsn("second")) as tgt:
        assert rows(tgt, "SELECT count(*) FROM pg_subscription WHERE subdbid = "
                         "(SELECT oid FROM pg_database WHERE datname = 'second')") == [(0,)]
    repl("teardown", config=write(tmp_path, cluster, ["first"]))
