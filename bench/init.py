"""`python -m bench.init`: repl init's figures, printed (and with --json written).

1. Detection: precision and recall of the columns flagged personal on the labelled schema
   of bench/labelled.py, judged exactly as `repl init` judges them (inventory.read, then
   detection.judge: names, types and the bounded sample), with every miss and false alarm
   named (column names only).
2. Speed: the wall time of `repl init` (a child process, as a user runs it) on a schema of
   --tables tables of 8 columns and --rows rows each, sampling included.
3. Bounded reads: the time to sample one table of --big-rows rows (through TABLESAMPLE
   SYSTEM), next to the time of a full scan of it (count(*)), and the rows sampled.

It starts a throw-away cluster of its own (or uses --dsn, a database it may fill), and
stops and removes it at the end, also on failure.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from replication.catalog import source_tables
from replication.db import connect as repl_connect
from replication.detection import judge
from replication.inventory import read, sample
from replication.names import QualifiedName

from . import labelled
from .servers import installation, repl_command

SCHEMA = "labelled"


def connect(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True)


def detection(dsn: str) -> dict:
    """Precision and recall on the labelled schema, created in schema `labelled`."""
    with connect(dsn) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(SCHEMA)))
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(SCHEMA)))
        labelled.create(conn, SCHEMA)
    db = repl_connect(dsn, "source", source=True)
    try:
        inv = read(db, [SCHEMA])
    finally:
        db.close()
    flagged = {(f.source.relation.name, c.name)
               for f in inv.tables for c in f.source.columns
               if judge(f.source.relation, c, f.seen.get(c.name)) is not None}
    personal = {(t, c.name) for t, c in labelled.columns() if c.personal}
    hits = flagged & personal
    return {
        "columns": len(labelled.columns()), "personal": len(personal), "flagged": len(flagged),
        "precision": round(len(hits) / len(flagged), 3) if flagged else None,
        "recall": round(len(hits) / len(personal), 3) if personal else None,
        "missed": sorted(f"{t}.{c}" for t, c in personal - flagged),
        "false_alarms": sorted(f"{t}.{c}" for t, c in flagged - personal),
        "sampled_tables": sum(1 for f in inv.tables if f.not_sampled is None),
    }


def wide_schema(dsn: str, tables: int, rows: int) -> None:
    """`tables` tables of 8 columns (3 personal by name, 1 by its values), analyzed."""
    with connect(dsn) as conn:
        conn.execute("DROP SCHEMA IF EXISTS wide CASCADE")
        conn.execute("CREATE SCHEMA wide")
        for n in range(tables):
            table = sql.Identifier("wide", f"table_{n:03d}")
            conn.execute(sql.SQL(
                "CREATE TABLE {} (id bigint PRIMARY KEY, name text, email text, ref text, "
                "amount numeric(10,2), status text, notes text, created_at timestamptz)"
            ).format(table))
            conn.execute(sql.SQL(
                "INSERT INTO {} SELECT i, 'Name ' || i, 'user' || i || '@example.org', "
                "'+49 30 ' || (1000000 + i), i * 1.5, 'open', 'note ' || i, "
                "'2024-01-01'::timestamptz + i * interval '1 hour' "
                "FROM pg_catalog.generate_series(1, %s) AS i").format(table), (rows,))
        conn.execute("ANALYZE")


def init_seconds(dsn: str, workdir: Path) -> tuple[float, int]:
    """Wall time of `repl init --schema wide` as a child process, and its exit code."""
    out = workdir / "wide.yaml"
    started = time.perf_counter()
    done = subprocess.run([*repl_command(), "init", "--source", dsn, "--schema", "wide",
                           "--output", str(out), "--force"], capture_output=True, text=True,
                          check=False, timeout=600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
    return seconds, done.returncode


def big_table(dsn: str, rows: int) -> dict:
    """Sampling a big table reads the pages TABLESAMPLE picks, not the table."""
    with connect(dsn) as conn:
        conn.execute("DROP TABLE IF EXISTS public.big")
        conn.execute("CREATE TABLE public.big (id bigint PRIMARY KEY, email text, notes text)")
        conn.execute("INSERT INTO public.big SELECT i, 'user' || i || '@example.org', "
                     "repeat('x', 80) FROM pg_catalog.generate_series(1, %s) AS i", (rows,))
        conn.execute("VACUUM ANALYZE public.big")
        started = time.perf_counter()
        conn.execute("SELECT count(*) FROM public.big").fetchone()
        scan = time.perf_counter() - started
    db = repl_connect(dsn, "source", source=True)
    try:
        table = source_tables(db, [QualifiedName("public", "big")])[QualifiedName("public",
                                                                                "big")]
        started = time.perf_counter()
        seen, why_not = sample(db, table)
        seconds = time.perf_counter() - started
    finally:
        db.close()
    return {"rows": rows, "sample_ms": round(seconds * 1000, 1),
            "full_scan_ms": round(scan * 1000, 1), "email_detected": bool(
                seen.get("email") and seen["email"].kind == "email"), "not_sampled": why_not}


def run(args: argparse.Namespace) -> dict:
    from replication.cluster import LocalCluster  # only when it starts its own server

    base = Path(tempfile.mkdtemp(prefix="repl-bench-init-"))
    cluster = None
    try:
        dsn = args.dsn
        if dsn is None:
            cluster = LocalCluster(installation(args.major), base / "data")
            cluster.init({"fsync": "off", "wal_level": "logical"})
            cluster.start()
            with connect(cluster.dsn()) as conn:
                conn.execute("CREATE DATABASE bench_init")
            dsn = cluster.dsn("bench_init")
        with connect(dsn) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        figures = {"server_version": version, "detection": detection(dsn)}
        wide_schema(dsn, args.tables, args.rows)
        seconds, code = init_seconds(dsn, base)
        figures["init"] = {"tables": args.tables, "rows": args.rows,
                           "seconds": round(seconds, 2), "exit_code": code}
        if args.big_rows:
            figures["big_table"] = big_table(dsn, args.big_rows)
        return figures
    finally:
        if cluster is not None:
            cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


def report(figures: dict) -> str:
    d, i = figures["detection"], figures["init"]
    lines = [
        f"PostgreSQL {figures['server_version']}",
        f"detection: {d['columns']} labelled columns, {d['personal']} personal, "
        f"{d['flagged']} flagged: precision {d['precision']}, recall {d['recall']}",
        f"  missed: {', '.join(d['missed']) or 'none'}",
        f"  false alarms: {', '.join(d['false_alarms']) or 'none'}",
        f"repl init of {i['tables']} tables ({i['rows']} rows each): {i['seconds']} s "
        f"(exit {i['exit_code']})",
    ]
    if big := figures.get("big_table"):
        lines.append(f"sample of a {big['rows']:,}-row table: {big['sample_ms']} ms "
                     f"(a full scan: {big['full_scan_ms']} ms; e-mail addresses detected: "
                     f"{big['email_detected']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.init", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--major", type=int, default=15, help="PostgreSQL major version")
    p.add_argument("--dsn", help="use this database instead of a cluster of its own")
    p.add_argument("--tables", type=int, default=500, help="tables of the speed test")
    p.add_argument("--rows", type=int, default=50, help="rows of each of those tables")
    p.add_argument("--big-rows", type=int, default=2_000_000,
                   help="rows of the table whose sample is timed (0 to skip)")
    p.add_argument("--json", type=Path, help="write the figures to this file")
    args = p.parse_args(argv)
    figures = run(args)
    print(report(figures))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0 if figures["init"]["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
