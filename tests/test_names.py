"""Names as the catalog spells them (upper case, spaces, quotes, dots) and partitioned
tables published through their root (SPEC section 2)."""

from __future__ import annotations

import json

import pytest
from psycopg import sql

from conftest import rows, wait_until

pytestmark = pytest.mark.pg

# Schema: Sales "EU" (a space and quotes), table: Order Lines (a space and capitals).
LINES = sql.Identifier('Sales "EU"', "Order Lines")
LINES_KEY = '"Sales ""EU"""."Order Lines"'  # as written in repl.yaml
SCHEMA = sql.SQL("""
CREATE SCHEMA {sales};
CREATE TABLE {lines} (
    "Line ID" int PRIMARY KEY, "Amount €" numeric(12,2), "Secret Note" text, "kind" text);
INSERT INTO {lines}
SELECT g, g * 10, 'secret ' || g, CASE WHEN g % 2 = 0 THEN 'a' ELSE 'b' END
  FROM generate_series(1, 30) g;
CREATE SCHEMA "my.schema";
CREATE TABLE "my.schema".orders (id int PRIMARY KEY, note text);
INSERT INTO "my.schema".orders SELECT g, 'n' || g FROM generate_series(1, 5) g;

CREATE TABLE public.measurements (
    id bigint NOT NULL, taken_on date NOT NULL, value float8, device text,
    PRIMARY KEY (id, taken_on)
) PARTITION BY RANGE (taken_on);
CREATE TABLE public.measurements_2025 PARTITION OF public.measurements
    FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE public.measurements_2026 PARTITION OF public.measurements
    FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO public.measurements
SELECT g, DATE '2025-06-01' + (g * 2), g / 10.0, 'dev' || (g % 4) FROM generate_series(1, 200) g;
""").format(sales=sql.Identifier('Sales "EU"'), lines=LINES)

CONFIG = f"""
version: 1
source: {{dsn: "{{source}}"}}
targets:
  analytics:
    dsn: "{{target:analytics}}"
    tables:
      '{LINES_KEY}':
        columns: ["Amount €", kind]
        exclude: ["Secret Note"]
        where: '"Line ID" > 10'
      '"my.schema".orders': {{columns: [note]}}
      public.measurements:
        columns: [value]
        exclude: [device]
        where: "id % 2 = 0"
"""


def test_odd_names_and_partitioned_tables(env, repl):
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    repl("check", config=cfg)
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.target("analytics") as tgt:
        assert rows(tgt, sql.SQL('SELECT count(*), min("Line ID") FROM {}').format(LINES)) \
            == [(20, 11)]
        assert rows(tgt, "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
                         "AND attnum > 0 ORDER BY attnum", (LINES_KEY,)) == \
            [("Line ID",), ("Amount €",), ("kind",)]
        assert rows(tgt, 'SELECT count(*) FROM "my.schema".orders') == [(5,)]
        # One plain table on the target for the partitioned source table.
        assert rows(tgt, "SELECT relkind FROM pg_class WHERE oid = "
                         "'public.measurements'::regclass") == [("r",)]
        assert rows(tgt, "SELECT count(*) FROM public.measurements") == [(100,)]

    with env.source() as src:
        # A partition attached later is covered without another setup.
        src.execute("CREATE TABLE public.measurements_2027 PARTITION OF public.measurements "
                    "FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')")
        src.execute("INSERT INTO public.measurements VALUES (1000, '2027-03-01', 1.5, 'x')")
        src.execute("UPDATE public.measurements SET value = -1 WHERE id = 2")
        src.execute("DELETE FROM public.measurements WHERE id = 4")
        src.execute(sql.SQL('UPDATE {} SET "Amount €" = 0 WHERE "Line ID" = 12').format(LINES))
    with env.target("analytics") as tgt:
        wait_until(lambda: rows(tgt, "SELECT value FROM public.measurements WHERE id = 1000")
                   == [(1.5,)], what="row in a partition attached after setup")
        wait_until(lambda: rows(tgt, sql.SQL('SELECT "Amount €" FROM {} WHERE "Line ID" = 12')
                                .format(LINES))[0][0] == 0, what="update")
        assert rows(tgt, "SELECT value FROM public.measurements WHERE id = 2") == [(-1.0,)]
        assert rows(tgt, "SELECT count(*) FROM public.measurements WHERE id = 4") == [(0,)]
    assert json.loads(repl("plan", "--json", config=cfg).stdout)["steps"] == []
    assert "Nothing to do" in repl("setup", config=cfg).stdout


def test_partition_with_its_own_replica_identity_is_refused(env_any, repl):
    env = env_any
    env.run_source(SCHEMA + sql.SQL("ALTER TABLE public.measurements_2026 REPLICA IDENTITY FULL;"))
    cfg = env.write_config(CONFIG)
    out = repl("check", config=cfg, expect=2).stdout
    assert "table public.measurements" in out and "measurements_2026" in out
    assert "REPLICA IDENTITY FULL" in out
