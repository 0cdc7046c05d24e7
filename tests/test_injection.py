"""Config text never spliced into SQL (issue 6, security): names with quotes, spaces,
upper case, a semicolon and a dot work through every command; row filters and `sql`
masks that try to smuggle a statement are refused by PostgreSQL's parser, name the key,
and change nothing. test_names.py covers odd names in plain replication and
test_safety.py the first smuggled-filter cases; this adds masks, roles, the other
commands, and the tricks those do not try.
"""

from __future__ import annotations

import json
import time

import psycopg
import pytest
import yaml
from psycopg import sql

from replication.config import QualifiedName

from conftest import rows, wait_until

pytestmark = pytest.mark.pg

# A single and a double quote, spaces, capitals, a semicolon, and a dot in the schema.
TABLE = QualifiedName('Q\'s "Sch.ema"; x', 'Tab \'le"; DROP')
LINES = sql.Identifier(TABLE.schema, TABLE.name)
KEY, EMAIL, NOTE, COUNTRY, HIDDEN = 'Key "ID"', "E-mail 'addr'; x", 'Note"; DROP', "Country", \
    "Secret; col"
SCHEMA = sql.SQL("""
CREATE SCHEMA {schema};
CREATE TABLE {table} ({key} int PRIMARY KEY, {email} text, {note} text, {country} text,
                      {hidden} text);
INSERT INTO {table} SELECT g, 'user' || g || '@corp.example', 'n' || g,
       CASE WHEN g % 2 = 0 THEN 'DE' ELSE 'FR' END, 'secret ' || g
  FROM generate_series(1, 20) g;
CREATE TABLE public.victim (id int);
""").format(schema=sql.Identifier(TABLE.schema), table=LINES, key=sql.Identifier(KEY),
            email=sql.Identifier(EMAIL), note=sql.Identifier(NOTE),
            country=sql.Identifier(COUNTRY), hidden=sql.Identifier(HIDDEN))
# Valid, and SQL-looking only inside a string: accepted, and it stays a string.
ROW_FILTER = '"Key ""ID""" > 2 AND $$); DROP TABLE public.victim; --$$ <> \'\''
NOTE_MASK = "left(value, 2) || $$'; DROP TABLE public.victim; --$$"


def config(tables: dict, roles: dict | None = None) -> str:
    dev: dict = {"dsn": "{target:dev}", "tables": tables}
    if roles:
        dev["roles"] = roles
    return yaml.safe_dump({"version": 1, "source": {"dsn": "{source}"},
                           "masking": {"secret": "s3cret"}, "targets": {"dev": dev}},
                          allow_unicode=True)


def victim_intact(env) -> None:
    with env.source() as src:
        assert rows(src, "SELECT to_regclass('public.victim') IS NOT NULL") == [(True,)]
        assert rows(src, "SELECT to_regclass('public.pwned')") == [(None,)]
    with env.target("dev") as tgt:
        assert rows(tgt, "SELECT to_regclass('public.pwned')") == [(None,)]


def test_odd_names_with_masks_filters_and_roles(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    member = env.role('Mem "b"; x')
    reader = f"Read'er \"Q\"; {env.tag}"
    env.roles.append(reader)
    cfg = env.write_config(config(
        {str(TABLE): {"columns": [EMAIL, NOTE, COUNTRY], "exclude": [HIDDEN],
                      "where": ROW_FILTER,
                      "mask": {EMAIL: "email", NOTE: {"sql": NOTE_MASK}}}},
        {reader: {"privilege": "read", "members": [member]}}))
    # Every odd name is classified; only the bystander table is in no target.
    strict = repl("check", "--strict", config=cfg, expect=1).stdout
    assert [line for line in strict.splitlines() if line.startswith("error")] == [
        "error: source: table public.victim is in no target of the config; add it to a "
        "target, or to source.exclude to keep it in production"]
    repl("setup", "--wait", "--timeout", "120", config=cfg)
    with env.target("dev") as tgt:
        got = rows(tgt, sql.SQL("SELECT {}, {}, {}, {} FROM {} ORDER BY 1").format(
            sql.Identifier(KEY), sql.Identifier(EMAIL), sql.Identifier(NOTE),
            sql.Identifier(COUNTRY), LINES))
        assert [r[0] for r in got] == list(range(3, 21))
        assert all("corp.example" not in r[1] for r in got)
        assert {r[2] for r in got} == {f"n{i}'; DROP TABLE public.victim; --"
                                       for i in range(1, 10)}
        assert rows(tgt, "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass "
                         "AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                    (str(TABLE),)) == [(KEY,), (EMAIL,), (NOTE,), (COUNTRY,)]
    with env.target("dev") as tgt:  # the role reads, and cannot write
        tgt.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(member)))
        assert rows(tgt, sql.SQL("SELECT count(*) FROM {}").format(LINES)) == [(18,)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            tgt.execute(sql.SQL("DELETE FROM {}").format(LINES))

    report = json.loads(repl("status", "--json", config=cfg).stdout)
    assert report["healthy"] is True, report
    repl("status", config=cfg)
    assert json.loads(repl("verify", "--json", config=cfg).stdout)["ok"] is True
    shown = repl("preview", "dev", str(TABLE), "--json", config=cfg).stdout
    assert "'; DROP TABLE public.victim; --" in shown and "corp.example" not in shown
    assert json.loads(repl("plan", "--json", config=cfg).stdout)["steps"] == []

    with env.source() as src:
        src.execute(sql.SQL("UPDATE {} SET {} = 'IT' WHERE {} = 5").format(
            LINES, sql.Identifier(COUNTRY), sql.Identifier(KEY)))
    with env.target("dev") as tgt:
        wait_until(lambda: rows(tgt, sql.SQL("SELECT {} FROM {} WHERE {} = 5").format(
            sql.Identifier(COUNTRY), LINES, sql.Identifier(KEY))) == [("IT",)],
            what="the update")
    repl("resync", "dev", str(TABLE), "--wait", "--timeout", "120", config=cfg)
    repl("teardown", config=cfg)
    with env.target("dev") as tgt:
        assert rows(tgt, "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass "
                         "AND NOT tgisinternal", (str(TABLE),)) == [(0,)]
        assert rows(tgt, "SELECT to_regnamespace('repl')") == [(None,)]
        assert rows(tgt, "SELECT count(*) FROM pg_subscription") == [(0,)]
    with env.source() as src:
        assert rows(src, "SELECT count(*) FROM pg_publication") == [(0,)]
    victim_intact(env)


def test_odd_names_refused_with_the_key(env_any, repl):
    """Names the catalog does not have, or that cannot be one: the error names the key."""
    env = env_any
    env.run_source(SCHEMA)
    cfg = env.write_config(config({
        str(TABLE): {"columns": [NOTE, 'note"; DROP'], "exclude": [EMAIL, COUNTRY, HIDDEN]},
        '"q\'s ""sch.ema""; x"."Tab \'le""; DROP"': {"columns": "all"},
    }))
    out = repl("check", config=cfg, expect=2).stdout
    assert f"target dev, table {TABLE}, column note\"; DROP: column listed in columns " \
           "does not exist on the source" in out
    assert "table \"q's \"\"sch.ema\"\"; x\"" in out and "does not exist on the source" in out
    bad = env.write_config(config({'Q\'s "Sch.ema"; x.tab': {"columns": "all"}}), "bad.yaml")
    refused = repl("check", config=bad, expect=2).stderr
    assert "targets.dev.tables" in refused and "is not schema.table" in refused
    repl("setup", config=cfg, expect=2)
    nothing_created(env)


def nothing_created(env) -> None:
    with env.source() as src:
        assert rows(src, "SELECT pubname FROM pg_publication") == []
        assert rows(src, "SELECT slot_name FROM pg_replication_slots WHERE database = "
                         "current_database()") == []
    with env.target("dev") as tgt:
        assert rows(tgt, "SELECT subname FROM pg_subscription") == []
        assert rows(tgt, "SELECT to_regnamespace('repl')") == [(None,)]
        assert rows(tgt, "SELECT count(*) FROM pg_class WHERE relkind = 'r' AND "
                         "relnamespace NOT IN ('pg_catalog'::regnamespace, "
                         "'information_schema'::regnamespace, 'pg_toast'::regnamespace)") \
            == [(0,)]
    victim_intact(env)


# Each tries to run a second statement (or to leave the expression); PostgreSQL's parser,
# given one statement by the extended protocol, refuses every one. test_safety.py has
# `true); DROP TABLE ...; --` and a smuggled COMMIT.
SMUGGLED_FILTERS = {
    "statement after a closed filter": f'"{KEY.replace(chr(34), chr(34) * 2)}" > 0); '
                                       "DROP TABLE public.victim; --",
    "statement after a semicolon": "true; SELECT pg_sleep(10)",
    "balanced second statement": "true); SELECT pg_sleep(10); CREATE TABLE public.pwned (); "
                                 "SELECT (true",
    "block comment": "true) /* x */",
    "unterminated comment": "true /*",
    "unterminated dollar quote": "true $$",
    "dollar quote closing the filter": "true $$) WITH (publish = 'insert') $$",
    "options after the filter": "true) WITH (publish = 'insert', publish_via_partition_root "
                                "= true",
}
SMUGGLED_MASKS = {
    "statement after the expression": "value); DROP TABLE public.victim; --",
    "balanced second statement": "value); SELECT pg_sleep(10); CREATE TABLE public.pwned (); "
                                 "SELECT (value",
    "plpgsql-style": "value; PERFORM pg_sleep(10)",
    "unterminated comment": "value /*",
    "unterminated dollar quote": "value || $$",
}


def test_smuggled_statements_refused_and_nothing_changed(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    others = {"exclude": [EMAIL, COUNTRY, HIDDEN]}
    cases = [(f"row filter {name}", {"columns": [NOTE], "where": text, **others}, text)
             for name, text in SMUGGLED_FILTERS.items()]
    cases += [(f"sql mask {name}", {"columns": [NOTE], "mask": {NOTE: {"sql": text}}, **others},
               text) for name, text in SMUGGLED_MASKS.items()]
    for case, table, text in cases:
        cfg = env.write_config(config({str(TABLE): table}))
        started = time.monotonic()
        out = repl("check", config=cfg, expect=2).stdout
        where = f"target dev, table {TABLE}" + (f", column {NOTE}" if "mask" in case else "")
        assert where in out and f"{text!r} is rejected by" in out, (case, out)
        refused = repl("setup", config=cfg, expect=2).stderr
        assert "nothing was changed" in refused, case
        for command in (("plan",), ("preview", "dev", str(TABLE))):
            assert "nothing was changed" in repl(*command, config=cfg, expect=2).stderr, case
        assert time.monotonic() - started < 8, f"{case}: a pg_sleep ran?"
    nothing_created(env)


# Escaping the parentheses with a line comment: the probe (validate.probe_row_filters)
# and the mask function (masking.create_sql_mask) put a newline after the user's text,
# so the comment ends before repl's closing parenthesis and what is left is an error.
COMMENT_TRICKS = {
    "row filter": {"columns": [NOTE], "where": "true) WITH (publish = 'insert') --"},
    "sql mask": {"columns": [NOTE], "mask": {NOTE: {"sql": "value) --"}}},
}


def test_line_comment_cannot_escape_the_expression(env_any, repl):
    env = env_any
    env.run_source(SCHEMA)
    for what, table in COMMENT_TRICKS.items():
        cfg = env.write_config(config({str(TABLE): {**table,
                                                    "exclude": [EMAIL, COUNTRY, HIDDEN]}}))
        assert "rejected by" in repl("check", config=cfg, expect=2).stdout, what
        assert "nothing was changed" in repl("setup", config=cfg, expect=2).stderr, what
    nothing_created(env)
