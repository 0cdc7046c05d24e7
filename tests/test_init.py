"""repl init: detection by name, type and values; YAML that reads back whatever the names;
and, on real servers, a file from a schema with personal data under misleading names that
passes check --strict, sets up, verifies, and holds no value of the source."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
import yaml

from bench import init as bench_init
from bench import labelled
from replication.config import MaskSpec
from replication.detection import MASKS, Finding, by_name, judge, mask_for
from replication.errors import UsageError
from replication.init_config import (
    Draft,
    TableDraft,
    TargetDraft,
    TargetSpec,
    insert_only_reason,
    parse_targets,
    read_back,
)
from replication.inventory import TableFacts, sample_query
from replication.masking import type_problem
from replication.model import ReplicaIdentity, SourceColumn, SourceTable
from replication.names import QualifiedName
from replication.value_shapes import classify, is_card, is_iban, is_phone, luhn
from replication.yaml_text import render, scalar

from conftest import rows

USERS = QualifiedName("public", "users")
THINGS = QualifiedName("public", "products")


def column(name: str, type_name: str = "text", category: str = "S") -> SourceColumn:
    return SourceColumn(1, name, type_name, False, False, "pg_catalog", type_name, category)


@pytest.mark.parametrize("relation, name, type_name, category, kind", [
    (USERS, "email", "text", "S", "email"),
    (USERS, "E-Mail", "varchar", "S", "email"),
    (USERS, "correo_electronico", "text", "S", "email"),
    (USERS, "firstName", "text", "S", "first_name"),
    (USERS, "Vorname", "text", "S", "first_name"),
    (USERS, "prénom", "text", "S", "first_name"),
    (USERS, "surname", "text", "S", "last_name"),
    (USERS, "cognome", "text", "S", "last_name"),
    (USERS, "name", "text", "S", "person_name"),
    (USERS, "customer_name", "text", "S", "person_name"),
    (USERS, "telefono", "text", "S", "phone"),
    (USERS, "mobile", "text", "S", "phone"),
    (USERS, "date_of_birth", "date", "D", "birth_date"),
    (USERS, "Geburtsdatum", "date", "D", "birth_date"),
    (USERS, "postalCode", "text", "S", "postcode"),
    (USERS, "Straße", "text", "S", "address"),
    (USERS, "ville", "text", "S", "city"),
    (USERS, "ssn", "text", "S", "national_id"),
    (USERS, "codice_fiscale", "text", "S", "national_id"),
    (USERS, "iban", "text", "S", "bank_account"),
    (USERS, "card_number", "text", "S", "card"),
    (USERS, "last_ip", "inet", "I", "ip"),
    (USERS, "seen_from", "inet", "I", "ip"),  # by its type
    (USERS, "password_hash", "text", "S", "secret"),
    (USERS, "api_key", "bytea", "U", "secret"),
    (USERS, "notes", "text", "S", "free_text"),
    (USERS, "bio", "text", "S", "free_text"),
    # Clean, though a word in them looks personal.
    (THINGS, "name", "text", "S", None),
    (USERS, "company_name", "text", "S", None),
    (USERS, "file_name", "text", "S", None),
    (USERS, "mobile_app_version", "text", "S", None),
    (USERS, "email_verified", "bool", "B", None),
    (USERS, "token_count", "int8", "N", None),
    (USERS, "last_login", "timestamptz", "D", None),
    (USERS, "address_id", "int8", "N", None),
    (USERS, "country", "text", "S", None),
])
def test_detection_by_name_and_type(relation, name, type_name, category, kind):
    found = by_name(relation, column(name, type_name, category))
    assert (found.kind if found else None) == kind


def test_value_shapes():
    assert luhn("4111111111111111") and not luhn("4111111111111112")
    assert is_card("4111 1111 1111 1111") and not is_card("8450123498765432")
    assert is_iban("DE89 3704 0044 0532 0130 00") and not is_iban("DE89370400440532013001")
    assert is_phone("+49 30 1234567") and is_phone("(415) 555-0199")
    assert not any(is_phone(v) for v in ("2024-000123", "2024-01-05", "1234567.89", "0000012"))
    emails = [f"person{i}@mail.example.org" for i in range(9)] + ["n/a"]
    verdict = classify(emails)
    assert verdict and verdict.kind == "email" and verdict.rule == \
        "9 of 10 sampled look like e-mail addresses"
    notes = ["call me on +33 6 12 34 56 78", "fine", "ok", "later", "write to x.y@example.net",
             "no", "yes", "hm", "done", "n/a"]
    assert classify(notes).kind == "free_text"
    assert classify(["a@b.co"] * 4) is None  # too few values to say anything
    # The values decide the kind; a name that says secret stays a secret.
    contact = judge(USERS, column("contact"), classify(emails))
    assert contact.kind == "email" and contact.by_values
    assert judge(USERS, column("reset_token"), classify(emails)).kind == "secret"


@pytest.mark.parametrize("kind", sorted(MASKS))
@pytest.mark.parametrize("type_name, category", [
    ("text", "S"), ("varchar", "S"), ("int8", "N"), ("date", "D"), ("timestamptz", "D"),
    ("inet", "I"), ("jsonb", "U"), ("bytea", "U"), ("_text", "A")])
def test_every_suggested_mask_fits_its_column(kind, type_name, category):
    col = column("c", type_name, category)
    value, spec = mask_for(Finding(kind, "by its name"), col)
    assert isinstance(spec, MaskSpec) and type_problem(spec, col) is None


ODD = ["Name", "on", "null", "no", "a b", "my.col", 'q"uote', "it's", "#hash", "a: b", "- x",
       "[x]", "{x}", "x,y", "123", "1.5", "~", "é日本😀", "line\nbreak", "tab\tx", "\u2028",
       "back\\slash", "*star", "&amp", "!bang", "%pct", "@at", "`tick", "|pipe", ">gt", "?q"]


def test_any_name_reads_back_as_the_catalog_spells_it():
    for name in ODD:
        for text in (f"k: {scalar(name)}", f"[{scalar(name)}]", f"{scalar(name)}: 1"):
            loaded = yaml.safe_load(text)
            got = loaded[0] if isinstance(loaded, list) else \
                loaded["k"] if "k" in loaded else next(iter(loaded))
            assert got == name, (name, text)
    # A whole file: tables and columns named oddly, every key of a table in use.
    tables = tuple(
        TableDraft(QualifiedName(schema, table), tuple(ODD[:12]), ((ODD[12], "why\nnot"),),
                   ((ODD[11], {"partial": {"keep_last": 4}}, MaskSpec(
                       "partial", (("fill", "*"), ("keep_first", 0), ("keep_last", 4))),
                     "a phone number (by its name)"),), "Only inserts: no key.")
        for schema, table in (("my.schema", "Order Lines"), ("public", 'q"t'),
                              ("Public", "null"), ("s", "x\ny")))
    draft = Draft("h:5432/db", "repl2", (), (TargetDraft(TargetSpec("dev", "masked"), tables,
                                                ((QualifiedName("p", "g\nh"), "why"),)),),
                  {}, 0, {})
    text = render(draft, "PRODUCTION_DSN", {"masked": "every column"})
    assert all(line.startswith((" ", "#", "version", "name", "source", "targets")) or not line
               for line in text.splitlines())  # no comment broke onto a line of its own
    read_back(text, draft)


def test_target_options():
    assert parse_targets([]) == [TargetSpec("dev", "masked"), TargetSpec("analytics", "filtered")]
    for bad in ("dev", "dev:copy", "Dev:masked", "production:masked"):
        with pytest.raises(UsageError):
            parse_targets([bad])
    with pytest.raises(UsageError, match="twice"):
        parse_targets(["a:masked", "a:filtered"])


def test_a_table_without_a_usable_identity_is_insert_only_with_the_fix():
    key = ReplicaIdentity("d", ("id",), "users_pkey", True)
    table = SourceTable(USERS, 1, "p", "o", True, 10, (column("id", "int8", "N"),), key,
                        (("public.users_2024", ReplicaIdentity("f", None)),))
    assert "a partition (public.users_2024) whose replica identity is not the table's" in \
        insert_only_reason(TableFacts(table, False))
    assert insert_only_reason(TableFacts(replace(table, partition_identities=(
        ("public.users_2024", key),)), False)) is None
    reason = insert_only_reason(TableFacts(replace(table, relkind="r", partition_identities=(),
                                                   identity=ReplicaIdentity("d", None)), False))
    assert reason.startswith("Only inserts: it has no replica identity (no primary key)")
    assert "Give it a primary key" in reason


def test_a_big_table_is_sampled_by_pages_never_scanned():
    def query(estimated: int | None, big: bool) -> str:
        table = SourceTable(USERS, 1, "r", "o", True, estimated, (column("email"),),
                            ReplicaIdentity("d", ("id",)))
        return sample_query(table, ["email"], tablesample=big).as_string(None)

    assert "TABLESAMPLE SYSTEM (0.08)" in query(1_000_000, True)
    assert "LIMIT 200" in query(1_000_000, True) and "TABLESAMPLE" not in query(100, False)


# --- on real servers -----------------------------------------------------------------------

PERSONAL = """
CREATE TABLE public.customers (
    id bigint PRIMARY KEY,
    contact text,          -- e-mail addresses
    ref text NOT NULL,     -- card numbers
    notes text,            -- free text
    label text,
    tier text,
    created_at timestamptz NOT NULL
);
CREATE TABLE public.visits (id bigint PRIMARY KEY, visitor text, path text);
CREATE TABLE public.audit (at timestamptz NOT NULL, action text);          -- no key
CREATE TABLE public.subscribers (email text PRIMARY KEY, since date);       -- personal key
CREATE UNLOGGED TABLE public.scratch (id int PRIMARY KEY);
CREATE TABLE public.measures (id bigint, taken date, value numeric(8,2),
                              PRIMARY KEY (id, taken)) PARTITION BY RANGE (taken);
CREATE TABLE public.measures_2024 PARTITION OF public.measures
    FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE SCHEMA "Sales.EU";
CREATE TABLE "Sales.EU"."Order Lines" (id int PRIMARY KEY, "Unit Price" numeric(8,2),
                                       "Qty ""x"" n" int, "Buyer E-Mail" text);
"""


def _customers(n: int) -> list[tuple]:
    notes = ["Prefers calls after six, speaks Portuguese", "Gift wrap every parcel",
             "Allergic to peanuts, see ticket history"]
    return [(i, f"customer.{i:03d}@mailbox.example.net",
             labelled.card(i), notes[i % 3] + f" #{i:03d}", f"label-{i:03d}",
             ("silver", "golden")[i % 2], f"2024-03-{i % 28 + 1:02d} 10:00+00")
            for i in range(1, 41)]


def _text_values(conn) -> set[str]:
    """Every value of the source's user tables, as text."""
    found = set()
    for schema, table in rows(conn, "SELECT schemaname, relname FROM pg_stat_user_tables"):
        for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"'):  # noqa: S608
            found |= {str(v) for v in row if v is not None}
    return found


def test_init_writes_a_config_that_passes_strict_check_sets_up_and_leaks_nothing(
        env_any, repl, monkeypatch):
    env = env_any
    env.run_source(PERSONAL)
    with env.source() as src:
        with src.cursor().copy("COPY public.customers FROM STDIN") as copy:
            for row in _customers(40):
                copy.write_row(row)
        src.execute("INSERT INTO public.visits SELECT i, '10.1.' || i % 200 || '.' || i % 250, "
                    "'/p/' || i FROM generate_series(1, 12000) AS i")
        src.execute("INSERT INTO public.audit VALUES (now(), 'login')")
        src.execute("INSERT INTO public.subscribers VALUES ('first.sub@example.net', now())")
        src.execute("INSERT INTO public.measures VALUES (1, '2024-05-01', 3.5)")
        src.execute("""INSERT INTO "Sales.EU"."Order Lines" VALUES (1, 9.99, 2,
                       'buyer.one@shop.example.com')""")
        src.execute("ANALYZE")  # visits is sampled by pages: it needs an estimate
        # Slot names are cluster-wide: repl_dev is taken, so the config gets a name of
        # its own.
        src.execute("SELECT pg_create_physical_replication_slot('repl_dev')")
    out = env.tmp / "repl.yaml"
    try:
        done = repl("init", "--source", env.source_dsn, "--output", str(out))
        text = out.read_text()
        # Read production only: no publication, no slot.
        with env.source() as src:
            assert rows(src, "SELECT count(*) FROM pg_publication") == [(0,)]
            assert rows(src, "SELECT slot_name FROM pg_replication_slots") == [("repl_dev",)]
            values = _text_values(src)
    finally:
        with env.source() as src:
            src.execute("SELECT pg_drop_replication_slot('repl_dev')")
    assert re.search(r"^name: repl2 +# another database", text, re.M)
    # No value of the source in the file, nor in what init printed.
    said = text + done.stdout + done.stderr
    leaked = [v for v in values if len(v) >= 4 and v in said and not re.fullmatch(r"[\d.]+", v)]
    assert not leaked, leaked
    assert "${PRODUCTION_DSN}" in text and "${DEV_DSN}" in text and "${ANALYTICS_DSN}" in text

    config = yaml.safe_load(text)
    dev, analytics = (config["targets"][t]["tables"] for t in ("dev", "analytics"))
    assert dev["public.customers"]["mask"] == {"contact": "email", "ref": "digits",
                                              "notes": "redact"}
    assert dev["public.visits"]["mask"] == {"visitor": "hash"}
    assert dev['"Sales.EU"."Order Lines"']["mask"] == {"Buyer E-Mail": "email"}
    assert analytics["public.customers"]["columns"] == ["id", "label", "tier", "created_at"]
    assert analytics["public.customers"]["exclude"] == ["contact", "ref", "notes"]
    assert dev["public.audit"]["operations"] == ["insert"]
    assert "public.measures" in dev and "public.measures_2024" not in dev
    assert not {"public.subscribers", "public.scratch"} & (set(dev) | set(analytics))
    assert "Left out: public.subscribers: its replica identity looks personal" in text
    assert re.search(r"#\s+Only inserts: it has no replica identity", text)

    # Refuses to overwrite; --force replaces the file whole.
    refused = repl("init", "--source", env.source_dsn, "--output", str(out), expect=2)
    assert "exists; pass --force" in refused.stderr and out.read_text() == text
    repl("init", "--source", env.source_dsn, "--output", str(out), "--force")

    for variable, dsn in (("PRODUCTION_DSN", env.source_dsn), ("DEV_DSN", env.target_dsn("dev")),
                          ("ANALYTICS_DSN", env.target_dsn("analytics"))):
        monkeypatch.setenv(variable, dsn)
    repl("check", "--strict", config=out)
    repl("setup", "--wait", "--timeout", "120", config=out)
    repl("verify", config=out)  # counts, checksums, and no raw value in masked columns
    source = {r[0]: r[1:] for r in _customers(40)}
    with env.target("dev") as dev_db:
        masked = rows(dev_db, "SELECT id, contact, ref, notes FROM public.customers")
        assert len(masked) == 40
        for id_, contact, ref, notes in masked:
            assert re.fullmatch(r"user\.[0-9a-f]{24}@example\.com", contact)
            assert ref != source[id_][1] and len(ref) == len(source[id_][1])
            assert notes != source[id_][2]
    with env.target("analytics") as analytics_db:
        assert rows(analytics_db, "SELECT attname FROM pg_attribute WHERE attrelid = "
                    "'public.customers'::regclass AND attnum > 0 ORDER BY attnum") == [
            ("id",), ("label",), ("tier",), ("created_at",)]


def test_detection_on_the_labelled_schema(env_any):
    """The figures of bench/README.md: every labelled personal column flagged, and few
    others."""
    figures = bench_init.detection(env_any.source_dsn)
    assert figures["columns"] >= 60
    assert figures["recall"] == 1.0, figures["missed"]
    assert figures["precision"] >= 0.9, figures["false_alarms"]
