"""`verify` against real replication (SPEC section 3, guarantee 4): row counts under row
filters, checksums of the unmasked columns, raw values in masked columns, and tables
that cannot be verified yet. Every check is shown to pass on a healthy target and to
catch exactly the damage done directly on the target."""

from __future__ import annotations

import json
from datetime import date
from io import StringIO

import pytest
from psycopg import sql
from rich.console import Console

from replication.config_file import load_config
from replication.render import verify as render_verify
from replication.session import Session
from replication.verify import VerifyReport, verify

from conftest import rows, wait_until

pytestmark = pytest.mark.pg

SCHEMA = """
CREATE TABLE public.users (
    id int PRIMARY KEY,
    name text NOT NULL,
    email varchar(40),
    birth_date date,
    country text,
    score float8,
    balance numeric(10,2),
    seen_at timestamptz,
    tags text[],
    blob bytea
);
INSERT INTO public.users
SELECT g, 'Person ' || g, 'p' || g || '@corp.io',
       CASE WHEN g = 5 THEN DATE '2020-01-01' ELSE DATE '1980-03-15' + g END,
       CASE WHEN g % 3 = 0 THEN 'FR' ELSE 'DE' END, g / 3.0, g * 1.25,
       TIMESTAMPTZ '2024-05-06 07:08:09.123456+02' + g * interval '1 hour',
       ARRAY['a', 'b "' || g], decode(md5(g::text), 'hex')
  FROM generate_series(1, 40) g;
CREATE TABLE public.orders (id int PRIMARY KEY, user_id int, amount numeric(10,2), status text);
INSERT INTO public.orders
SELECT g, g % 40 + 1, g * 3.5, CASE WHEN g % 5 = 0 THEN 'open' ELSE 'paid' END
  FROM generate_series(1, 30) g;
CREATE TABLE public.events (kind text, payload text, token text);
INSERT INTO public.events
SELECT CASE WHEN g % 4 = 0 THEN 'debug' ELSE 'click' END, 'payload ' || g, 'tok-' || g
  FROM generate_series(1, 20) g;
"""

CONFIG = """
version: 1
source: {dsn: "{source}"}
masking: {secret: "verify secret"}
targets:
  dev:
    dsn: "{target:dev}"
    read_only: false  # the tests damage the target by hand
    tables:
      public.users:
        columns: all
        mask:
          name: fake_name
          email: email
          birth_date: {date_trunc: year}
      public.orders:
        columns: all
        where: "id % 2 = 0"
      public.events:
        columns: all
        where: "kind <> 'debug'"
        operations: [insert]
        mask: {token: redact}
  analytics:
    dsn: "{target:analytics}"
    tables:
      public.users:
        columns: [id, country, score]
        exclude: [name, email, birth_date, balance, seen_at, tags, blob]
        where: "id <= 20"
"""

UNMASKED_USERS = ["id", "country", "score", "balance", "seen_at", "tags", "blob"]


def run_verify(cfg) -> VerifyReport:
    with Session(load_config(cfg, {})) as session:
        report = verify(session, catch_up_timeout=20)
    json.dumps(report.to_dict())  # the --json form is plain data
    return report


def tables(report: VerifyReport) -> dict[tuple[str, str], object]:
    return {(t.target, tv.table): tv for t in report.targets for tv in t.tables}


def summary(report: VerifyReport) -> dict[tuple[str, str], tuple]:
    """Per table: state, counts, checksum verdict, raw check, raw rows per masked column."""
    return {key: (tv.state, tv.source_rows, tv.target_rows, tv.checksum, tv.raw_check,
                  {m.column: m.raw_rows for m in tv.masked})
            for key, tv in tables(report).items()}


HEALTHY = {
    ("dev", "public.users"): ("ready", 40, 40, "match", "done",
                              {"name": 0, "email": 0, "birth_date": 0}),
    ("dev", "public.orders"): ("ready", 15, 15, "match", "no masked columns", {}),
    ("dev", "public.events"): ("ready", 15, 15, "match", "skipped (no key)", {"token": None}),
    ("analytics", "public.users"): ("ready", 20, 20, "match", "no masked columns", {}),
}


def rendered(report: VerifyReport) -> str:
    out = StringIO()
    render_verify(Console(file=out, width=240, no_color=True, highlight=False), report)
    return out.getvalue()


def test_verify_counts_checksums_and_raw_values(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    repl("setup", "--wait", "--timeout", "120", config=cfg)

    report = run_verify(cfg)
    assert summary(report) == HEALTHY
    assert report.ok and report.problems == []
    assert all(t.caught_up for t in report.targets)
    assert tables(report)["dev", "public.users"].checksum_columns == UNMASKED_USERS
    assert tables(report)["analytics", "public.users"].checksum_columns == \
        ["id", "country", "score"]
    with env.target("dev") as dev, env.source() as src:
        # 2020-01-01 truncated to its year is itself: stored as it is in production, and
        # not a raw value (the mask did not change it).
        assert rows(dev, "SELECT birth_date FROM public.users WHERE id = 5") == \
            rows(src, "SELECT birth_date FROM public.users WHERE id = 5") == \
            [(date(2020, 1, 1),)]
    assert "OK: every table matches its source." in rendered(report)

    # Insert-only: a row deleted on the source stays on the target, by design. The
    # differences are shown, as notes.
    env.run_source("DELETE FROM public.events WHERE payload = 'payload 1'")
    report = run_verify(cfg)
    healthy = {**HEALTHY, ("dev", "public.events"): (
        "ready", 14, 15, "mismatch", "skipped (no key)", {"token": None})}
    assert summary(report) == healthy
    assert report.ok and report.problems == []
    events = tables(report)["dev", "public.events"]
    assert events.notes == ["the target has 1 row(s) more than the source; expected: this "
                            "table does not receive DELETE or TRUNCATE"]
    assert events.missing_rows == 0
    assert "note: target dev, table public.events: the target has 1 row(s) more" in \
        rendered(report)
    # Insert-only, yet every source row must be there: rows removed on the target fail.
    with env.target("dev") as dev:
        dev.execute("DELETE FROM public.events WHERE payload IN ('payload 3', 'payload 5')")
    report = run_verify(cfg)
    assert not report.ok and report.problems == [
        "target dev, table public.events: 2 of the source's 14 row(s) that match the row "
        "filter are missing on the target (or were changed by an UPDATE, which this table "
        "does not receive)"]
    env.run_source("DELETE FROM public.events WHERE payload IN ('payload 3', 'payload 5')")
    report = run_verify(cfg)
    assert report.ok and tables(report)["dev", "public.events"].missing_rows == 0
    healthy = {**healthy, ("dev", "public.events"): (
        "ready", 12, 13, "mismatch", "skipped (no key)", {"token": None})}
    assert summary(report) == healthy

    # A row deleted on the target: the counts differ (the row filter keeps 15 of 30).
    with env.target("dev") as dev:
        dev.execute("DELETE FROM public.orders WHERE id = 4")
    report = run_verify(cfg)
    assert summary(report) == {**healthy, ("dev", "public.orders"): (
        "ready", 15, 14, "mismatch", "no masked columns", {})}
    assert not report.ok
    assert report.problems == [
        "target dev, table public.orders: the target has 14 row(s), the source 15 that "
        "match the row filter",
        "target dev, table public.orders: the checksum of the unmasked columns "
        "(id, user_id, amount, status) differs",
    ]
    text = rendered(report)
    assert "public.orders" in text and "2 problem(s) found." in text
    with env.target("dev") as dev:  # put back exactly what was there: the checksum agrees
        dev.execute("INSERT INTO public.orders VALUES (4, 5, 14.00, 'paid')")
    assert summary(run_verify(cfg)) == healthy

    # An unmasked value changed on the target: same counts, another checksum.
    with env.target("dev") as dev:
        dev.execute("UPDATE public.users SET seen_at = seen_at + interval '1 microsecond' "
                    "WHERE id = 2")
    report = run_verify(cfg)
    assert summary(report) == {**healthy, ("dev", "public.users"): (
        "ready", 40, 40, "mismatch", "done", {"name": 0, "email": 0, "birth_date": 0})}
    assert report.problems == [
        "target dev, table public.users: the checksum of the unmasked columns "
        "(id, country, score, balance, seen_at, tags, blob) differs"]
    with env.target("dev") as dev:
        dev.execute("UPDATE public.users SET seen_at = seen_at - interval '1 microsecond' "
                    "WHERE id = 2")
    assert summary(run_verify(cfg)) == healthy

    # The masking trigger disabled: an update arrives raw, the whole row (the apply
    # worker receives every published column). Row 8's new birth date is the first of a
    # year, which the mask leaves as it is: not counted; its name and email are.
    with env.target("dev") as dev:
        dev.execute("ALTER TABLE public.users DISABLE TRIGGER repl_mask")
    env.run_source("UPDATE public.users SET email = 'leak@corp.io', birth_date = '1990-05-05' "
                   "WHERE id = 7; UPDATE public.users SET birth_date = '2021-01-01' "
                   "WHERE id = 8")
    with env.target("dev") as dev:
        wait_until(lambda: rows(dev, "SELECT id, name, email, birth_date FROM public.users "
                                     "WHERE id IN (7, 8) ORDER BY id")
                   == [(7, "Person 7", "leak@corp.io", date(1990, 5, 5)),
                       (8, "Person 8", "p8@corp.io", date(2021, 1, 1))],
                   what="raw values on the target (trigger disabled)")
    report = run_verify(cfg)
    assert summary(report) == {**healthy, ("dev", "public.users"): (
        "ready", 40, 40, "match", "done", {"name": 2, "email": 2, "birth_date": 1})}
    assert report.problems == [
        "target dev, table public.users: column name: 2 target row(s) hold the raw source "
        "value, which masking strategy fake_name would change",
        "target dev, table public.users: column email: 2 target row(s) hold the raw source "
        "value, which masking strategy email would change",
        "target dev, table public.users: column birth_date: 1 target row(s) hold the raw "
        "source value, which masking strategy date_trunc would change",
    ]
    data = report.to_dict()
    assert data["ok"] is False
    dev_users = next(t for t in data["targets"][0]["tables"] if t["table"] == "public.users")
    assert dev_users["masked"] == [
        {"column": "name", "strategy": "fake_name", "raw_rows": 2},
        {"column": "email", "strategy": "email", "raw_rows": 2},
        {"column": "birth_date", "strategy": "date_trunc", "raw_rows": 1}]
    assert "name: 2, email: 2, birth_date: 1" in rendered(report)

    # Nothing verify did stayed behind.
    with env.target("dev") as dev:
        assert rows(dev, "SELECT count(*) FROM public.orders") == [(15,)]
        assert rows(dev, "SELECT count(*) FROM pg_class WHERE relname = 'repl_verify_raw'") \
            == [(0,)]


NOT_READY_SCHEMA = """
CREATE TABLE public.done (id int PRIMARY KEY, v text);
INSERT INTO public.done SELECT g, 'v' || g FROM generate_series(1, 5) g;
CREATE TABLE public.gone (id int PRIMARY KEY, v text);
INSERT INTO public.gone SELECT g, 'v' || g FROM generate_series(1, 4) g;
CREATE TABLE public.stuck (id int PRIMARY KEY, v text);
INSERT INTO public.stuck SELECT g, 'v' || g FROM generate_series(1, 3) g;
"""

NOT_READY_CONFIG = """
version: 1
source: {dsn: "{source}"}
targets:
  dev:
    dsn: "{target:dev}"
    tables:
      public.done: {columns: all}
      public.gone: {columns: all}
"""


def test_tables_not_ready_or_missing_are_reported(env_any, repl):
    env = env_any
    env.run_source(NOT_READY_SCHEMA)
    cfg = env.write_config(NOT_READY_CONFIG)
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.target("dev") as dev:
        # A constraint every source row violates: the initial copy fails, again and again.
        dev.execute("CREATE TABLE public.stuck (id int PRIMARY KEY, v text, CHECK (id < 0))")
    cfg = env.write_config(NOT_READY_CONFIG + "      public.stuck: {columns: all}\n")
    repl("setup", config=cfg)
    with env.target("dev") as dev:
        dev.execute("DROP TABLE public.gone")

    report = run_verify(cfg)
    found = summary(report)
    stuck_state = found["dev", "public.stuck"][0]
    assert stuck_state in ("initializing", "copying")
    assert found == {
        ("dev", "public.done"): ("ready", 5, 5, "match", "no masked columns", {}),
        ("dev", "public.gone"): ("no target table", None, None, None, "no masked columns", {}),
        ("dev", "public.stuck"): (stuck_state, None, None, None, "no masked columns", {}),
    }
    assert not report.ok
    assert report.problems == [
        "target dev, table public.gone: the table does not exist on the target; "
        "`repl setup` creates it",
        f"target dev, table public.stuck: not verified: its initial copy is not finished "
        f"(state {stuck_state}); verify again once `repl status` shows it ready",
    ]
    text = rendered(report)
    assert "public.stuck" in text and stuck_state in text and "2 problem(s) found." in text


STRATEGIES_SCHEMA = """
CREATE TABLE public.people (
    id int PRIMARY KEY, full_name varchar(40), first_name text, last_name text, email text,
    phone text, ssn char(12), card text, note text, answer text, birth_date date,
    seen_at timestamptz, stamp timestamp, salary numeric(10,2), score int, ratio float8,
    nickname text, country text
);
INSERT INTO public.people
SELECT g, 'Person ' || g, 'First' || g, 'Last' || g,
       CASE WHEN g <> 3 THEN 'p' || g || '@corp.io' END,
       '+49 30 ' || (1000 + g), 'SSN-' || g, '4111 1111 1111 ' || (1000 + g), 'note ' || g,
       'answer ' || g, DATE '1980-03-15' + g,
       CASE WHEN g = 5 THEN TIMESTAMPTZ '2024-06-01 00:00:00+00'
            ELSE TIMESTAMPTZ '2024-05-06 07:08:09+00' + g * interval '1 hour' END,
       TIMESTAMP '2023-01-02 03:04:05' + g * interval '1 minute',
       CASE WHEN g = 6 THEN 0 ELSE 1000 + g END, g * 1000 + 7, g / 7.0,
       CASE WHEN g = 4 THEN 'NICK4' ELSE 'nick' || g END, 'DE'
  FROM generate_series(1, 30) g;
"""

STRATEGIES_CONFIG = """
version: 1
source: {dsn: "{source}"}
masking: {secret: "verify secret"}
targets:
  dev:
    dsn: "{target:dev}"
    tables:
      public.people:
        columns: all
        mask:
          full_name: fake_name
          first_name: fake_first_name
          last_name: fake_last_name
          email: email
          phone: digits
          ssn: hash
          card: {partial: {keep_last: 4}}
          note: redact
          answer: 'null'
          birth_date: {date_trunc: year}
          seen_at: {date_trunc: month}
          stamp: {date_trunc: day}
          salary: {noise: {ratio: 0.1}}
          score: {noise: {ratio: 0.5}}
          ratio: {noise: {ratio: 0.2}}
          nickname: {sql: "upper(value)"}
"""


def test_raw_check_evaluates_every_strategy_as_the_trigger_does(env_any, repl):
    """With the trigger disabled every row arrives raw; verify must count exactly the
    values the trigger had changed (the masked values stored before are the oracle)."""
    env = env_any
    env.run_source(STRATEGIES_SCHEMA)
    cfg = env.write_config(STRATEGIES_CONFIG)
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    report = run_verify(cfg)
    assert report.ok, report.problems
    (people,) = report.targets[0].tables
    masked = [m.column for m in people.masked]
    assert len(masked) == 16 and all(m.raw_rows == 0 for m in people.masked)
    assert people.checksum_columns == ["id", "country"]

    query = sql.SQL("SELECT id, {} FROM public.people ORDER BY id").format(
        sql.SQL(", ").join(map(sql.Identifier, masked)))
    with env.target("dev") as dev:
        before = rows(dev, query)
        dev.execute("ALTER TABLE public.people DISABLE TRIGGER repl_mask")
    env.run_source("UPDATE public.people SET country = 'XX'")
    with env.target("dev") as dev, env.source() as src:
        wait_until(lambda: rows(dev, "SELECT count(*) FROM public.people WHERE country = 'XX'")
                   == [(30,)], what="raw rows on the target")
        raw = rows(src, query)
        assert rows(dev, query) == raw  # every masked column now holds the raw value
    changed = {c: sum(b[i] != r[i] for b, r in zip(before, raw, strict=True))
               for i, c in enumerate(masked, 1)}
    # The rows the masks leave as they are: a NULL email, a nickname already in upper
    # case, a timestamp at the start of its month, a salary of 0.
    assert {c: n for c, n in changed.items() if c != "score"} == {
        "full_name": 30, "first_name": 30, "last_name": 30, "email": 29, "phone": 30,
        "ssn": 30, "card": 30, "note": 30, "answer": 30, "birth_date": 30, "seen_at": 29,
        "stamp": 30, "salary": 29, "ratio": 30, "nickname": 29}
    report = run_verify(cfg)
    assert {m.column: m.raw_rows for m in report.targets[0].tables[0].masked} == changed
    assert len(report.problems) == 16


def test_verify_command_exit_codes(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    repl("setup", "--wait", "--timeout", "180", config=cfg)
    ok = repl("verify", config=cfg)
    assert "OK: every table matches its source." in ok.stdout
    with env.target("dev") as dev:
        dev.execute("DELETE FROM public.orders WHERE id = (SELECT min(id) FROM public.orders)")
    failed = repl("verify", "--json", config=cfg, expect=1)
    report = json.loads(failed.stdout)
    assert report["ok"] is False
    assert any("table public.orders: the target has" in p for p in report["problems"])
