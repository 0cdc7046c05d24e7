"""`python -m bench`: start throw-away clusters, generate the data, measure everything,
print the figures and write them as JSON. bench/README.md explains each figure.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from . import batch, control_plane, data, initial_copy, profile, report, split, streaming
from .servers import Servers, connect, pgbench_path


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--rows", type=int, default=1_000_000, help="users rows N (events: 2N)")
    p.add_argument("--major", type=int, default=15, help="PostgreSQL major version")
    p.add_argument("--json", type=Path, help="write the results to this file")
    p.add_argument("--burst", type=int, help="pgbench transactions piled up for the apply "
                   "capacity test (default 200,000 x N / 1,000,000, at least 1,000)")
    p.add_argument("--lag-rate", type=int, default=4000, help="pgbench tps during the lag test")
    p.add_argument("--lag-seconds", type=int, default=30, help="length of the lag test")
    p.add_argument("--tables", type=int, default=200, help="tables of the control-plane test")
    p.add_argument("--loop-rows", type=int, default=300_000,
                   help="rows the executemany loop copies at most (it is linear and slow)")
    p.add_argument("--profile-rows", type=int, default=200_000,
                   help="users rows of the trigger profile (at most N)")
    p.add_argument("--split", type=int, default=2,
                   help="also copy users over this many native subscriptions by key range "
                        "(a route repl does not offer; 0 to skip)")
    p.add_argument("--jobs", type=_jobs, default=[1, 2, 4],
                   help="workers of repl's copy from a snapshot, each measured "
                        "(comma-separated; default 1,2,4)")
    p.add_argument("--split-larger-than", dest="copy_split", metavar="SIZE",
                   help="repl setup's --split-larger-than for the copies from a snapshot "
                        "(default: an eighth of the users table, so that every jobs setting "
                        "has chunks to share)")
    p.add_argument("--repeat", type=int, default=2,
                   help="runs of the users copies and of the apply burst (best one kept)")
    p.add_argument("--no-indexes", dest="indexes", action="store_false",
                   help="production without its secondary indexes (so none to mirror), "
                        "as the benchmark was before repl mirrored them")
    p.add_argument("--workdir", type=Path, help="where the clusters live (default: a temp dir)")
    args = p.parse_args(argv)
    if args.burst is None:
        args.burst = max(1000, round(200_000 * args.rows / 1_000_000))
    return args


def _jobs(text: str) -> list[int]:
    jobs = sorted({int(j) for j in text.split(",") if j.strip()})
    if not jobs or jobs[0] < 1:
        raise argparse.ArgumentTypeError("a list of positive numbers, such as 1,2,4")
    return jobs


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> dict:
    rows = args.rows
    servers = Servers(args.major, args.workdir)
    workdir = Path(tempfile.mkdtemp(prefix="configs-", dir=servers.base))
    started = time.perf_counter()
    try:
        log(f"starting PostgreSQL {args.major} source and target clusters in {servers.base}")
        servers.start()
        meta = {"date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "server_version": servers.version(), "major": args.major,
                "cpus": os.cpu_count(), "rows": rows, "load_before": _load(),
                "secondary_indexes": data.INDEX_COUNT if args.indexes else 0,
                "workdir": str(servers.base),
                "settings": "fsync and full_page_writes off, synchronous_commit on, "
                            "shared_buffers 512MB, autovacuum off"}
        results: dict = {"meta": meta}
        source_dsn = servers.create_db(servers.source, "production")
        log("data")
        data.generate(source_dsn, rows, log, args.indexes)
        counts = {"public.users": rows, "public.events": 2 * rows}

        log("1. initial copy through repl (setup --wait)")
        results["initial_copy"] = _initial_copies(args, servers, workdir, source_dsn, counts)

        log("2. batch copies with Python HMAC")
        speed = lambda r: r["rows_per_s"]  # noqa: E731
        results["batch"] = {
            "executemany": _best([batch.executemany_loop(servers, source_dsn, rows,
                                                         args.loop_rows, log)
                                  for _ in range(args.repeat)], speed),
            "copy": _best([batch.copy_stream(servers, source_dsn, rows, log)
                           for _ in range(args.repeat)], speed)}

        log("   trigger profile (COPY into a scratch table on the dev target)")
        results["profile"] = profile.trigger_profile(
            servers.target.dsn("dev"), source_dsn, min(rows, args.profile_rows), log)

        binary = pgbench_path(servers.inst)
        targets = {"plain": servers.target.dsn("plain"), "dev": servers.target.dsn("dev")}
        log("3. streaming apply capacity")
        results["apply_capacity"] = _apply_capacity(args, servers, workdir, targets, binary)
        log("4. lag under load")
        results["lag"] = streaming.lag_under_load(
            servers.source, "production", targets, binary, workdir, rows, args.lag_rate,
            args.lag_seconds, log)
        log("5. control plane")
        results["control_plane"] = control_plane.control_plane(
            servers, workdir, args.tables, log)
    finally:
        servers.stop()
    results["ratios"] = report.ratios(results)
    results["targets"] = report.targets(results)
    meta["load_after"] = _load()
    meta["total_seconds"] = round(time.perf_counter() - started, 1)
    return results


def _best(runs: list[dict], speed) -> dict:
    """The fastest of `runs`, with every run's speed as `samples`."""
    return {**max(runs, key=speed), "samples": [speed(r) for r in runs]}


COPIES = (("plain_users", False, ("public.users",)), ("dev_users", True, ("public.users",)),
          ("plain", False, ("public.users", "public.events")),
          ("dev", True, ("public.users", "public.events")))


def _auto_split(source_dsn: str) -> str:
    """An eighth of the users table (in kB, as repl's --split-larger-than reads it)."""
    with connect(source_dsn) as conn:
        size = conn.execute("SELECT pg_relation_size('public.users')").fetchone()[0]
    return f"{max(8, size // 8 // 1024)}kB"


def _initial_copies(args: argparse.Namespace, servers: Servers, workdir: Path,
                    source_dsn: str, counts: dict[str, int]) -> dict:
    """Each of COPIES (users alone, then users + events; unmasked and masked) by
    PostgreSQL's table sync and from a snapshot with each of `args.jobs` workers; each
    `repeat` times, the best kept (a copy uses both cores: anything else running on the
    machine slows it down). The last whole targets copied, `plain` and `dev`, stay for
    the streaming tests. The native key-range route (`--split`) runs on the table sync
    copies of the last round."""
    split_size = args.copy_split or _auto_split(source_dsn)
    sync_runs: dict[str, list[dict]] = {}
    snap_runs: dict[str, dict[int, list[dict]]] = {}
    last = args.repeat - 1
    for rep in range(args.repeat):
        for name, masked, tables in COPIES:
            kept = not name.endswith("_users") and rep == last
            sync_runs.setdefault(name, []).append(initial_copy.copy_target(
                servers, workdir, source_dsn, name, tables, masked, counts, log))
            if args.split > 1 and rep == last and name != "plain":
                splits = split.split_copy(source_dsn, servers.target.dsn(name),
                                          f"bench_{name}", {t: counts[t] for t in tables},
                                          args.split, log)
                for r in sync_runs[name]:
                    r["split"] = splits
            initial_copy.teardown(servers, workdir, name)
            for n, jobs in enumerate(args.jobs):
                snap_runs.setdefault(name, {}).setdefault(jobs, []).append(
                    initial_copy.copy_target(servers, workdir, source_dsn, name, tables,
                                             masked, counts, log, jobs, split_size))
                if not (kept and n == len(args.jobs) - 1):
                    initial_copy.teardown(servers, workdir, name)

    def speed(name: str):
        if name.endswith("_users"):
            return lambda x: x["tables"]["public.users"]["rows_per_s"]
        return lambda x: x["rows_per_s"]

    cpus = os.cpu_count() or 1
    return {"cpus": cpus, "jobs": args.jobs, "split_larger_than": split_size,
            "oversubscribed_jobs": [j for j in args.jobs if j > cpus],
            "table_sync": {name: _best(r, speed(name)) for name, r in sync_runs.items()},
            "snapshot": {name: {str(jobs): _best(r, speed(name)) for jobs, r in by_jobs.items()}
                         for name, by_jobs in snap_runs.items()}}


def _apply_capacity(args: argparse.Namespace, servers: Servers, workdir: Path,
                    targets: dict[str, str], binary: str) -> dict:
    """`repeat` bursts, the subscriptions enabled in alternating order; best of each."""
    merged: dict = {}
    for rep in range(args.repeat):
        order = dict(reversed(targets.items())) if rep % 2 else dict(targets)
        got = streaming.apply_capacity(servers.source, "production", order, binary, workdir,
                                       args.rows, args.burst, log)
        if not merged:
            merged = {**got, "targets": {}}
        for name, figures in got["targets"].items():
            best = merged["targets"].get(name)
            samples = (best or {}).get("samples", []) + [figures["rows_per_s"]]
            if best is None or figures["rows_per_s"] > best["rows_per_s"]:
                best = figures
            merged["targets"][name] = {**best, "samples": samples}
    return merged


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _terminate(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally that stops the servers


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    signal.signal(signal.SIGTERM, _terminate)
    results = run(args)
    report.print_report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        log(f"results written to {args.json}")
    return 0
