"""What a masking trigger costs, on the dev target's server.

The same sample of users rows (raw, read from the source) is COPYed into a scratch
table of the dev target with, in turn: no trigger; a no-op BEFORE ROW trigger without and
with `SECURITY DEFINER SET search_path` (the floor of any trigger: COPY then inserts row
by row instead of in batches; the SPEC requires the SET clause); the skeleton of repl's
trigger (its per-column tests, constants assigned); three unkeyed sha256(); three
HMAC-SHA256 (two sha256() each); and repl's own masking trigger of public.users
(fake_name, email, hash). Each is also timed per transaction, as the apply worker runs
it: single-row UPDATEs of a masked column, each committed on its own (a procedure on the
server, so no client round trip is counted). Then each masking function alone, evaluated
over the sample in a SELECT, to see where the trigger's time goes.
"""

from __future__ import annotations

import time

import psycopg
from psycopg import sql

from replication.masking_sql import padded_keys

from .data import MASKS, SECRET
from .servers import connect

SCRATCH = sql.Identifier("public", "bench_profile")
SCHEMA = sql.Identifier("bench_profile")
BURST = sql.Identifier("bench_profile", "burst")
DEFINER = "SECURITY DEFINER SET search_path = pg_catalog, pg_temp"
TESTS = "IF TG_OP = 'INSERT' OR NEW.{c}::text IS DISTINCT FROM OLD.{c}::text THEN " \
        "NEW.{c} := {value}; END IF;"

# name: (trigger function body, function options)
BODIES = {
    "no-op, without SECURITY DEFINER and SET": ("BEGIN RETURN NEW; END", ""),
    "no-op": ("BEGIN RETURN NEW; END", DEFINER),
    "repl's tests, constants assigned": ("BEGIN " + " ".join(
        TESTS.format(c=c, value="'x'") for c in ("email", "name", "phone"))
        + " RETURN NEW; END", DEFINER),
    "3x sha256 (unkeyed)": ("""BEGIN
        NEW.name := pg_catalog.encode(pg_catalog.sha256(repl.utf8(NEW.name)), 'hex');
        NEW.email := pg_catalog.encode(pg_catalog.sha256(repl.utf8(NEW.email)), 'hex');
        NEW.phone := pg_catalog.encode(pg_catalog.sha256(repl.utf8(NEW.phone)), 'hex');
        RETURN NEW; END""", DEFINER),
    "3x HMAC-SHA256": ("""DECLARE ikey bytea := {ikey}; okey bytea := {okey}; BEGIN
        NEW.name := pg_catalog.encode(repl.prf(repl.utf8(NEW.name), ikey, okey), 'hex');
        NEW.email := pg_catalog.encode(repl.prf(repl.utf8(NEW.email), ikey, okey), 'hex');
        NEW.phone := pg_catalog.encode(repl.prf(repl.utf8(NEW.phone), ikey, okey), 'hex');
        RETURN NEW; END""", DEFINER),
}
REPEATS = 2
MAX_TRANSACTIONS = 20_000


def _sample(source_dsn: str, rows: int) -> bytes:
    with connect(source_dsn) as conn, conn.cursor().copy(sql.SQL(
            "COPY (SELECT * FROM public.users ORDER BY id LIMIT {}) TO STDOUT").format(
                sql.Literal(rows))) as copy:
        return b"".join(bytes(block) for block in copy)


def _copy_in(conn: psycopg.Connection, payload: bytes) -> float:
    """Best of REPEATS timed COPYs of `payload` into the emptied scratch table."""
    best = float("inf")
    for _ in range(REPEATS):
        conn.execute(sql.SQL("TRUNCATE {}").format(SCRATCH))
        started = time.perf_counter()
        with conn.cursor().copy(sql.SQL("COPY {} FROM STDIN").format(SCRATCH)) as copy:
            for at in range(0, len(payload), 1 << 20):
                copy.write(payload[at:at + (1 << 20)])
        best = min(best, time.perf_counter() - started)
    return best


def _updates(conn: psycopg.Connection, transactions: int) -> float:
    """Best of REPEATS runs of `transactions` single-row UPDATEs of users.email on the
    scratch table (rows 1..transactions), each its own transaction, as in the apply
    worker; each run writes other values, so that every UPDATE changes the column."""
    best = float("inf")
    for run in range(REPEATS):
        started = time.perf_counter()
        conn.execute(sql.SQL("CALL {}({}, {})").format(
            BURST, sql.Literal(transactions), sql.Literal(run)))
        best = min(best, time.perf_counter() - started)
    return best


def _trigger(conn: psycopg.Connection, function: sql.Composable | None) -> None:
    conn.execute(sql.SQL("DROP TRIGGER IF EXISTS t ON {}").format(SCRATCH))
    if function is not None:
        conn.execute(sql.SQL("CREATE TRIGGER t BEFORE INSERT OR UPDATE ON {} FOR EACH ROW "
                             "EXECUTE FUNCTION {}()").format(SCRATCH, function))


def _setup(conn: psycopg.Connection, ikey: bytes, okey: bytes) -> dict:
    """The scratch schema, table, burst procedure and trigger functions; returns the
    trigger functions by name (None: no trigger)."""
    repl_trigger = conn.execute(
        "SELECT tgfoid::regproc::text FROM pg_catalog.pg_trigger "
        "WHERE tgrelid = 'public.users'::regclass AND tgname = 'repl_mask'").fetchone()[0]
    conn.execute(sql.SQL("CREATE SCHEMA {}").format(SCHEMA))
    # Its key but none of the indexes repl built after production's: the profile is of
    # triggers (some assign one constant to every row, which a unique index would refuse).
    conn.execute(sql.SQL("CREATE TABLE {} (LIKE public.users INCLUDING ALL EXCLUDING INDEXES)")
                 .format(SCRATCH))
    conn.execute(sql.SQL("ALTER TABLE {} ADD PRIMARY KEY (id)").format(SCRATCH))
    conn.execute(sql.SQL(
        "CREATE PROCEDURE {}(n int, run int) LANGUAGE plpgsql AS $body$ BEGIN "
        "FOR i IN 1 .. n LOOP "
        "UPDATE {} SET email = 'p' || run || '.' || i || '@example.org' WHERE id = i; "
        "COMMIT; END LOOP; END $body$").format(BURST, SCRATCH))
    functions: dict[str, sql.Composable | None] = {"no trigger": None}
    for i, (name, (body, options)) in enumerate(BODIES.items()):
        fn = sql.Identifier("bench_profile", f"f{i}")
        text = body.format(ikey=sql.Literal(ikey).as_string(conn),
                           okey=sql.Literal(okey).as_string(conn))
        conn.execute(sql.SQL("CREATE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql {} AS {}")
                     .format(fn, sql.SQL(options), sql.Literal(text)))
        functions[name] = fn
    functions["repl mask trigger"] = sql.Identifier(*repl_trigger.split("."))
    return functions


def trigger_profile(dev_dsn: str, source_dsn: str, rows: int, log=print) -> dict:
    payload = _sample(source_dsn, rows)
    transactions = min(rows, MAX_TRANSACTIONS)
    ikey, okey = padded_keys(SECRET.encode())
    out: dict = {"rows": rows, "transactions": transactions, "triggers": {}, "functions": {}}
    with connect(dev_dsn) as conn:
        functions = _setup(conn, ikey, okey)
        for name, function in functions.items():
            _trigger(conn, function)
            seconds = _copy_in(conn, payload)
            out["triggers"][name] = {"seconds": round(seconds, 3),
                                     "rows_per_s": round(rows / seconds),
                                     "update_us_per_txn": round(
                                         _updates(conn, transactions) / transactions * 1e6, 2)}
        base = out["triggers"]["no trigger"]
        for v in out["triggers"].values():
            v["ratio"] = round(base["seconds"] / v["seconds"], 3)
            v["us_per_row"] = round((v["seconds"] - base["seconds"]) / rows * 1e6, 2)
            v["update_us_added"] = round(v["update_us_per_txn"] - base["update_us_per_txn"], 2)
        _trigger(conn, None)
        _copy_in(conn, payload)  # raw rows again, for the functions alone
        out["functions"] = function_costs(conn, rows, ikey, okey)
        conn.execute(sql.SQL("DROP TABLE {}").format(SCRATCH))
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(SCHEMA))
    log("  " + "; ".join(f"{k}: {v['rows_per_s']:,} rows/s ({v['ratio']}x, "
                         f"+{v['us_per_row']} us/row; UPDATE +{v['update_us_added']} us/txn)"
                         for k, v in out["triggers"].items()))
    log("  per value: " + ", ".join(f"{k} {v} us" for k, v in out["functions"].items()))
    return out
def _timed(conn: psycopg.Connection, query: sql.Composable) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        started = time.perf_counter()
        conn.execute(query)
        best = min(best, time.perf_counter() - started)
    return best


def function_costs(conn: psycopg.Connection, rows: int, ikey: bytes, okey: bytes) -> dict:
    """Microseconds per value of each strategy of the dev target, over the scratch
    table (filled with raw rows), net of reading and measuring the column."""
    keys = (sql.Literal(ikey), sql.Literal(okey))
    out = {}
    for column, strategy in MASKS.items():
        col = sql.Identifier(column)
        base = _timed(conn, sql.SQL("SELECT sum(length({})) FROM {}").format(col, SCRATCH))
        masked = _timed(conn, sql.SQL("SELECT sum(length({}({}, {}, {}))) FROM {}").format(
            sql.Identifier("repl", f"mask_{strategy}"), col, *keys, SCRATCH))
        out[f"{strategy}({column})"] = round((masked - base) / rows * 1e6, 2)
    email = sql.Identifier("email")
    base = _timed(conn, sql.SQL("SELECT sum(length({})) FROM {}").format(email, SCRATCH))
    for label, expression in (
            ("sha256(email)", sql.SQL("pg_catalog.sha256(repl.utf8({}))").format(email)),
            ("keyed sha256(email) (repl.prf_text)",
             sql.SQL("repl.prf_text({}, {})").format(email, keys[0])),
            ("HMAC-SHA256(email)",
             sql.SQL("repl.prf(repl.utf8({}), {}, {})").format(email, *keys))):
        seconds = _timed(conn, sql.SQL("SELECT sum(length({})) FROM {}").format(
            expression, SCRATCH))
        out[label] = round((seconds - base) / rows * 1e6, 2)
    return out
