"""The masking SQL library (sql/masking/, SPEC section 4) on real servers of every
installed major version: the PRFs against Python references, each strategy's
properties, NULLs, an empty search_path, inlining, the keys and their caching."""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import random
import re
import string
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

import psycopg
import pytest
from psycopg import sql

from replication.cluster import installations
from replication.masking_sql import install_statements, padded_keys

pytestmark = pytest.mark.pg

SECRET = b"correct horse battery staple"
OTHER_SECRET = b"tr0ub4dor&3"
IKEY, OKEY = padded_keys(SECRET)
MAJORS = [i.major for i in installations()]
KEYS = "repl.mask_ikey(), repl.mask_okey()"  # how the masking triggers pass the keys
# The bounds repl passes to noise for a double precision and a smallint column.
FLOAT8_RANGE = "2.2250738585072014e-308::float8, 1.7976931348623157e+308::float8"
INT2_RANGE = "'-32768'::numeric, '32767'::numeric"

KEYED = ("hash", "email", "fake_name", "fake_first_name", "fake_last_name", "digits")
EMAIL_RE = re.compile(r"user\.[0-9a-f]{24}@example\.com")
STRATEGY_FUNCTIONS = {  # every function a masking trigger calls
    "mask_hash", "mask_email", "mask_fake_name", "mask_fake_first_name",
    "mask_fake_last_name", "mask_digits", "mask_partial", "mask_redact",
    "mask_date_trunc", "mask_noise", "mask_first_names", "mask_last_names",
    "prf", "prf_text", "utf8",
}


class Database:
    def __init__(self, cluster, name: str):
        self.cluster, self.name = cluster, name

    def connect(self) -> psycopg.Connection:
        # UTF-8 on the wire whatever the database's encoding (SQL_ASCII included).
        return psycopg.connect(self.cluster.dsn(self.name), autocommit=True,
                               client_encoding="UTF8")


def create_database(cluster, name: str, *options: str) -> Database:
    with psycopg.connect(cluster.dsn(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} " + " ".join(options))
                      .format(sql.Identifier(name)))
    db = Database(cluster, name)
    with db.connect() as conn:
        conn.execute("CREATE SCHEMA repl")
        with conn.transaction():
            for text in install_statements():
                conn.execute(text)
        conn.execute("CREATE TABLE repl.secret (ikey bytea NOT NULL, okey bytea NOT NULL)")
        conn.execute("INSERT INTO repl.secret VALUES (%s, %s)", (IKEY, OKEY))
    return db


def drop_database(db: Database) -> None:
    with psycopg.connect(db.cluster.dsn(), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                      .format(sql.Identifier(db.name)))


@pytest.fixture(scope="module", params=MAJORS, ids=[f"pg{m}" for m in MAJORS])
def db(request, servers) -> Iterator[Database]:
    database = create_database(servers.get(request.param, "a"),
                               f"masking_sql_{os.getpid()}_{request.param}")
    try:
        yield database
    finally:
        drop_database(database)


@pytest.fixture
def conn(db) -> Iterator[psycopg.Connection]:
    with db.connect() as connection:
        yield connection


def q(text: str, **fragments: str) -> sql.Composed:
    """`text` with {keys} and the other fixed SQL fragments of this module filled in."""
    return sql.SQL(text).format(keys=sql.SQL(KEYS),
                                **{k: sql.SQL(v) for k, v in fragments.items()})


def one(conn: psycopg.Connection, query, params=None):
    return conn.execute(query, params).fetchone()[0]


def column(conn: psycopg.Connection, query, params=None) -> list:
    return [r[0] for r in conn.execute(query, params).fetchall()]


# --- Python references of what the SQL computes -----------------------------------------

def ref_prf_text(value: str, ikey: bytes = IKEY) -> bytes:
    """repl.prf_text: sha256(ikey || UTF-8 of the value)."""
    return hashlib.sha256(ikey + value.encode()).digest()


def ref_digits(value: str, ikey: bytes = IKEY) -> str:
    """repl.mask_digits for values with at most 15 digits and % signs together."""
    wanted = sum(c.isascii() and c.isdigit() or c == "%" for c in value)
    assert wanted <= 15
    stream = str(int(ref_prf_text("d" + value, ikey).hex()[:15], 16) % 10**15 + 10**15)
    digits = iter(stream[len(stream) - wanted:])
    return "".join(next(digits) if c in string.digits else c for c in value)


def random_text(rng: random.Random, length: int) -> str:
    alphabet = string.printable.replace("\0", "") + "\\'\"%äöüßéñøłżžçğış€漢字かな😀\u200b"
    return "".join(rng.choice(alphabet) for _ in range(length))


# --- the PRFs -----------------------------------------------------------------------------

def test_padded_keys_are_those_of_hmac() -> None:
    for secret in (b"k", SECRET, bytes(range(64)), bytes(range(65)), b"x" * 1000):
        ikey, okey = padded_keys(secret)
        assert len(ikey) == len(okey) == 64
        message = b"some value"
        inner = hashlib.sha256(ikey + message).digest()
        assert hashlib.sha256(okey + inner).digest() == \
            hmac.new(secret, message, hashlib.sha256).digest()
    with pytest.raises(ValueError):
        padded_keys(b"")
    with pytest.raises(TypeError):
        padded_keys("text")  # type: ignore[arg-type]


def test_prf_is_hmac_sha256(conn) -> None:
    rng = random.Random(4)
    for secret in (SECRET, bytes(range(64)), b"s" * 200):
        ikey, okey = padded_keys(secret)
        for length in (0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 100000):
            value = rng.randbytes(length)
            got = one(conn, "SELECT repl.prf(%s, %s, %s)", (value, ikey, okey))
            assert got == hmac.new(secret, value, hashlib.sha256).digest(), (secret, length)


def test_prf_text_and_hash_match_the_python_reference(conn) -> None:
    rng = random.Random(5)
    values = ["", "a", "\\", "\\x41", "\\\\'%", "ünïcødé 漢字 😀"]
    values += [random_text(rng, n) for n in (1, 54, 55, 63, 64, 65, 200, 5000, 100000)]
    for value in values:
        got_prf, got_hash = conn.execute(
            q("SELECT repl.prf_text(%s, %s), repl.mask_hash(%s, {keys})"),
            (value, IKEY, value)).fetchone()
        assert got_prf == ref_prf_text(value)
        if value == "":  # stays empty
            assert got_hash == ""
            continue
        assert got_hash == ref_prf_text("h" + value).hex()
        assert re.fullmatch(r"[0-9a-f]{64}", got_hash)


@pytest.mark.parametrize("encoding", ["LATIN1", "SQL_ASCII"])
def test_same_results_in_a_database_of_another_encoding(db, encoding) -> None:
    """Same secret, same masked values in every target, whatever its encoding."""
    other = create_database(db.cluster, f"{db.name}_{encoding.lower()}",
                            f"ENCODING {encoding} LC_COLLATE 'C' LC_CTYPE 'C' "
                            "TEMPLATE template0")
    try:
        values = ["plain", "Müller-Lüdenscheidt", "café\\n", "Øre ß"]
        query = q("SELECT repl.mask_hash(v, {keys}), repl.mask_email(v, {keys}), "
                  "repl.mask_fake_name(v, {keys}), repl.mask_digits(v || ' 12', {keys}) "
                  "FROM unnest(%s::text[]) AS v")
        with db.connect() as utf8, other.connect() as conn:
            assert conn.execute(query, (values,)).fetchall() == \
                utf8.execute(query, (values,)).fetchall()
            assert one(conn, q("SELECT repl.mask_hash('Müller', {keys})")) == \
                ref_prf_text("hMüller").hex()
    finally:
        drop_database(other)


# --- properties shared by the strategies ----------------------------------------------------

def calls(value: str = "%(v)s", keys: str = KEYS) -> dict[str, str]:
    """One call of every strategy (and overload) on `value`."""
    return {
        **{s: f"repl.mask_{s}({value}::text, {keys})" for s in KEYED},
        "partial": f"repl.mask_partial({value}::text, 1, 2, '*')",
        "redact": f"repl.mask_redact({value}::text)",
        "date_trunc(date)": f"repl.mask_date_trunc({value}::date, 'month')",
        "date_trunc(timestamp)": f"repl.mask_date_trunc({value}::timestamp, 'month')",
        "date_trunc(timestamptz)": f"repl.mask_date_trunc({value}::timestamptz, 'month')",
        "noise(numeric)": f"repl.mask_noise({value}::numeric, 0.1, {keys})",
        "noise(float8)": f"repl.mask_noise({value}::float8, 0.1, {keys}, {FLOAT8_RANGE})",
        "noise(int2)": f"repl.mask_noise({value}::int2::numeric, 0.1, {keys}, 0, {INT2_RANGE})",
        "hash(uuid)": f"repl.mask_hash({value}::uuid, {keys})",
        "hash(bytea)": f"repl.mask_hash({value}::bytea, {keys})",
    }


SAMPLE = {"date_trunc(date)": "2024-05-17", "date_trunc(timestamp)": "2024-05-17 10:11:12",
          "date_trunc(timestamptz)": "2024-05-17 10:11:12+00", "noise(numeric)": "1234.5",
          "noise(float8)": "1234.5", "noise(int2)": "1234",
          "hash(uuid)": "6f1c2a9e-4b7d-4e0a-9c3f-2d8e5b1a7c64", "hash(bytea)": "\\x00ff"}


def test_null_gives_null(conn) -> None:
    for name, call in calls().items():
        assert one(conn, q("SELECT {call}", call=call), {"v": None}) is None, name
    assert one(conn, "SELECT repl.prf(NULL, %s, %s)", (IKEY, OKEY)) is None
    assert one(conn, "SELECT repl.prf_text(NULL, %s)", (IKEY,)) is None


def test_deterministic_across_sessions_and_keyed(db) -> None:
    other_ikey, other_okey = padded_keys(OTHER_SECRET)
    explicit = "%(ikey)s::bytea, %(okey)s::bytea"
    results = []
    for _ in range(2):  # separate sessions: nothing is cached between them
        with db.connect() as conn:
            results.append({
                name: one(conn, q("SELECT {call}", call=call),
                          {"v": SAMPLE.get(name, "Jane Doe 0123")})
                for name, call in calls().items()})
    assert results[0] == results[1]
    with db.connect() as conn:
        for name, call in calls(keys=explicit).items():
            params = {"v": SAMPLE.get(name, "Jane Doe 0123"), "ikey": IKEY, "okey": OKEY}
            assert one(conn, q("SELECT {call}", call=call), params) == results[0][name]
            if name in KEYED or name.startswith(("noise", "hash")):
                params.update(ikey=other_ikey, okey=other_okey)
                assert one(conn, q("SELECT {call}", call=call), params) != results[0][name], \
                    name


def test_attributes(conn) -> None:
    found = {r[0]: r[1:] for r in conn.execute(
        "SELECT proname, bool_and(provolatile = 'i'), bool_and(proparallel = 's'), "
        "       bool_or(prosecdef), bool_or(proconfig IS NOT NULL) "
        "  FROM pg_proc WHERE pronamespace = 'repl'::regnamespace GROUP BY proname")}
    assert STRATEGY_FUNCTIONS <= found.keys()
    key_functions = ("mask_keys", "mask_ikey", "mask_okey")
    for name in found.keys() - set(key_functions):  # every function a strategy adds, too
        assert found[name] == (True, True, False, False), name
    for name in key_functions:
        assert found[name][2:] == (True, True), name  # SECURITY DEFINER, SET search_path


def test_callable_with_an_empty_search_path(conn) -> None:
    """The apply worker's search_path is empty: also within a trigger, as it runs."""
    conn.execute("SET search_path = ''")
    for name, call in calls().items():
        assert one(conn, q("SELECT {call}", call=call),
                   {"v": SAMPLE.get(name, "x 1")}) is not None, name
    for query in ("SELECT repl.prf('\\x01', %(i)s, %(o)s)", "SELECT repl.prf_text('a', %(i)s)",
                  "SELECT repl.mask_first_names()", "SELECT repl.mask_last_names()",
                  "SELECT ikey FROM repl.mask_keys()", "SELECT repl.mask_ikey()"):
        assert one(conn, query, {"i": IKEY, "o": OKEY}) is not None
    conn.execute("RESET search_path")
    conn.execute("CREATE TABLE public.sp (id int, name text, phone text)")
    try:
        body = (f"BEGIN NEW.name := repl.mask_fake_name(NEW.name, {KEYS}); "
                f"NEW.phone := repl.mask_digits(NEW.phone, {KEYS}); RETURN NEW; END")
        conn.execute(sql.SQL("CREATE FUNCTION public.sp_mask() RETURNS trigger "
                             "LANGUAGE plpgsql AS {}").format(sql.Literal(body)))
        conn.execute("CREATE TRIGGER m BEFORE INSERT ON public.sp "
                     "FOR EACH ROW EXECUTE FUNCTION public.sp_mask()")
        conn.execute("SET search_path = ''")
        conn.execute("INSERT INTO public.sp VALUES (1, 'Jane Doe', '555-0123')")
        name, phone = conn.execute("SELECT name, phone FROM public.sp").fetchone()
        assert name != "Jane Doe" and re.fullmatch(r"\d{3}-\d{4}", phone)
    finally:
        conn.execute("DROP TABLE public.sp")
        conn.execute("DROP FUNCTION IF EXISTS public.sp_mask()")


HOSTILE_OPERATORS = [  # (operator, left, right): near misses of what the bodies use
    ("+", "int4", "float8"), ("-", "float8", "int4"), ("*", "int4", "float8"),
    ("/", "int8", "float8"), ("%", "int8", "int4"), ("||", "text[]", "text"),
    ("+", "float8", "int4"), ("*", "float8", "int4"), ("-", "int4", "float8"),
    ("%", "int4", "int8"), ("+", "int8", "int4"), ("*", "numeric", "float8"),
]


def test_operators_of_other_schemas_are_not_picked_up(db) -> None:
    """Installed and run with `public` on the search_path (writable by anyone before
    PostgreSQL 15), near-miss operators there must not replace pg_catalog's."""
    hostile = create_database(db.cluster, f"{db.name}_hostile")
    try:
        with hostile.connect() as conn:
            for i, (op, left, right) in enumerate(HOSTILE_OPERATORS):
                conn.execute(sql.SQL(
                    "CREATE FUNCTION public.{}(a {}, b {}) RETURNS {} LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'hijacked'; END $$").format(
                        sql.Identifier(f"hijack{i}"), sql.SQL(left), sql.SQL(right),
                        sql.SQL(left)))
                conn.execute(sql.SQL("CREATE OPERATOR public.{} (FUNCTION = public.{}, "
                                     "LEFTARG = {}, RIGHTARG = {})").format(
                    sql.SQL(op), sql.Identifier(f"hijack{i}"), sql.SQL(left), sql.SQL(right)))
            with conn.transaction():  # installed with public on the search_path
                for text in install_statements():
                    conn.execute(text)
            conn.execute("SET search_path = public")
            for name, call in calls().items():
                value = SAMPLE.get(name, "+1 555 0123 4567 8901 2345 6789 0123 4567 8901")
                assert one(conn, q("SELECT {call}", call=call), {"v": value}) is not None, name
    finally:
        drop_database(hostile)


def test_no_pgcrypto_and_nothing_outside_core(conn) -> None:
    assert one(conn, "SELECT count(*) FROM pg_extension WHERE extname = 'pgcrypto'") == 0
    definitions = dict(conn.execute(
        "SELECT proname, pg_get_functiondef(oid) FROM pg_proc "
        "WHERE pronamespace = 'repl'::regnamespace").fetchall())
    assert STRATEGY_FUNCTIONS <= set(definitions), STRATEGY_FUNCTIONS - set(definitions)
    for name, definition in definitions.items():
        for word in ("digest(", "hmac(", "crypt(", "gen_random", "pgcrypto"):
            assert word not in definition, (name, word)
    # What the SQL-standard bodies depend on: only pg_catalog (built-ins are pinned, so
    # pg_depend has no rows for them) and repl; any other schema (an extension's,
    # public) would show here.
    outside = column(conn, """
        SELECT DISTINCT n.nspname FROM pg_depend d
          JOIN pg_proc p ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid
          JOIN pg_proc q ON d.refclassid = 'pg_proc'::regclass AND d.refobjid = q.oid
          JOIN pg_namespace n ON n.oid = q.pronamespace
         WHERE p.pronamespace = 'repl'::regnamespace""")
    assert set(outside) == {"repl"}  # repl.prf() and the like: the bodies are SQL-standard


def test_sql_strategies_are_inlined(conn) -> None:
    """No per-call function overhead: the planner replaces these calls by their bodies,
    and the keys and name lists by constants."""
    exprs = [f"repl.mask_hash(v, {KEYS})", f"repl.mask_email(v, {KEYS})",
             f"repl.mask_fake_first_name(v, {KEYS})", f"repl.mask_fake_last_name(v, {KEYS})",
             "repl.mask_partial(v, 1, 2, '*')", "repl.mask_redact(v)",
             "repl.mask_date_trunc(now(), 'month')", "repl.mask_date_trunc(current_date, 'day')",
             "repl.mask_date_trunc(localtimestamp, 'year')",
             f"repl.mask_noise(length(v)::numeric, 0.1, {KEYS})",
             f"repl.mask_noise(length(v)::float8, 0.1, {KEYS}, {FLOAT8_RANGE})",
             f"repl.mask_noise(length(v)::numeric, 0.1, {KEYS}, 0, {INT2_RANGE})",
             f"repl.mask_hash(v::bytea, {KEYS})"]
    for expr in exprs:
        # v is not a constant, or the whole expression would be folded.
        query = q("EXPLAIN (VERBOSE, COSTS OFF) SELECT {expr} FROM generate_series(1, 2) "
                  "AS g, LATERAL (SELECT g::text AS v) AS t", expr=expr)
        plan = "\n".join(column(conn, query))
        assert "repl." not in plan, plan
        assert ("sha256" in plan) == ("mask_ikey" in expr), plan


# --- each strategy ------------------------------------------------------------------------

def test_email_valid_unique_reserved(conn) -> None:
    emails = column(conn, q("SELECT repl.mask_email('person' || g || '@corp.io', {keys}) "
                            "FROM generate_series(1, 100000) AS g"))
    assert len(set(emails)) == 100000
    assert all(EMAIL_RE.fullmatch(e) for e in emails)
    # Case and whitespace matter: distinct inputs, distinct addresses.
    variants = ["a@b.io", "A@b.io", " a@b.io", "a@b.io "]
    got = column(conn, q("SELECT repl.mask_email(v, {keys}) FROM unnest(%s::text[]) AS v"),
                 (variants,))
    assert len(set(got)) == 4
    assert got[0] == "user." + ref_prf_text("ea@b.io").hex()[:24] + "@example.com"


def test_hash_of_uuid_is_a_version_8_uuid_and_of_bytea_its_hmac(conn) -> None:
    """hash keeps a uuid column a uuid and a bytea column a bytea: deterministic, keyed,
    distinct for distinct inputs, NULL and the empty bytea kept."""
    values = [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)] + \
        [uuid.UUID(int=random.Random(9).getrandbits(128)) for _ in range(3)]
    got = column(conn, q("SELECT repl.mask_hash(v, {keys}) FROM unnest(%s::uuid[]) AS v"),
                 (values,))
    for value, masked in zip(values, got, strict=True):
        digest = bytearray(ref_prf_text("u" + str(value))[:16])
        digest[6] = digest[6] & 0x0F | 0x80
        digest[8] = digest[8] & 0x3F | 0x80
        assert masked == uuid.UUID(bytes=bytes(digest)) != value
        assert masked.version == 8 and masked.variant == uuid.RFC_4122
    many = column(conn, q("SELECT repl.mask_hash(gen_random_uuid(), {keys}) "
                          "FROM generate_series(1, 20000)"))
    assert len(set(many)) == 20000
    blobs = [b"\x00", b"\x00\x00", b"b", bytes(range(256)) * 100]
    got = column(conn, q("SELECT repl.mask_hash(v, {keys}) FROM unnest(%s::bytea[]) AS v"),
                 (blobs,))
    assert got == [hmac.new(SECRET, b"b" + blob, hashlib.sha256).digest() for blob in blobs]
    assert conn.execute(q("SELECT repl.mask_hash(''::bytea, {keys}), "
                          "repl.mask_hash(NULL::bytea, {keys}), "
                          "repl.mask_hash(NULL::uuid, {keys})")).fetchone() == (b"", None, None)


def test_fake_names_from_builtin_lists(conn) -> None:
    firsts = one(conn, "SELECT repl.mask_first_names()")
    lasts = one(conn, "SELECT repl.mask_last_names()")
    for names in (firsts, lasts):
        assert len(names) == len(set(names)) >= 200
        assert all(re.fullmatch(r"[A-Z][A-Za-z' ]+", n) and len(n.encode()) <= 63
                   for n in names)
    rows = conn.execute(
        q("SELECT v, repl.mask_fake_first_name(v, {keys}), repl.mask_fake_last_name(v, {keys}),"
          "       repl.mask_fake_name(v, {keys}) "
          "FROM (SELECT 'Person ' || g AS v FROM generate_series(1, 20000) AS g) AS s")
    ).fetchall()
    pairs = set()
    for value, first, last, full in rows:
        assert first == firsts[int(ref_prf_text("f" + value).hex()[:8], 16) % len(firsts)]
        assert last == lasts[int(ref_prf_text("l" + value).hex()[:8], 16) % len(lasts)]
        full_first, full_last = full.split(" ")
        assert full_first in firsts and full_last in lasts
        pairs.add((full_first, full_last))
    assert len({r[1] for r in rows}) == len(firsts)  # every name gets used
    assert len({r[2] for r in rows}) == len(lasts)
    # First and last names of fake_name come from independent bits: ~18,300 distinct
    # pairs expected among 20,000 draws; far fewer if they were correlated.
    assert len(pairs) > 17000
    by_value = {r[0]: r[3] for r in rows}
    assert one(conn, q("SELECT repl.mask_fake_name('Person 7', {keys})")) == \
        by_value["Person 7"]


def test_digits_keep_format_and_change_digits(conn) -> None:
    rng = random.Random(7)
    values = ["+49 (30) 1234-567", "100% sure: 42", "", "no digits", "0", "٣ arabic-indic",
              "ÄÖ 12 €", "4111 1111 1111 1111", "%%%", "1" * 15, "12" * 8, "x9" * 30,
              "9" * 61, "5" * 1000, "1-" * 50000]
    values += ["".join(rng.choice("0123456789 +-()") for _ in range(rng.randrange(1, 40)))
               for _ in range(300)]
    got = column(conn, q("SELECT repl.mask_digits(v, {keys}) FROM unnest(%s::text[]) AS v"),
                 (values,))
    counts: Counter[str] = Counter()
    for value, masked in zip(values, got, strict=True):
        assert len(masked) == len(value)
        for a, b in zip(value, masked, strict=True):
            assert (b in string.digits) if a in string.digits else (b == a), (value, masked)
        counts.update(b for b in masked if b in string.digits)
        if sum(c in string.digits or c == "%" for c in value) <= 15:
            assert masked == ref_digits(value)
    # Uniform replacement digits.
    total = sum(counts.values())
    assert all(0.09 < counts[d] / total < 0.11 for d in string.digits), counts
    # Almost every phone number changes (a 7-digit one stays with probability 10^-7).
    phones = column(conn, q("SELECT v = repl.mask_digits(v, {keys}) FROM ("
                            "SELECT '+1 555 ' || lpad(g::text, 7, '0') AS v "
                            "FROM generate_series(1, 10000) AS g) AS s"))
    assert sum(phones) <= 1
    long = "1" * 100000
    assert one(conn, q("SELECT repl.mask_digits(%s, {keys})"), (long,)) != long


def test_partial_keeps_ends_and_never_returns_a_short_value(conn) -> None:
    cases = [("4111111111111111", 0, 4, "*", "************1111"),
             ("abcdef", 2, 1, "#", "ab###f"),
             ("Jürgen", 1, 1, "*", "J****n"),
             ("abcdef", 0, 0, "*", "******"),
             ("abcdef", 1, 1, None, "a****f"),
             ("abcdef", 1, 1, "", "a****f"),
             ("abcdef", 1, 1, "xy", "axxxxf"),
             ("abcdef", -3, 2, "*", "****ef"),
             ("1234", 0, 4, "*", "****"),
             ("ab", 1, 1, "*", "**"),
             ("abc", 5, 0, "*", "***"),
             ("", 1, 1, "*", ""),
             (None, 1, 1, "*", None)]
    for value, first, last, fill, expected in cases:
        got = one(conn, "SELECT repl.mask_partial(%s, %s, %s, %s)", (value, first, last, fill))
        assert got == expected, (value, first, last, fill)
    # Exhaustively for short values: length kept, never returned unmasked.
    query = ("SELECT repl.mask_partial(v, f, l, '*'), v, f, l "
             "FROM (SELECT left('abcdefgh', n) AS v FROM generate_series(1, 8) AS n) AS s, "
             "generate_series(0, 9) AS f, generate_series(0, 9) AS l")
    for masked, value, first, last in conn.execute(query).fetchall():
        assert len(masked) == len(value) and masked != value
        if first + last < len(value):
            assert masked == value[:first] + "*" * (len(value) - first - last) + \
                (value[len(value) - last:] if last else "")
        else:
            assert masked == "*" * len(value)


def test_redact(conn) -> None:
    assert conn.execute("SELECT repl.mask_redact('secret'), repl.mask_redact(''), "
                        "repl.mask_redact(NULL)").fetchone() == ("REDACTED", "", None)


def test_empty_string_stays_empty(conn) -> None:
    """'' carries no personal data: every text strategy keeps it, and keeps the same
    result for the rest (a blank is not empty)."""
    for name, call in calls().items():
        if "::text" in call:
            assert one(conn, q("SELECT {call}", call=call), {"v": ""}) == "", name
            assert one(conn, q("SELECT {call}", call=call), {"v": " "}) not in ("", None), \
                name


def test_date_trunc_types_and_time_zones(db) -> None:
    query = ("SELECT repl.mask_date_trunc('2024-05-17'::date, 'year'), "
             "repl.mask_date_trunc('2024-05-17 10:11:12'::timestamp, 'month'), "
             "repl.mask_date_trunc('2024-03-01 05:00:00+00'::timestamptz, %s), "
             "pg_typeof(repl.mask_date_trunc('2024-05-17'::date, 'day'))::text, "
             "pg_typeof(repl.mask_date_trunc(localtimestamp, 'day'))::text, "
             "pg_typeof(repl.mask_date_trunc(now(), 'day'))::text")
    results = {}
    for zone in ("UTC", "Pacific/Auckland", "America/Los_Angeles"):
        with db.connect() as conn:
            conn.execute(sql.SQL("SET TimeZone = {}").format(sql.Literal(zone)))
            results[zone] = [conn.execute(query, (unit,)).fetchone()
                             for unit in ("year", "month", "day")]
    assert results["UTC"] == results["Pacific/Auckland"] == results["America/Los_Angeles"]
    utc = UTC
    assert [r[2] for r in results["UTC"]] == [datetime(2024, 1, 1, tzinfo=utc),
                                              datetime(2024, 3, 1, tzinfo=utc),
                                              datetime(2024, 3, 1, tzinfo=utc)]
    year = results["UTC"][0]
    assert year[:2] == (date(2024, 1, 1), datetime(2024, 5, 1))
    assert year[3:] == ("date", "timestamp without time zone", "timestamp with time zone")


def test_date_trunc_results_are_values_of_the_type(conn) -> None:
    """At both ends of the types' ranges, where plain date_trunc() fails."""
    cases = [("'4714-11-24 BC'::date", "year", "4713-01-01 BC"),
             ("'4714-12-31 BC'::date", "day", "4713-01-01 BC"),
             ("'4713-02-01 BC'::date", "month", "4713-02-01 BC"),
             ("'5874897-12-31'::date", "year", "294276-01-01"),
             ("'294276-12-31'::date", "month", "294276-12-01"),
             ("'-infinity'::date", "year", "-infinity"),
             ("'4714-11-24 05:00 BC'::timestamp", "month", "4713-01-01 00:00:00 BC"),
             ("'294276-12-31 23:59:59'::timestamp", "year", "294276-01-01 00:00:00"),
             ("'infinity'::timestamp", "day", "infinity"),
             ("'4714-11-24 00:00+00 BC'::timestamptz", "year", "4713-01-01 00:00:00+00 BC"),
             ("'294276-12-31 23:59:59+00'::timestamptz", "day", "294276-12-31 00:00:00+00")]
    conn.execute("SET TimeZone = 'UTC'")
    for value, unit, expected in cases:
        got = one(conn, q("SELECT repl.mask_date_trunc({v}, %s)::text", v=value), (unit,))
        assert got == expected, (value, unit)


def test_noise_within_ratio_and_deterministic(conn) -> None:
    rows = conn.execute(
        q("SELECT g, repl.mask_noise(g::numeric, 0.1, {keys}), "
          "repl.mask_noise(g::float8, 0.1, {keys}, {f8}), "
          "repl.mask_noise(g::numeric, 0.5, {keys}) "
          "FROM generate_series(-500, 2000) AS g WHERE g <> 0", f8=FLOAT8_RANGE)).fetchall()
    higher = 0
    for value, as_numeric, as_float, wide in rows:
        assert abs(as_numeric / value - 1) <= Decimal("0.1")
        assert abs(wide / value - 1) <= Decimal("0.5")
        assert abs(as_float - float(as_numeric)) <= 1e-9 * abs(value)  # same factor
        u = int(ref_prf_text(f"r{value}").hex()[:13], 16) / 2**52
        assert as_numeric == value * Decimal(format(1 + 0.1 * (2 * u - 1), ".15g"))
        higher += as_numeric > value
    assert 0.4 < higher / len(rows) < 0.6
    # Canonical text: the same value whatever its scale or type.
    same = conn.execute(
        q("SELECT repl.mask_noise(1.5, 0.2, {keys}) = repl.mask_noise(1.500, 0.2, {keys}), "
          "repl.mask_noise(42::numeric, 0.2, {keys}) = repl.mask_noise(42.0, 0.2, {keys}), "
          "repl.mask_noise(0::numeric, 0.2, {keys}), repl.mask_noise('NaN'::numeric, 0.2, {keys}),"
          "repl.mask_noise('Infinity'::float8, 0.2, {keys}, {f8})", f8=FLOAT8_RANGE)).fetchone()
    assert same[:3] == (True, True, 0)
    assert same[3].is_nan() and same[4] == float("inf")


def test_noise_fits_the_column_type(conn) -> None:
    """Rounded to the column's scale and clamped into its range; inside that range, the
    value the unbounded formula gives (so stable values are those of before)."""
    values = [Decimal(g) / 100 for g in range(-99999, 100000, 7)] + \
        [Decimal("999.99"), Decimal("-999.99"), Decimal("0"), Decimal("NaN")]
    rows = conn.execute(q(
        "SELECT v, repl.mask_noise(v, 1, {keys}), repl.mask_noise(v, 1, {keys}, 2, "
        "'-999.99'::numeric, '999.99'::numeric) FROM unnest(%s::numeric[]) AS v"),
        (values,)).fetchall()
    bound, clamped = Decimal("999.99"), 0
    for value, free, fitted in rows:
        if value.is_nan():
            assert fitted.is_nan()
            continue
        expected = min(max(free.quantize(Decimal("0.01"), ROUND_HALF_UP), -bound), bound)
        assert fitted == expected and fitted.as_tuple().exponent == -2, value
        clamped += abs(fitted) == bound and abs(value) != bound
    assert clamped > 100  # ratio 1: about a quarter of the values above 500 overflow
    # Integers round, and stop at the type's ends.
    ends = column(conn, q("SELECT repl.mask_noise(v::numeric, 1, {keys}, 0, {int2}) "
                          "FROM unnest(%s::int2[]) AS v", int2=INT2_RANGE),
                  ([32767, 32766, 32000, -32768, -32000],))
    assert all(-32768 <= e <= 32767 and e == int(e) for e in ends)
    assert {32767, -32768} <= set(ends)
    # Floats: the product, clamped into [smallest normal, largest finite] by magnitude;
    # a subnormal becomes 0. For real, the bounds of real.
    floats = [1.7976931348623157e308, -1.7976931348623157e308, 1e308, -3e307, 1.0, -2.5,
              3e-308, -2.2250738585072014e-308, 5e-324, -1e-310, 0.0]
    smallest, largest = 2.2250738585072014e-308, 1.7976931348623157e308
    for ratio in (1, 0.1):
        got = conn.execute(q(
            "SELECT v, repl.mask_noise_factor(v::numeric, %s, repl.mask_ikey()), "
            "repl.mask_noise(v, %s, {keys}, {f8}) FROM unnest(%s::float8[]) AS v",
            f8=FLOAT8_RANGE), (ratio, ratio, floats)).fetchall()
        for value, factor, fitted in got:
            if abs(value) < smallest:
                assert fitted == 0, value
                continue
            product = abs(value) * factor  # inf where PostgreSQL would raise an error
            expected = math.copysign(min(max(product, smallest), largest), value)
            assert fitted == expected, (value, ratio)
    real = column(conn, q("SELECT repl.mask_noise(v, 1, {keys}, 1.1754943508222875e-38::float8,"
                          " 3.4028234663852886e+38::float8)::real FROM unnest(%s::float8[]) AS v"),
                  ([3.4028234663852886e38, -3.4028234663852886e38, 1.2e-38, 1e-45],))
    assert all(math.isfinite(r) for r in real) and real[3] == 0  # the cast raised nothing


# --- keys ---------------------------------------------------------------------------------

def test_keys_checks_and_privileges(db, conn) -> None:
    assert conn.execute("SELECT ikey, okey FROM repl.mask_keys()").fetchone() == (IKEY, OKEY)
    assert conn.execute("SELECT repl.mask_ikey(), repl.mask_okey()").fetchone() == (IKEY, OKEY)
    for change in ("DELETE FROM repl.secret",
                   "INSERT INTO repl.secret SELECT * FROM repl.secret",
                   "UPDATE repl.secret SET ikey = '\\x00'"):
        with pytest.raises(psycopg.errors.DatabaseError, match="repl.secret"):
            with conn.transaction():
                conn.execute(change)
                conn.execute("SELECT * FROM repl.mask_keys()")
    role = f"masking_sql_reader_{os.getpid()}"
    conn.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
    try:
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA repl TO {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))
        for query in ("SELECT * FROM repl.mask_keys()", "SELECT repl.mask_ikey()",
                      "SELECT repl.mask_okey()"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(query)
        # The strategies themselves hold nothing secret.
        assert one(conn, "SELECT repl.mask_hash('x', %s, %s)", (IKEY, OKEY)) == \
            ref_prf_text("hx").hex()
    finally:
        conn.execute("RESET ROLE")
        conn.execute(sql.SQL("REVOKE ALL ON SCHEMA repl FROM {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_keys_are_plan_constants_refreshed_by_reinstalling(db) -> None:
    """A session reads the keys once per cached plan; re-running the install statements
    after repl.secret changed makes every session read them again."""
    other_ikey, other_okey = padded_keys(OTHER_SECRET)
    with db.connect() as setup:
        setup.execute(sql.SQL("CREATE FUNCTION public.current_mask() RETURNS text "
                              "LANGUAGE plpgsql AS {}").format(
            sql.Literal(f"BEGIN RETURN repl.mask_hash('v', {KEYS}); END")))
    try:
        with db.connect() as worker, db.connect() as admin:
            before = one(worker, "SELECT public.current_mask()")
            assert before == ref_prf_text("hv").hex()
            admin.execute("UPDATE repl.secret SET ikey = %s, okey = %s",
                          (other_ikey, other_okey))
            # Stale until the plan is invalidated (documented in keys.sql).
            assert one(worker, "SELECT public.current_mask()") == before
            with admin.transaction():
                for text in install_statements():
                    admin.execute(text)
            assert one(worker, "SELECT public.current_mask()") == \
                ref_prf_text("hv", other_ikey).hex()
    finally:
        with db.connect() as setup:
            setup.execute("UPDATE repl.secret SET ikey = %s, okey = %s", (IKEY, OKEY))
            setup.execute("DROP FUNCTION public.current_mask()")
            with setup.transaction():
                for text in install_statements():
                    setup.execute(text)
