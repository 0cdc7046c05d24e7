"""Smoke test of the benchmark (bench/): it runs end to end at a tiny size, reports a
positive figure for everything it measures, and leaves no server running. The figures
themselves are not asserted: benchmarks report, tests assert behaviour."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from replication.cluster import installations

pytestmark = [pytest.mark.pg, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--rows", "2000", "--burst", "1000", "--lag-rate", "500", "--lag-seconds", "2",
        "--tables", "5", "--loop-rows", "3000", "--profile-rows", "2000", "--repeat", "1"]


def _running_under(path: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if path in cmdline:
                found.append(f"{entry.name}: {cmdline}")
    return found


@pytest.mark.timeout(300)
def test_bench_runs_at_tiny_size(tmp_path: Path) -> None:
    majors = sorted(i.major for i in installations())
    if not majors:
        pytest.skip("no PostgreSQL installation")
    out = tmp_path / "bench.json"
    # One jobs setting for the copy from a snapshot, more workers than cores (the
    # report's oversubscription note); the default 1,2,4 costs twice the copies.
    jobs = (os.cpu_count() or 1) + 1
    done = subprocess.run(
        [sys.executable, "-m", "bench", *TINY, "--jobs", str(jobs), "--major", str(majors[0]),
         "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=290, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-4000:]
    for section in ("Initial copy: table sync vs copy from a snapshot", "oversubscribed",
                    "target (issues 17 and 7)"):
        assert section in done.stdout, section
    r = json.loads(out.read_text())

    assert r["meta"]["rows"] == 2000 and r["meta"]["major"] == majors[0]
    copies = r["initial_copy"]
    assert copies["jobs"] == [jobs] and copies["oversubscribed_jobs"] == [jobs]
    sync, snapshot = copies["table_sync"], copies["snapshot"]
    names = {"plain_users", "dev_users", "plain", "dev"}
    assert set(sync) == set(snapshot) == names
    assert all(set(by_jobs) == {str(jobs)} for by_jobs in snapshot.values())
    everything = [*sync.values(), *(c for by_jobs in snapshot.values() for c in by_jobs.values())]
    for copy in everything:
        assert copy["rows_per_s"] > 0 and copy["setup_wait_seconds"] > 0
        assert copy["repl_cpu_seconds"] > 0 and copy["repl_max_rss_mb"] > 0
        assert all(t["rows_per_s"] > 0 and t["copy_seconds"] > 0
                   for t in copy["tables"].values())
    for name in names:
        assert sync[name]["method"] == "table_sync"
        copy = snapshot[name][str(jobs)]
        assert copy["method"] == "snapshot" and copy["jobs"] == jobs
        assert set(copy["tables"]) == set(sync[name]["tables"])
        for table in copy["tables"].values():  # from repl.initial_copy
            assert table["rows_copied"] == table["rows"] and table["chunks"] > 1
            assert table["started_to_finished_seconds"] >= 0
    for by_method in (sync, {n: c[str(jobs)] for n, c in snapshot.items()}):
        assert by_method["dev"]["masked"] and not by_method["plain"]["masked"]
        # Production's secondary indexes, built on each target after its copy.
        assert by_method["dev"]["indexes_built"] == by_method["plain"]["indexes_built"] == 4
        assert by_method["dev_users"]["indexes_built"] == 2
    assert r["meta"]["secondary_indexes"] == 4
    for name in ("plain_users", "dev_users", "dev"):  # the native key-range route
        assert sync[name]["split"]["rows_per_s"] > 0
    assert sync["dev"]["split"]["subscriptions"] == 3
    assert r["batch"]["executemany"]["rows_per_s"] > 0 and r["batch"]["copy"]["rows"] == 6000
    assert all(v["rows_per_s"] > 0 and v["update_us_per_txn"] > 0
               for v in r["profile"]["triggers"].values())
    assert r["profile"]["transactions"] == 2000
    assert set(r["profile"]["functions"]) >= {"fake_name(name)", "email(email)", "hash(phone)"}
    apply = r["apply_capacity"]
    assert apply["transactions"] == 1000 and apply["wal_bytes"] > 0
    assert set(apply["targets"]) == {"plain", "dev"}
    assert all(t["rows_per_s"] > 0 for t in apply["targets"].values())
    for lag in r["lag"]["targets"].values():
        assert lag["samples"] > 0 and lag["lag_p99_s"] is not None and lag["lag_p99_s"] >= 0
    plane = r["control_plane"]
    assert plane["tables"] == 5 and plane["targets"] == 2
    for key in ("plan_seconds", "setup_seconds", "status_seconds", "max_rss_mb"):
        assert plane[key] > 0, key
    assert all(value is not None and value > 0 for value in r["ratios"].values()), r["ratios"]
    assert all(isinstance(t["met"], bool) for t in r["targets"].values())
    assert {"whole masked copy / COPY batch >= 1.5", "whole masked copy / executemany >= 10",
            "masked users copy / unmasked table sync >= 0.5",
            "unmasked copy / table sync >= 1.0",
            "repl memory during the copy < 150 MB"} <= set(r["targets"])

    # Every server it started is stopped and its files removed.
    workdir = r["meta"]["workdir"]
    assert not Path(workdir).exists()
    assert not _running_under(workdir)
