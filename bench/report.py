"""Ratios, issue 7's targets, and the printed table of a benchmark run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


USERS = "public.users"


def _users_speed(copy: dict) -> float:
    return copy["tables"][USERS]["rows_per_s"]


def best_jobs(r: dict, name: str) -> tuple[str, dict]:
    """The fastest jobs setting of the copy from a snapshot of target `name`: by the users
    table's copy for users alone, by `setup --wait` for a whole target."""
    runs = r["initial_copy"]["snapshot"][name]
    speed = _users_speed if name.endswith("_users") else (lambda c: c["rows_per_s"])
    return max(runs.items(), key=lambda item: speed(item[1]))


def _jobs(jobs: int | str) -> str:
    return f"{jobs} job{'' if int(jobs) == 1 else 's'}"


def ratios(r: dict) -> dict:
    copy, batch, apply = r["initial_copy"], r["batch"], r["apply_capacity"]["targets"]
    sync = copy["table_sync"]
    users_plain, users_dev = _users_speed(sync["plain_users"]), _users_speed(sync["dev_users"])
    split = sync["dev_users"].get("split")
    whole_split = sync["dev"].get("split")
    snap = {name: best_jobs(r, name)[1] for name in copy["snapshot"]}
    return {
        # PostgreSQL's table sync (issue 7's figures)
        "users_copy_masked_vs_unmasked": _ratio(users_dev, users_plain),
        "users_copy_masked_split_vs_unmasked": _ratio(split and split["rows_per_s"],
                                                      users_plain),
        "users_setup_masked_vs_unmasked": _ratio(sync["dev_users"]["rows_per_s"],
                                                 sync["plain_users"]["rows_per_s"]),
        "whole_copy_masked_vs_unmasked": _ratio(sync["dev"]["rows_per_s"],
                                                sync["plain"]["rows_per_s"]),
        "whole_copy_masked_vs_copy_batch": _ratio(sync["dev"]["rows_per_s"],
                                                  batch["copy"]["rows_per_s"]),
        "whole_copy_masked_vs_executemany": _ratio(sync["dev"]["rows_per_s"],
                                                   batch["executemany"]["rows_per_s"]),
        "whole_copy_masked_split_vs_copy_batch": _ratio(
            whole_split and whole_split["wall_rows_per_s"], batch["copy"]["rows_per_s"]),
        # the copy from a snapshot, its best jobs setting (issue 17)
        "snapshot_users_copy_masked_vs_unmasked_table_sync": _ratio(
            _users_speed(snap["dev_users"]), users_plain),
        "snapshot_users_copy_unmasked_vs_table_sync": _ratio(
            _users_speed(snap["plain_users"]), users_plain),
        "snapshot_users_copy_masked_vs_table_sync": _ratio(
            _users_speed(snap["dev_users"]), users_dev),
        "snapshot_whole_copy_unmasked_vs_table_sync": _ratio(snap["plain"]["rows_per_s"],
                                                             sync["plain"]["rows_per_s"]),
        "snapshot_whole_copy_masked_vs_table_sync": _ratio(snap["dev"]["rows_per_s"],
                                                           sync["dev"]["rows_per_s"]),
        "snapshot_whole_copy_masked_vs_copy_batch": _ratio(snap["dev"]["rows_per_s"],
                                                           batch["copy"]["rows_per_s"]),
        "snapshot_whole_copy_masked_vs_executemany": _ratio(
            snap["dev"]["rows_per_s"], batch["executemany"]["rows_per_s"]),
        "apply_masked_vs_unmasked": _ratio(apply["dev"]["rows_per_s"],
                                           apply["plain"]["rows_per_s"]),
    }


def targets(r: dict) -> dict:
    """Issue 17's targets for the initial copy (from a snapshot, its best jobs setting)
    and issue 7's others: {name: {"value", "target", "met", "figures"}}."""
    q, cp, copy = r["ratios"], r["control_plane"], r["initial_copy"]
    sync, batch = copy["table_sync"], r["batch"]
    lag = max((t["lag_p99_s"] or 0) for t in r["lag"]["targets"].values())
    dev_jobs, dev = best_jobs(r, "dev")
    users_jobs, users = best_jobs(r, "dev_users")
    plain_jobs, plain = best_jobs(r, "plain")
    snapshots = [c for runs in copy["snapshot"].values() for c in runs.values()]
    heaviest = max(snapshots, key=lambda c: c["repl_max_rss_mb"])
    whole = (f"dev, {_jobs(dev_jobs)}: {dev['rows_per_s']:,} rows/s "
             f"({dev['setup_wait_seconds']} s setup --wait)")
    checks = {
        "whole masked copy / COPY batch >= 1.5": (
            q["snapshot_whole_copy_masked_vs_copy_batch"], 1.5, "ge",
            f"{whole} vs {batch['copy']['rows_per_s']:,} rows/s"),
        "whole masked copy / executemany >= 10": (
            q["snapshot_whole_copy_masked_vs_executemany"], 10, "ge",
            f"{whole} vs {batch['executemany']['rows_per_s']:,} rows/s"),
        "masked users copy / unmasked table sync >= 0.5": (
            q["snapshot_users_copy_masked_vs_unmasked_table_sync"], 0.5, "ge",
            f"dev_users, {_jobs(users_jobs)}: {_users_speed(users):,} rows/s "
            f"({users['tables'][USERS]['copy_seconds']} s) vs plain_users, table sync: "
            f"{_users_speed(sync['plain_users']):,} rows/s "
            f"({sync['plain_users']['tables'][USERS]['copy_seconds']} s)"),
        "unmasked copy / table sync >= 1.0": (
            q["snapshot_whole_copy_unmasked_vs_table_sync"], 1.0, "ge",
            f"plain, {_jobs(plain_jobs)}: {plain['setup_wait_seconds']} s setup --wait vs "
            f"table sync {sync['plain']['setup_wait_seconds']} s"),
        "repl memory during the copy < 150 MB": (
            heaviest["repl_max_rss_mb"], 150, "lt",
            f"peak of {len(snapshots)} copies from a snapshot: {heaviest['target']}, "
            f"{_jobs(heaviest['jobs'])}"),
        "apply masked/unmasked >= 0.6": (q["apply_masked_vs_unmasked"], 0.6, "ge", ""),
        "lag p99 < 1 s": (lag, 1.0, "lt", "the slower target"),
        "plan + setup < 10 s": (cp["plan_plus_setup_seconds"], 10, "lt",
                                f"{cp['tables']} tables x {cp['targets']} targets"),
        "status < 1 s": (cp["status_seconds"], 1, "lt", ""),
        "repl memory < 150 MB": (cp["max_rss_mb"], 150, "lt", "control plane commands"),
    }
    out = {}
    for name, (value, bound, how, figures) in checks.items():
        met = value is not None and (value >= bound if how == "ge" else value < bound)
        out[name] = {"value": value, "target": bound, "met": met, "figures": figures}
    return out


def _n(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value < 100:
        return f"{value:.2f}{unit}"
    return f"{value:,.0f}{unit}"


def print_report(r: dict, console: Console | None = None) -> None:
    console = console or Console()
    if not console.is_terminal:  # into a file or a pipe: rich would wrap at 80 columns
        console.width = max(console.width, 180)
    m = r["meta"]
    console.print(f"\nrepl benchmark, {m['date']}: PostgreSQL {m['server_version']}, "
                  f"{m['cpus']} cores, N = {m['rows']:,} users + {2 * m['rows']:,} events, "
                  f"{m.get('secondary_indexes', 0)} secondary indexes, load {m['load_before']}")
    _print_copies(r, console)
    t = Table("figure", "value", "unit")
    for name, label in (("copy", "batch COPY out/in, Python HMAC"),
                        ("executemany", "batch executemany loop, Python HMAC")):
        b = r["batch"][name]
        t.add_row(label, _n(b["rows_per_s"]), f"rows/s ({b['rows']:,} rows, {b['seconds']} s)")
    a = r["apply_capacity"]
    for name, v in a["targets"].items():
        t.add_row(f"apply backlog of {a['transactions']:,} txns, {name}", _n(v["rows_per_s"]),
                  f"rows/s ({v['seconds']} s; CPU/txn: apply worker "
                  f"{v.get('apply_worker_cpu_us_per_txn')} us, walsender "
                  f"{v.get('walsender_cpu_us_per_txn')} us)")
    lag = r["lag"]
    for name, v in lag["targets"].items():
        t.add_row(f"lag at {lag['pgbench_tps']:,} tps, {name}",
                  f"{_n(v['lag_p50_s'])} / {_n(v['lag_p99_s'])}", "s p50 / p99")
        t.add_row("", f"{_n(v['lag_p50_bytes'])} / {_n(v['lag_p99_bytes'])}", "bytes p50 / p99")
    cp = r["control_plane"]
    for key, label in (("plan_seconds", "repl plan"), ("setup_seconds", "repl setup (no copy)"),
                       ("status_seconds", "repl status"), ("setup_again_seconds",
                                                           "repl setup again (no-op)")):
        t.add_row(f"{label}, {cp['tables']} tables x {cp['targets']} targets", _n(cp[key]), "s")
    t.add_row("repl peak memory", _n(cp["max_rss_mb"]), "MB RSS")
    if r.get("profile"):
        for name, v in r["profile"]["triggers"].items():
            t.add_row(f"trigger profile: COPY users with {name}", _n(v["rows_per_s"]),
                      f"rows/s ({_n(v['ratio'])}x, {_n(v['us_per_row'])} us/row extra; "
                      f"UPDATE per transaction {_n(v['update_us_added'])} us extra)")
    if r.get("profile"):
        t.add_row("per value, in a SELECT: " + ", ".join(
            f"{k} {v} us" for k, v in r["profile"]["functions"].items()), "", "")
    console.print(t)
    q = Table("ratio", "value")
    for name, value in r["ratios"].items():
        q.add_row(name, _n(value))
    console.print(q)
    g = Table("target (issues 17 and 7)", "value", "met", "figures")
    for name, v in r["targets"].items():
        g.add_row(name, _n(v["value"]), "met" if v["met"] else "NOT MET", v.get("figures", ""))
    console.print(g)


LABELS = {"plain_users": "users alone, unmasked", "dev_users": "users alone, masked",
          "plain": "users + events, unmasked", "dev": "users + events, masked"}


def _print_copies(r: dict, console: Console) -> None:
    """The initial copies side by side: table sync against the copy from a snapshot with
    each jobs setting, per target."""
    copy = r["initial_copy"]
    over = set(copy.get("oversubscribed_jobs", []))
    t = Table("initial copy (repl setup --wait)", "how", "rows/s", "setup --wait s",
              "copy s per table (rows/s)", "repl CPU s", "repl MB",
              title=f"Initial copy: table sync vs copy from a snapshot ("
                    f"--split-larger-than {copy['split_larger_than']}; {copy['cpus']} cores)")
    for name, label in LABELS.items():
        runs = [("table sync", copy["table_sync"][name])]
        runs += [(f"snapshot, {_jobs(jobs)}" + (" *" if int(jobs) in over else ""), c)
                 for jobs, c in copy["snapshot"][name].items()]
        for n, (how, c) in enumerate(runs):
            tables = ", ".join(
                f"{table.split('.')[-1]} {v['copy_seconds']} ({_n(v['rows_per_s'])}"
                + (f"; {v['chunks']} chunks" if "chunks" in v else "") + ")"
                for table, v in c["tables"].items())
            t.add_row(label if n == 0 else "", how, _n(c["rows_per_s"]),
                      _n(c["setup_wait_seconds"]), tables, _n(c.get("repl_cpu_seconds")),
                      _n(c["repl_max_rss_mb"]))
        split = copy["table_sync"][name].get("split")
        if split:
            parts = (f"users in {split['users_parts']} key ranges" if name == "dev"
                     else "by key range")
            t.add_row("", f"{split['subscriptions']} native subscriptions, {parts} "
                          "(not a repl feature)",
                      _n(split["wall_rows_per_s"]), _n(split["wall_seconds"]),
                      f"{split['copy_seconds']} ({_n(split['rows_per_s'])})", "", "")
    console.print(t)
    if over:
        console.print(f"* {', '.join(str(j) for j in sorted(over))} workers on "
                      f"{copy['cpus']} cores: oversubscribed (more copy workers than cores; "
                      "they share the cores with both servers' backends).")
