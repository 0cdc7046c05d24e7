"""Masking end to end through real replication (SPEC section 4, guarantees 4 and 10):
every strategy on the initial copy and on later changes, no raw value stored,
determinism across tables and targets, stability under updates of other columns
(TOASTed values included), preview equal to what the target stores, and the secret
closed to other roles."""

from __future__ import annotations

import json
import math
import re
from datetime import UTC
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql

from replication.apply import run_step
from replication.config_file import load_config
from replication.session import Session

from conftest import rows, wait_until

pytestmark = pytest.mark.pg

SCHEMA = """
CREATE TABLE public.people (
    id int PRIMARY KEY,
    full_name varchar(40) NOT NULL,
    first_name text, last_name text,
    email varchar(20),
    phone text,
    ssn text,
    card text,
    note text,
    secret_answer text NOT NULL,
    birth_date date,
    seen_at timestamptz,
    salary numeric(10,2),
    score int,
    nickname text,
    bio text,
    country text
);
INSERT INTO public.people
SELECT g, 'Person ' || g, 'First' || g, 'Last' || g, 'p' || g || '@corp.io',
       '+49 (30) ' || lpad((g * 7919 % 10000000)::text, 7, '0'), 'SSN-' || g,
       '4111 1111 1111 ' || lpad(g::text, 4, '0'), 'note ' || g, 'answer ' || g,
       DATE '1980-03-15' + g, TIMESTAMPTZ '2024-05-06 07:08:09+00' + g * interval '1 hour',
       1000 + g, g * 10, 'nick' || g,
       CASE WHEN g <= 3 THEN (SELECT string_agg(md5(g::text || i::text), '') FROM
                              generate_series(1, 400) i) ELSE 'short bio ' || g END,
       'DE'
  FROM generate_series(1, 60) g;
CREATE TABLE public.contacts (id int PRIMARY KEY, email text);
INSERT INTO public.contacts SELECT g, 'p' || g || '@corp.io' FROM generate_series(1, 10) g;
"""

MASKS = """
        mask:
          full_name: fake_name
          first_name: fake_first_name
          last_name: fake_last_name
          email: email
          phone: digits
          ssn: hash
          card: {partial: {keep_last: 4}}
          note: redact
          secret_answer: 'null'
          birth_date: {date_trunc: year}
          seen_at: {date_trunc: month}
          salary: {noise: {ratio: 0.1}}
          score: {noise: {ratio: 0.5}}
          nickname: {sql: "upper(value)"}
          bio: hash
"""

CONFIG = """
version: 1
source: {dsn: "{source}"}
masking: {secret: "correct horse battery staple"}
targets:
  dev:
    dsn: "{target:dev}"
    tables:
      public.people:
        columns: all
""" + MASKS + """
      public.contacts:
        columns: all
        mask: {email: email}
  third:
    dsn: "{target:third}"
    tables:
      public.people:
        columns: [email, phone, country]
        exclude: [full_name, first_name, last_name, ssn, card, note, secret_answer,
                  birth_date, seen_at, salary, score, nickname, bio]
        mask: {email: email, phone: digits}
"""

COLUMNS = ("id, full_name, first_name, last_name, email, phone, ssn, card, note, "
           "secret_answer, birth_date, seen_at, salary, score, nickname, bio, country")


def fetch(conn) -> dict[int, dict]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(sql.SQL("SELECT {} FROM public.people ORDER BY id").format(
            sql.SQL(", ").join(map(sql.Identifier, COLUMNS.split(", ")))))
        return {r["id"]: r for r in cur.fetchall()}


def assert_masked(raw: dict, masked: dict) -> None:
    assert masked["full_name"] != raw["full_name"] and " " in masked["full_name"]
    assert masked["first_name"] != raw["first_name"] and masked["first_name"]
    assert masked["last_name"] != raw["last_name"] and masked["last_name"]
    assert masked["email"] != raw["email"]
    assert re.fullmatch(r"[a-z0-9._+-]+@example\.(com|org|net)", masked["email"])
    assert len(masked["phone"]) == len(raw["phone"]) and masked["phone"] != raw["phone"]
    assert re.sub(r"\d", "9", masked["phone"]) == re.sub(r"\d", "9", raw["phone"])
    assert re.fullmatch(r"[0-9a-f]{64}", masked["ssn"])
    assert masked["card"].endswith(raw["card"][-4:]) and len(masked["card"]) == len(raw["card"])
    assert masked["card"][:-4].strip("*") == ""
    assert masked["note"] != raw["note"] and masked["note"] == masked["note"].upper()
    assert masked["secret_answer"] is None
    assert masked["birth_date"] == raw["birth_date"].replace(month=1, day=1)
    utc = masked["seen_at"].astimezone(UTC)
    assert (utc.day, utc.hour, utc.minute) == (1, 0, 0)
    assert abs(masked["salary"] - raw["salary"]) <= raw["salary"] * Decimal("0.1") + 1
    assert abs(masked["score"] - raw["score"]) <= raw["score"] * 0.5 + 1
    assert masked["nickname"] == raw["nickname"].upper()
    assert re.fullmatch(r"[0-9a-f]{64}", masked["bio"])
    assert masked["country"] == raw["country"]


def test_every_strategy_through_copy_and_changes(env, repl):
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    repl("check", config=cfg)
    repl("setup", "--wait", "--timeout", "180", config=cfg)
    with env.source() as src, env.target("dev") as dev, env.target("third") as third:
        raw, masked = fetch(src), fetch(dev)
        assert raw.keys() == masked.keys()
        for key in raw:
            assert_masked(raw[key], masked[key])
        # Target types fit the results: a 64-character hash of a varchar(20).
        assert rows(dev, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                         "attrelid = 'public.people'::regclass AND attname = 'email'") == \
            [("text",)]
        # Deterministic across tables and targets sharing the secret.
        same = rows(dev, "SELECT c.email = p.email FROM public.contacts c JOIN public.people "
                         "p USING (id)")
        assert same and all(r[0] for r in same)
        assert rows(third, "SELECT id, email, phone FROM public.people ORDER BY id") == \
            [(k, v["email"], v["phone"]) for k, v in masked.items()]
        # Unique per distinct input.
        assert len({v["email"] for v in masked.values()}) == len(masked)

        # Changes: an update of another column keeps every masked value (TOASTed ones
        # included), an update of a masked column masks the new value, inserts mask.
        src.execute("UPDATE public.people SET country = 'FR' WHERE id <= 5")
        src.execute("UPDATE public.people SET email = 'new@corp.io', phone = '+1 555 0100', "
                    "full_name = 'Changed Name' WHERE id = 10")
        src.execute("INSERT INTO public.people SELECT 100, 'Inserted Person', 'Ina', 'Serted', "
                    "'ins@corp.io', '0800 123', 'SSN-X', '5500 0000 0000 0004', 'n', 'a', "
                    "'1999-09-09', now(), 55.5, 7, 'ins', 'bio', 'NL'")
        src.execute("DELETE FROM public.people WHERE id = 60")
        # Each statement commits on its own: wait for the last one (the delete) too.
        wait_until(lambda: rows(dev, "SELECT count(*) FILTER (WHERE id = 100 OR country = "
                                     "'FR'), count(*) FILTER (WHERE id = 60) FROM "
                                     "public.people") == [(6, 0)], what="changes on dev")
        wait_until(lambda: rows(third, "SELECT count(*) FROM public.people WHERE id = 100")
                   == [(1,)], what="insert on third")
        after = fetch(dev)
        for key in range(1, 6):
            expected = dict(masked[key], country="FR")
            assert after[key] == expected, f"row {key} changed beyond its country"
        raw = fetch(src)
        for key in (10, 100):
            assert_masked(raw[key], after[key])
        assert after[10]["email"] != masked[10]["email"]
        assert 60 not in after
        assert rows(third, "SELECT email FROM public.people WHERE id = 10") == \
            [(after[10]["email"],)]

        # No raw value of any masked column anywhere on the target.
        for column in ("full_name", "email", "phone", "ssn", "card", "note", "bio"):
            query = sql.SQL("SELECT {} FROM public.people").format(sql.Identifier(column))
            leaked = set(rows(dev, query)) & set(rows(src, query))
            assert not leaked, f"raw {column} on target: {leaked}"

    assert json.loads(repl("plan", "--json", config=cfg).stdout)["steps"] == []
    assert "Nothing to do" in repl("setup", config=cfg).stdout


def test_preview_matches_target_and_writes_nothing(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    before_setup = json.loads(repl("preview", "dev", "public.people", "--json",
                                   config=cfg).stdout)
    with env.target("dev") as dev:  # nothing was created by the preview
        assert rows(dev, "SELECT count(*) FROM pg_namespace WHERE nspname = 'repl'") == [(0,)]
        assert rows(dev, "SELECT to_regclass('public.people')") == [(None,)]
    repl("setup", "--wait", "--timeout", "180", config=cfg)
    after_setup = json.loads(repl("preview", "dev", "public.people", "--json",
                                  config=cfg).stdout)
    # The configured secret is used before and after setup alike.
    assert before_setup["rows"] == after_setup["rows"]
    assert len(after_setup["rows"]) == 20
    # Byte for byte: every column's text form equals what the target stores.
    with env.target("dev") as dev:
        stored = rows(dev, sql.SQL("SELECT {} FROM public.people ORDER BY people.id LIMIT 20")
                      .format(sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c))
                                                 for c in after_setup["columns"])))
    assert [tuple(r) for r in after_setup["rows"]] == stored


def test_secret_closed_to_other_roles_and_generated_when_absent(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG.replace('masking: {secret: "correct horse battery staple"}\n',
                                          ""))
    result = repl("setup", "--wait", "--timeout", "180", config=cfg)
    assert "generated for this target" in result.stdout
    with env.target("dev") as dev:
        dev.execute("CREATE ROLE snoop LOGIN")
        dev.execute("GRANT SELECT ON public.people TO snoop")
    with env.target("dev") as dev:
        dev.execute("SET ROLE snoop")
        for query in ("SELECT * FROM repl.secret", "SELECT * FROM repl.mask_keys()"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                dev.execute(query)
        assert rows(dev, "SELECT count(*) FROM public.people") == [(60,)]
        dev.execute("RESET ROLE")
        dev.execute("DROP OWNED BY snoop; DROP ROLE snoop")
    with env.target("dev") as dev, env.target("third") as third:
        # Each target generated its own key: the same email masks differently.
        assert rows(dev, "SELECT email FROM public.people WHERE id = 1") != \
            rows(third, "SELECT email FROM public.people WHERE id = 1")
    # A second setup keeps the generated key (nothing to do).
    assert "Nothing to do" in repl("setup", config=cfg).stdout


def test_disabled_trigger_is_unhealthy_and_setup_recopies(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    repl("setup", "--wait", "--timeout", "180", config=cfg)
    with env.target("dev") as dev:
        masked = fetch(dev)
        dev.execute("ALTER TABLE public.people DISABLE TRIGGER repl_mask")
    with env.source() as src:
        src.execute("UPDATE public.people SET email = 'leak@corp.io' WHERE id = 7")
    with env.target("dev") as dev:
        wait_until(lambda: rows(dev, "SELECT email FROM public.people WHERE id = 7")
                   == [("leak@corp.io",)], what="the raw value to arrive (trigger disabled)")
    report = json.loads(repl("status", "--json", config=cfg, expect=1).stdout)
    dev_status = next(t for t in report["targets"] if t["target"] == "dev")
    assert any("masking trigger of public.people" in p for p in dev_status["problems"])
    planned = json.loads(repl("plan", "--json", config=cfg).stdout)
    assert [(c["target"], c["table"]) for c in planned["copies"]] == [("dev", "public.people")]
    repl("setup", "--wait", "--timeout", "180", config=cfg)
    with env.target("dev") as dev:
        assert rows(dev, "SELECT count(*) FROM public.people WHERE email LIKE '%corp.io'") == \
            [(0,)]
        assert rows(dev, "SELECT tgenabled FROM pg_trigger WHERE tgname = 'repl_mask' AND "
                         "tgrelid = 'public.people'::regclass") == [("A",)]
        again = fetch(dev)
    assert {k: v for k, v in again.items() if k != 7} == \
        {k: v for k, v in masked.items() if k != 7}



@pytest.mark.parametrize("harm,cut", [
    ("ALTER TABLE public.people DISABLE TRIGGER repl_mask", None),
    ("DROP TRIGGER repl_mask ON public.people", None),
    ("DROP TRIGGER repl_mask ON public.people", 2)])
def test_stopped_subscription_restarts_only_behind_its_masking_trigger(env_any, repl, harm,
                                                                       cut):
    """A subscription stopped while a masking trigger was disabled or dropped: setup puts
    a guard in its place before it enables the subscription (nothing is stored until the
    table's re-copy), so no raw value lands, also when setup is cut short right after
    enabling it (an audit trigger sees every row the apply worker and the copy store)."""
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    repl("setup", "--wait", "--timeout", "180", config=cfg)
    with env.target("dev") as dev:
        dev.execute("CREATE SCHEMA audit; CREATE TABLE audit.seen (id int, email text)")
        dev.execute("CREATE FUNCTION audit.see() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$BEGIN INSERT INTO audit.seen VALUES (NEW.id, NEW.email); "
                    "RETURN NULL; END$$")
        dev.execute("CREATE TRIGGER see AFTER INSERT OR UPDATE ON public.people "
                    "FOR EACH ROW EXECUTE FUNCTION audit.see()")
        dev.execute("ALTER TABLE public.people ENABLE ALWAYS TRIGGER see")
        dev.execute("ALTER SUBSCRIPTION repl_dev DISABLE")
        dev.execute(harm)
    with env.source() as src:
        src.execute("UPDATE public.people SET email = 'leak@corp.io' WHERE id = 7")
    if cut is not None:
        with Session(load_config(cfg, {})) as session:
            steps = session.plan(session.snapshot()).steps
            assert [s.summary for s in steps[:cut]] == [
                "hold back changes to public.people until it is copied again",
                "enable the subscription"]
            for step in steps[:cut]:
                run_step(session, step)
        with env.target("dev") as dev:
            wait_until(lambda: rows(dev, "SELECT count(*) FROM pg_stat_subscription WHERE "
                                         "subname = 'repl_dev' AND pid IS NOT NULL") != [(0,)],
                       what="the apply worker to run again")
        assert json.loads(repl("status", "--json", config=cfg, expect=1).stdout)[
            "healthy"] is False
        planned = json.loads(repl("plan", "--json", config=cfg).stdout)
        assert ("dev", "public.people", "masking changed") in {
            (c["target"], c["table"], c["reason"]) for c in planned["copies"]}
    repl("setup", "--wait", "--timeout", "180", config=cfg)
    with env.source() as src:  # streaming again, through the trigger
        src.execute("UPDATE public.people SET email = 'later@corp.io' WHERE id = 8")
    with env.target("dev") as dev:
        wait_until(lambda: rows(dev, "SELECT count(*) FROM audit.seen WHERE id = 8")
                   != [(0,)], what="the later change to be applied")
        assert rows(dev, "SELECT count(*) FROM audit.seen WHERE id = 7") != [(0,)]
        assert rows(dev, "SELECT id, email FROM audit.seen WHERE email LIKE '%corp.io'") == []
        assert rows(dev, "SELECT count(*) FROM public.people WHERE email LIKE '%corp.io'") \
            == [(0,)]
        assert rows(dev, "SELECT tgenabled FROM pg_trigger WHERE tgname = 'repl_mask' AND "
                         "tgrelid = 'public.people'::regclass") == [("A",)]
        assert rows(dev, "SELECT subenabled FROM pg_subscription WHERE subname = 'repl_dev'") \
            == [(True,)]


def test_changing_masks_or_secret_recopies_only_affected_tables(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG)
    repl("setup", "--wait", "--timeout", "180", config=cfg)
    with env.target("dev") as dev:
        # A marker written behind repl's back (past its masking trigger and its guard).
        dev.execute("SET repl.read_only_bypass = on")
        dev.execute("ALTER TABLE public.people DISABLE TRIGGER repl_mask; "
                    "UPDATE public.people SET country = 'marker' WHERE id = 1; "
                    "ALTER TABLE public.people ENABLE ALWAYS TRIGGER repl_mask")
    changed = env.write_config(CONFIG.replace("          ssn: hash\n", "          ssn: redact\n"))
    planned = json.loads(repl("plan", "--json", config=changed).stdout)
    assert [(c["target"], c["table"]) for c in planned["copies"]] == [("dev", "public.people")]
    repl("setup", "--wait", "--timeout", "180", config=changed)
    with env.target("dev") as dev:
        assert rows(dev, "SELECT DISTINCT ssn FROM public.people") == [("REDACTED",)]
        assert rows(dev, "SELECT country FROM public.people WHERE id = 1") == [("DE",)]
    new_secret = env.write_config(CONFIG.replace("ssn: hash", "ssn: redact").replace(
        "correct horse battery staple", "another secret entirely"))
    planned = json.loads(repl("plan", "--json", config=new_secret).stdout)
    assert {(c["target"], c["table"]) for c in planned["copies"]} == \
        {("dev", "public.people"), ("dev", "public.contacts"), ("third", "public.people")}
    assert "another secret entirely" not in json.dumps(planned)
    text = repl("plan", config=new_secret).stdout
    assert "another secret entirely" not in text and "they store the masking key" in text
    with env.target("dev") as dev:
        before = rows(dev, "SELECT email FROM public.people WHERE id = 3")
    repl("setup", "--wait", "--timeout", "180", config=new_secret)
    with env.target("dev") as dev:
        after = rows(dev, "SELECT email FROM public.people WHERE id = 3")
    assert after != before  # re-copied under the new key
    # The long-lived apply worker masks new changes with the new key too: give row 2
    # row 3's raw email; its streamed masked value must equal row 3's re-copied one.
    with env.source() as src:
        src.execute("UPDATE public.people SET email = (SELECT email FROM public.people "
                    "WHERE id = 3) WHERE id = 2")
    with env.target("dev") as dev:
        wait_until(lambda: rows(dev, "SELECT email FROM public.people WHERE id = 2") == after,
                   what="the streamed change masked with the new key")


def test_sql_mask_cannot_smuggle_statements(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG.replace(
        'nickname: {sql: "upper(value)"}',
        'nickname: {sql: "NULL); COMMIT; CREATE TABLE public.pwn (); SELECT (1"}'))
    out = repl("check", config=cfg, expect=2).stdout
    assert "column nickname: sql mask" in out
    repl("setup", config=cfg, expect=2)
    with env.target("dev") as dev:
        assert rows(dev, "SELECT to_regclass('public.pwn')") == [(None,)]


def test_sql_mask_on_json_and_short_varchar(env_any, repl):
    """Types without an equality operator, and results longer than the source type."""
    env = env_any
    env.run_source("CREATE TABLE public.docs (id int PRIMARY KEY, body json, code varchar(5));"
                   "INSERT INTO public.docs VALUES (1, '{\"a\": 1}', 'abcde')")
    cfg = env.write_config(
        "version: 1\nsource: {dsn: \"{source}\"}\ntargets:\n  dev:\n"
        "    dsn: \"{target:dev}\"\n    tables:\n      public.docs:\n        columns: all\n"
        "        mask:\n          body: {sql: \"json_build_object('masked', true)\"}\n"
        "          code: {sql: \"value || '-masked'\"}\n")
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.source() as src:
        src.execute("UPDATE public.docs SET code = 'xy' WHERE id = 1")
        src.execute("INSERT INTO public.docs VALUES (2, '[]', 'q')")
    with env.target("dev") as dev:
        wait_until(lambda: rows(dev, "SELECT count(*) FROM public.docs") == [(2,)],
                   what="the insert")
        assert rows(dev, "SELECT id, body::text, code FROM public.docs ORDER BY id") == \
            [(1, '{"masked" : true}', "xy-masked"), (2, '{"masked" : true}', "q-masked")]


def test_strategy_type_mismatch_is_refused(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(CONFIG.replace("birth_date: {date_trunc: year}",
                                          "birth_date: {date_trunc: year}\n"
                                          "          country: {date_trunc: year}").replace(
        "          salary: {noise: {ratio: 0.1}}\n", "          salary: email\n").replace(
        'nickname: {sql: "upper(value)"}', 'nickname: {sql: "no_such_function(value)"}'))
    out = repl("check", config=cfg, expect=2).stdout
    assert "target dev, table public.people, column country: date_trunc needs a date" in out
    assert "target dev, table public.people, column salary: masking strategy email needs " \
           "a text-like column" in out
    assert "column nickname: sql mask" in out and "no_such_function" in out
    repl("setup", config=cfg, expect=2)


NOISE_SCHEMA = """
CREATE TABLE public.measures (id int PRIMARY KEY, s smallint, i integer, b bigint,
                              n numeric(5,2), r real, d float8);
INSERT INTO public.measures VALUES
 (1, 32767, 2147483647, 9223372036854775807, 999.99, 3.4028235e38, 1.7976931348623157e308),
 (2, -32768, -2147483648, -9223372036854775808, -999.99, -3.4028235e38,
  -1.7976931348623157e308),
 (3, 32000, 2000000000, 9000000000000000000, 990.5, 3e38, 1.7e308),
 (4, 100, 100, 100, 1.5, 1.5, 1.5);
"""

NOISE_CONFIG = """
version: 1
source: {dsn: "{source}"}
masking: {secret: "correct horse battery staple"}
targets:
  dev:
    dsn: "{target:dev}"
    tables:
      public.measures:
        columns: all
        mask: {s: {noise: 1}, i: {noise: 1}, b: {noise: 1}, n: {noise: 1}, r: {noise: 1},
               d: {noise: 1}}
"""


def test_noise_at_both_ends_of_every_number_type_arrives(env_any, repl):
    """noise with ratio 1 (values up to doubled) on the largest and smallest values of
    smallint, integer, bigint, numeric(5,2), real and double precision: the copy and the
    changes arrive, with values inside each type (rounded to numeric(5,2)'s scale)."""
    env = env_any
    env.run_source(NOISE_SCHEMA)
    cfg = env.write_config(NOISE_CONFIG)
    repl("check", config=cfg)
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    env.run_source("INSERT INTO public.measures SELECT id + 10, s, i, b, n, r, d "
                   "FROM public.measures WHERE id <= 3; "
                   "UPDATE public.measures SET s = -32768, i = -2147483648, "
                   "b = -9223372036854775808, n = -999.99, r = -3.4028235e38, "
                   "d = -1.7976931348623157e308 WHERE id = 4")
    query = "SELECT id, s, i, b, n, r, d FROM public.measures ORDER BY id"
    with env.target("dev") as dev, env.source() as src:
        wait_until(lambda: [r[0] for r in rows(dev, query)] == [1, 2, 3, 4, 11, 12, 13]
                   and rows(dev, "SELECT s FROM public.measures WHERE id = 4") != [(100,)],
                   what="the copy and the changes")
        masked, raw = rows(dev, query), rows(src, query)
        for row in masked:
            _, s, i, b, n, r, d = row
            assert -2**15 <= s < 2**15 and -2**31 <= i < 2**31 and -2**63 <= b < 2**63
            assert abs(n) <= Decimal("999.99") and n.as_tuple().exponent == -2
            assert math.isfinite(r) and math.isfinite(d)
        assert masked != raw
        assert {r[1] for r in masked} & {32767, -32768}  # some reached an end and stopped
        assert rows(dev, "SELECT apply_error_count, sync_error_count FROM "
                         "pg_stat_subscription_stats WHERE subname = 'repl_dev'") == [(0, 0)]
    repl("status", config=cfg)


def test_mask_whose_result_might_not_fit_is_refused(env_any, repl):
    """A domain's constraints could refuse what noise or date_trunc make of a value (and
    stop the stream): check refuses the mask, naming target, table and column, whether
    the domain has a name of its own or one of a built-in type in another schema."""
    env = env_any
    types = ("CREATE DOMAIN public.int4 AS pg_catalog.int4 CHECK (VALUE BETWEEN 0 AND 100);"
             "CREATE DOMAIN public.born AS date CHECK (VALUE >= DATE '1900-06-01');")
    env.run_source(types)
    env.run_source("CREATE TABLE public.scores (id int PRIMARY KEY, pct public.int4, "
                   "born public.born); INSERT INTO public.scores VALUES (1, 100, '1900-06-01')")
    with env.target("dev") as dev:
        dev.execute(types)
    cfg = env.write_config(
        "version: 1\nsource: {dsn: \"{source}\"}\ntargets:\n  dev:\n"
        "    dsn: \"{target:dev}\"\n    tables:\n      public.scores:\n        columns: all\n"
        "        mask: {pct: {noise: 0.5}, born: {date_trunc: year}}\n")
    out = repl("check", config=cfg, expect=2).stdout
    assert "target dev, table public.scores, column pct: noise needs a numeric column, " \
           "not public.int4" in out
    assert "target dev, table public.scores, column born: date_trunc needs a date or " \
           "timestamp column, not public.born" in out
    repl("setup", config=cfg, expect=2)
    with env.target("dev") as dev:
        assert rows(dev, "SELECT to_regclass('public.scores')") == [(None,)]


def test_hash_keeps_uuid_and_bytea_columns_and_their_joins(env_any, repl):
    """hash on uuid and bytea columns: the target keeps their types, no raw value
    arrives, and a join on a hashed uuid finds the same pairs as on production."""
    env = env_any
    env.run_source(
        "CREATE TABLE public.accounts (id int PRIMARY KEY, ext uuid NOT NULL UNIQUE, "
        "photo bytea);"
        "CREATE TABLE public.visits (id int PRIMARY KEY, account_ext uuid);"
        "INSERT INTO public.accounts SELECT g, gen_random_uuid(), "
        "CASE WHEN g % 3 = 0 THEN ''::bytea ELSE sha256(g::text::bytea) END "
        "FROM generate_series(1, 50) g;"
        "INSERT INTO public.visits SELECT g, (SELECT ext FROM public.accounts "
        "WHERE id = g % 60) FROM generate_series(1, 200) g")
    cfg = env.write_config(
        "version: 1\nsource: {dsn: \"{source}\"}\nmasking: {secret: s3cret}\ntargets:\n"
        "  dev:\n    dsn: \"{target:dev}\"\n    tables:\n"
        "      public.accounts: {columns: all, mask: {ext: hash, photo: hash}}\n"
        "      public.visits: {columns: all, mask: {account_ext: hash}}\n")
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    env.run_source("INSERT INTO public.accounts VALUES (51, gen_random_uuid(), '\\x01');"
                   "INSERT INTO public.visits SELECT 201, ext FROM public.accounts "
                   "WHERE id = 51")
    join = ("SELECT v.id, a.id FROM public.visits v LEFT JOIN public.accounts a "
            "ON a.ext = v.account_ext ORDER BY v.id")
    with env.target("dev") as dev, env.source() as src:
        wait_until(lambda: rows(dev, "SELECT count(*) FROM public.visits") == [(201,)],
                   what="the streamed rows")
        assert rows(dev, join) == rows(src, join)
        assert rows(dev, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE "
                         "attrelid = 'public.accounts'::regclass AND attname IN "
                         "('ext', 'photo') ORDER BY attname") == [("uuid",), ("bytea",)]
        raw = set(rows(src, "SELECT ext FROM public.accounts"))
        assert not raw & set(rows(dev, "SELECT ext FROM public.accounts"))
        photos = rows(dev, "SELECT octet_length(photo), count(*) FROM public.accounts "
                           "GROUP BY 1 ORDER BY 1")
        assert photos == [(0, 16), (32, 35)]
        assert not set(rows(src, "SELECT photo FROM public.accounts WHERE photo <> ''")) & \
            set(rows(dev, "SELECT photo FROM public.accounts"))
