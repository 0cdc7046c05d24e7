"""Ratios, issue 7's targets, and the printed table of a benchmark run."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def ratios(r: dict) -> dict:
    copy, batch, apply = r["initial_copy"], r["batch"], r["apply_capacity"]["targets"]
    users_plain = copy["plain_users"]["tables"]["public.users"]["rows_per_s"]
    users_dev = copy["dev_users"]["tables"]["public.users"]["rows_per_s"]
    split = copy["dev_users"].get("split")
    whole_split = copy["dev"].get("split")
    return {
        "whole_copy_masked_split_vs_copy_batch": _ratio(
            whole_split and whole_split["wall_rows_per_s"], batch["copy"]["rows_per_s"]),
        "users_copy_masked_split_vs_unmasked": _ratio(split and split["rows_per_s"],
                                                      users_plain),
        "users_copy_masked_vs_unmasked": _ratio(users_dev, users_plain),
        "users_setup_masked_vs_unmasked": _ratio(copy["dev_users"]["rows_per_s"],
                                                 copy["plain_users"]["rows_per_s"]),
        "whole_copy_masked_vs_unmasked": _ratio(copy["dev"]["rows_per_s"],
                                                copy["plain"]["rows_per_s"]),
        "whole_copy_masked_vs_copy_batch": _ratio(copy["dev"]["rows_per_s"],
                                                  batch["copy"]["rows_per_s"]),
        "whole_copy_masked_vs_executemany": _ratio(copy["dev"]["rows_per_s"],
                                                   batch["executemany"]["rows_per_s"]),
        "apply_masked_vs_unmasked": _ratio(apply["dev"]["rows_per_s"],
                                           apply["plain"]["rows_per_s"]),
    }


def targets(r: dict) -> dict:
    """Issue 7's targets: {name: {"value", "target", "met"}}."""
    q, cp = r["ratios"], r["control_plane"]
    lag = max((t["lag_p99_s"] or 0) for t in r["lag"]["targets"].values())
    checks = {
        "users copy masked/unmasked >= 0.5": (q["users_copy_masked_vs_unmasked"], 0.5, "ge"),
        "users copy masked/unmasked >= 0.35 (floor)": (q["users_copy_masked_vs_unmasked"],
                                                       0.35, "ge"),
        "whole masked copy / COPY batch >= 1.5": (q["whole_copy_masked_vs_copy_batch"], 1.5,
                                                  "ge"),
        "whole masked copy / executemany >= 10": (q["whole_copy_masked_vs_executemany"], 10,
                                                  "ge"),
        "apply masked/unmasked >= 0.6": (q["apply_masked_vs_unmasked"], 0.6, "ge"),
        "lag p99 < 1 s": (lag, 1.0, "lt"),
        "plan + setup < 10 s": (cp["plan_plus_setup_seconds"], 10, "lt"),
        "status < 1 s": (cp["status_seconds"], 1, "lt"),
        "repl memory < 150 MB": (cp["max_rss_mb"], 150, "lt"),
    }
    out = {}
    for name, (value, bound, how) in checks.items():
        met = value is not None and (value >= bound if how == "ge" else value < bound)
        out[name] = {"value": value, "target": bound, "met": met}
    return out


def _n(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value < 100:
        return f"{value:.2f}{unit}"
    return f"{value:,.0f}{unit}"


def print_report(r: dict, console: Console | None = None) -> None:
    console = console or Console()
    m = r["meta"]
    console.print(f"\nrepl benchmark, {m['date']}: PostgreSQL {m['server_version']}, "
                  f"{m['cpus']} cores, N = {m['rows']:,} users + {2 * m['rows']:,} events, "
                  f"{m.get('secondary_indexes', 0)} secondary indexes, load {m['load_before']}")
    t = Table("figure", "value", "unit")
    copy = r["initial_copy"]
    for name in ("plain_users", "dev_users"):
        u = copy[name]["tables"]["public.users"]
        t.add_row(f"copy users only, {'masked' if copy[name]['masked'] else 'unmasked'}",
                  _n(u["rows_per_s"]), f"rows/s ({u['copy_seconds']} s copy, "
                  f"{copy[name]['setup_wait_seconds']} s setup --wait)")
        if copy[name].get("split"):
            s = copy[name]["split"]
            t.add_row(f"  same over {s['subscriptions']} native subscriptions by key range "
                      "(not a repl feature)", _n(s["rows_per_s"]),
                      f"rows/s ({s['copy_seconds']} s copy)")
    for name in ("plain", "dev"):
        c = copy[name]
        t.add_row(f"copy users + events through repl, {'masked' if c['masked'] else 'unmasked'}",
                  _n(c["rows_per_s"]), f"rows/s ({c['setup_wait_seconds']} s setup --wait, "
                  f"{c.get('indexes_built', 0)} indexes built after the copy)")
        if c.get("split"):
            s = c["split"]
            t.add_row(f"  same over {s['subscriptions']} native subscriptions, users in "
                      f"{s['users_parts']} key ranges (not a repl feature)",
                      _n(s["wall_rows_per_s"]), f"rows/s ({s['wall_seconds']} s from CREATE "
                      "SUBSCRIPTION)")
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
    g = Table("issue 7 target", "value", "met")
    for name, v in r["targets"].items():
        g.add_row(name, _n(v["value"]), "yes" if v["met"] else "NO")
    console.print(g)
