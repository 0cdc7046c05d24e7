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


@pytest.mark.timeout(180)
def test_bench_runs_at_tiny_size(tmp_path: Path) -> None:
    majors = sorted(i.major for i in installations())
    if not majors:
        pytest.skip("no PostgreSQL installation")
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", *TINY, "--major", str(majors[0]), "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=170, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-4000:]
    assert "issue 7 target" in done.stdout
    r = json.loads(out.read_text())

    assert r["meta"]["rows"] == 2000 and r["meta"]["major"] == majors[0]
    copies = r["initial_copy"]
    assert set(copies) == {"plain_users", "dev_users", "plain", "dev"}
    for copy in copies.values():
        assert copy["rows_per_s"] > 0 and copy["setup_wait_seconds"] > 0
        assert all(t["rows_per_s"] > 0 for t in copy["tables"].values())
    assert copies["dev"]["masked"] and not copies["plain"]["masked"]
    # Production's secondary indexes, built on each target after its copy.
    assert r["meta"]["secondary_indexes"] == 4
    assert copies["dev"]["indexes_built"] == copies["plain"]["indexes_built"] == 4
    assert copies["dev_users"]["indexes_built"] == 2
    for name in ("plain_users", "dev_users", "dev"):  # the native key-range route
        assert copies[name]["split"]["rows_per_s"] > 0
    assert copies["dev"]["split"]["subscriptions"] == 3
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

    # Every server it started is stopped and its files removed.
    workdir = r["meta"]["workdir"]
    assert not Path(workdir).exists()
    assert not _running_under(workdir)
