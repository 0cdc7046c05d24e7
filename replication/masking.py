"""Masking on the target (SPEC section 4): which strategy fits which column type, the type
a masked column gets on the target, and the per-table BEFORE trigger function that
calls the strategy functions of sql/masking/.

The trigger is ENABLE ALWAYS so that it fires in the apply and table-sync workers
(session_replication_role = replica), for the initial COPY and every change.
"""

from __future__ import annotations

import hashlib

import psycopg
from psycopg import sql

from .config import MaskSpec
from .masking_sql import install_statements
from .model import Column, SourceColumn
from .names import QualifiedName

TRIGGER_NAME = "repl_mask"
# Strategies whose result is text whatever the source type: the target column is text,
# so a 64-character hash always fits where production had varchar(20).
TEXT_RESULT = {"hash", "email", "fake_name", "fake_first_name", "fake_last_name", "digits",
               "partial", "redact"}
KEYED = {"hash", "email", "fake_name", "fake_first_name", "fake_last_name", "digits", "noise"}
# Strategies that never map two values to one (a keyed PRF of 256 bits; an address unique
# per input): a unique index over such a column stays unique on the target. Every other
# strategy can collide (a name list, a fill, a constant, a truncation, noise, NULL, any
# `sql`), so production's unique index over it is built as a plain one.
# The masking strategy registry is to carry this as each strategy's `injective` flag.
INJECTIVE = frozenset({"email", "hash"})
DATE_TYPES = {"date", "timestamp", "timestamptz"}
NUMBER_TYPES = {"int2", "int4", "int8", "numeric", "float4", "float8"}
INTEGER_TYPES = {"int2", "int4", "int8"}


def library_version() -> str:
    """Digest of the masking functions' SQL: a new repl version with other functions
    re-copies masked tables, so that no row keeps a value masked by the old code."""
    return hashlib.sha256("\n".join(install_statements()).encode()).hexdigest()[:16]


def type_problem(spec: MaskSpec, column: SourceColumn) -> str | None:
    """Why `spec` cannot mask `column`, or None when it can."""
    strategy = spec.strategy
    if strategy in TEXT_RESULT and column.type_category != "S":
        return (f"masking strategy {strategy} needs a text-like column, not {column.type}; "
                "use null, sql or another strategy")
    if strategy == "date_trunc" and column.type_name not in DATE_TYPES:
        return f"date_trunc needs a date or timestamp column, not {column.type}"
    if strategy == "noise" and column.type_name not in NUMBER_TYPES:
        return f"noise needs a numeric column, not {column.type}"
    return None


def target_column(spec: MaskSpec | None, column: SourceColumn) -> Column:
    """The column as the target stores it: masked results must always fit."""
    if spec is None:
        return Column(column.name, column.type, column.not_null)
    if spec.strategy in TEXT_RESULT:
        return Column(column.name, "text", column.not_null)
    if spec.strategy == "null":
        return Column(column.name, column.type, False)
    if spec.strategy == "sql" and column.type_category == "S":
        return Column(column.name, "text", column.not_null)  # a varchar(5) grows
    return Column(column.name, column.type, column.not_null)


def function_name(relation: QualifiedName) -> str:
    """One trigger function per table, named by a digest so any table name fits."""
    digest = hashlib.sha256(f"{relation.schema}\0{relation.name}".encode()).hexdigest()
    return f"mask_{digest[:24]}"


def sql_mask_function(relation: QualifiedName, column: SourceColumn, spec: MaskSpec) -> str:
    """A custom `sql` mask becomes a SQL function of its own, named by a digest of
    everything that defines it, so that any change makes a new function (and so a new
    trigger body, hence a re-copy)."""
    parts = (relation.schema, relation.name, column.name, target_column(spec, column).type,
             str(spec.param("expression")))
    return f"mask_sql_{hashlib.sha256(chr(0).join(parts).encode()).hexdigest()[:24]}"


def create_sql_mask(relation: QualifiedName, column: SourceColumn, spec: MaskSpec,
                    schema: str = "repl") -> sql.Composable:
    """The function of a custom `sql` mask. Its body is one SQL expression of `value`,
    parsed and bound when the function is created (a SQL-standard body): sent as one
    statement, the user's text cannot add another, and nothing is spliced into PL/pgSQL.
    `value` has the column's type on the target, as the trigger sees it."""
    stored = sql.SQL(target_column(spec, column).type)
    return sql.SQL("CREATE OR REPLACE FUNCTION {}({} {}) RETURNS {} LANGUAGE sql "
                   "RETURN ({}\n)").format(  # the newline: see validate.probe_row_filters
        sql.Identifier(schema, sql_mask_function(relation, column, spec)),
        sql.Identifier("value"), stored, stored, sql.SQL(str(spec.param("expression"))))


def mask_expression(spec: MaskSpec, ref: str, column: SourceColumn,
                    relation: QualifiedName) -> str:
    """The masked value of `ref` (NEW."col"), as the trigger computes it; the keys are
    in `ikey` and `okey`. Also used by verify, which must compute exactly the same."""
    s = spec.strategy
    if s == "sql":
        return f"repl.{sql_mask_function(relation, column, spec)}({ref})"
    if s in ("hash", "email", "fake_name", "fake_first_name", "fake_last_name", "digits"):
        return f"repl.mask_{s}({ref}::text, ikey, okey)"
    if s == "partial":
        return "repl.mask_partial({}::text, {}, {}, {})".format(
            ref, int(spec.param("keep_first", 0)), int(spec.param("keep_last", 0)),
            sql.Literal(str(spec.param("fill", "*"))).as_string(None))
    if s == "redact":
        return f"repl.mask_redact({ref}::text)"
    if s == "null":
        return "NULL"
    if s == "date_trunc":
        return "repl.mask_date_trunc({}, {})".format(
            ref, sql.Literal(str(spec.param("unit"))).as_string(None))
    if s == "noise":
        ratio = float(spec.param("ratio"))
        if column.type_name in ("float4", "float8"):
            return f"repl.mask_noise({ref}::float8, {ratio!r}::float8, ikey, okey)"
        result = f"repl.mask_noise({ref}::numeric, {ratio!r}::float8, ikey, okey)"
        return f"pg_catalog.round({result})" if column.type_name in INTEGER_TYPES else result
    raise ValueError(f"no expression for strategy {s}")


def trigger_body(relation: QualifiedName, masks: dict[str, MaskSpec],
                 columns: dict[str, SourceColumn]) -> str:
    """PL/pgSQL body of the table's masking trigger function.

    On UPDATE a column whose NEW value equals the stored OLD one is left alone: that is
    what the apply worker hands over for an unchanged TOASTed value (the target's own,
    already masked value), and masking it again would change it (SPEC: stable).
    Every other NEW value is the raw production value and is masked again, to the same
    result, since every strategy is deterministic. Values compare as text: every type
    has a text form, not every type an equality operator (json).
    """
    lines = []
    # The key functions are IMMUTABLE without arguments: plpgsql plans each default
    # expression once per session and keeps the keys as a constant of the plan, so no
    # row pays a lookup (sql/masking/keys.sql says when they are read again).
    keyed = any(spec.strategy in KEYED for spec in masks.values())
    declare = ("DECLARE\n    ikey bytea := repl.mask_ikey();\n"
               "    okey bytea := repl.mask_okey();\n") if keyed else ""
    for name in sorted(masks):
        spec = masks[name]
        ref = "NEW." + sql.Identifier(name).as_string(None)
        old = "OLD." + sql.Identifier(name).as_string(None)
        if spec.strategy == "null":
            lines.append(f"    {ref} := NULL;")
            continue
        assign = f"        {ref} := {mask_expression(spec, ref, columns[name], relation)};"
        lines.append(f"    IF TG_OP = 'INSERT' OR {ref}::text IS DISTINCT FROM {old}::text THEN\n"
                     f"{assign}\n    END IF;")
    return f"\n{declare}BEGIN\n" + "\n".join(lines) + "\n    RETURN NEW;\nEND\n"


# The body a masking trigger has while its table waits to be emptied and copied again:
# it stores nothing (RETURN NULL skips the row). Not the table's real body, so that a
# setup interrupted before the re-copy still finds "masking changed" and copies it.
GUARD_BODY = "\nBEGIN\n    RETURN NULL;  -- until the table is copied again\nEND\n"


def store_key(conn: psycopg.Connection, ikey: bytes, okey: bytes, origin: str) -> None:
    """Replace the stored key, in the caller's transaction. Sent as COPY data, which no
    log setting (log_statement, log_min_duration_statement, a failing statement's text)
    writes to the server log: a literal or a bound parameter would be logged wherever
    statements are, and only a superuser may turn that off for its session."""
    conn.execute("DELETE FROM repl.secret")
    with conn.cursor().copy("COPY repl.secret (ikey, okey, source) FROM STDIN") as copy:
        copy.write_row((ikey, okey, origin))


def create_function(relation: QualifiedName, body: str) -> sql.Composable:
    """SECURITY DEFINER: it reads the key only repl's owner may read; a fixed search_path
    because apply workers run with an empty one."""
    return sql.SQL("CREATE OR REPLACE FUNCTION {}() RETURNS trigger LANGUAGE plpgsql "
                   "SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS {}").format(
        sql.Identifier("repl", function_name(relation)), sql.Literal(body))


def create_trigger(relation: QualifiedName, body: str,
                   sql_masks: list[sql.Composable]) -> list[sql.Composable]:
    function = sql.Identifier("repl", function_name(relation))
    table = sql.Identifier(relation.schema, relation.name)
    trigger = sql.Identifier(TRIGGER_NAME)
    return [
        *sql_masks,
        create_function(relation, body),
        sql.SQL("COMMENT ON FUNCTION {}() IS {}").format(
            function, sql.Literal(f"repl masking trigger of {relation}")),
        sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(trigger, table),
        sql.SQL("CREATE TRIGGER {} BEFORE INSERT OR UPDATE ON {} "
                "FOR EACH ROW EXECUTE FUNCTION {}()").format(trigger, table, function),
        sql.SQL("ALTER TABLE {} ENABLE ALWAYS TRIGGER {}").format(table, trigger),
    ]


def drop_trigger(relation: QualifiedName) -> list[sql.Composable]:
    return [
        sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(
            sql.Identifier(TRIGGER_NAME), sql.Identifier(relation.schema, relation.name)),
        sql.SQL("DROP FUNCTION IF EXISTS {}()").format(
            sql.Identifier("repl", function_name(relation))),
    ]
