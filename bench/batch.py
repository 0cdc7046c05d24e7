"""Figure 2: the batch copies repl replaces, masking in Python with HMAC-SHA256.

- loop: what the old Airflow pipeline did: read rows with a server-side cursor,
  mask them in Python, `executemany` INSERTs (psycopg 3 pipelines them), commit per
  batch. Slow and linear, so it runs on a sample (at most `limit` rows, users and
  events in the production ratio 1:2) and reports rows/s.
- copy: the best a batch copy does: COPY out of the source and COPY into the target
  in one stream, users row by row (every column as text, only the three personal ones
  touched), events passed through as raw COPY data.

Both mask like the dev target (a fake name, a pseudonymous address, a hex digest), with
Python's hmac and hashlib.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import psycopg
from psycopg import sql

from .data import FIRST, LAST, SCHEMA, SECRET
from .servers import Servers, connect

USER_COLUMNS = ("id", "name", "email", "phone", "bio", "country", "created_at")
EVENT_COLUMNS = ("id", "user_id", "kind", "payload", "created_at")
FETCH = 5000
KEY = SECRET.encode()


def _digest(tag: str, value: str) -> bytes:
    return hmac.new(KEY, (tag + value).encode(), hashlib.sha256).digest()


def mask_user(row: tuple) -> tuple:
    uid, name, email, phone, *rest = row
    d = _digest("n", name)
    fake = f"{FIRST[int.from_bytes(d[:4]) % len(FIRST)]} {LAST[int.from_bytes(d[4:8]) % len(LAST)]}"
    masked_email = f"user.{_digest('e', email).hex()[:24]}@example.com"
    masked_phone = _digest("h", phone).hex() if phone is not None else None
    return (uid, fake, masked_email, masked_phone, *rest)


def _prepare(servers: Servers, name: str) -> str:
    dsn = servers.create_db(servers.target, name)
    with connect(dsn) as conn:
        conn.execute(SCHEMA)
    return dsn


def _insert(columns: tuple[str, ...], table: str) -> sql.Composable:
    return sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier("public", table), sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)))


def _select(columns: tuple[str, ...], table: str, limit: int) -> sql.Composable:
    return sql.SQL("SELECT {} FROM {} ORDER BY id LIMIT {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier("public", table),
        sql.Literal(limit))


def executemany_loop(servers: Servers, source_dsn: str, users: int, limit: int,
                     log=print) -> dict:
    """The executemany loop over at most `limit` rows (a third of them users)."""
    target_dsn = _prepare(servers, "batch_loop")
    sample_users = min(users, max(1, limit // 3))
    plan = (("users", USER_COLUMNS, sample_users, mask_user),
            ("events", EVENT_COLUMNS, 2 * sample_users, None))
    copied = 0
    started = time.perf_counter()
    with psycopg.connect(source_dsn) as src, psycopg.connect(target_dsn) as tgt:
        for table, columns, count, mask in plan:
            with src.cursor(name=f"read_{table}") as cur:
                cur.itersize = FETCH
                cur.execute(_select(columns, table, count))
                insert = _insert(columns, table)
                while batch := cur.fetchmany(FETCH):
                    if mask is not None:
                        batch = [mask(r) for r in batch]
                    with tgt.cursor() as out:
                        out.executemany(insert, batch)
                    tgt.commit()
                    copied += len(batch)
    seconds = time.perf_counter() - started
    servers.drop_db(servers.target, "batch_loop")
    result = {"rows": copied, "seconds": round(seconds, 3), "rows_per_s": round(copied / seconds)}
    log(f"  executemany loop: {copied:,} rows in {seconds:.2f} s ({result['rows_per_s']:,} rows/s)")
    return result


def copy_stream(servers: Servers, source_dsn: str, users: int, log=print) -> dict:
    """COPY out / COPY in of both whole tables, users masked in Python."""
    target_dsn = _prepare(servers, "batch_copy")
    started = time.perf_counter()
    with psycopg.connect(source_dsn) as src, psycopg.connect(target_dsn) as tgt:
        with src.cursor().copy("COPY public.users TO STDOUT") as out, \
                tgt.cursor().copy("COPY public.users FROM STDIN") as into:
            out.set_types(["text"] * len(USER_COLUMNS))
            for row in out.rows():
                into.write_row(mask_user(row))
        with src.cursor().copy("COPY public.events TO STDOUT") as out, \
                tgt.cursor().copy("COPY public.events FROM STDIN") as into:
            for block in out:
                into.write(block)
        tgt.commit()
        copied = sum(tgt.execute(q).fetchone()[0] for q in (
            "SELECT count(*) FROM public.users", "SELECT count(*) FROM public.events"))
    seconds = time.perf_counter() - started
    servers.drop_db(servers.target, "batch_copy")
    if copied != 3 * users:
        raise RuntimeError(f"COPY batch copied {copied} rows, expected {3 * users}")
    result = {"rows": copied, "seconds": round(seconds, 3), "rows_per_s": round(copied / seconds)}
    log(f"  COPY batch: {copied:,} rows in {seconds:.2f} s ({result['rows_per_s']:,} rows/s)")
    return result
