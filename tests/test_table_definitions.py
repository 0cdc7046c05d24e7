"""What a target table gets of production's definition (table_definitions), as a table of
cases, without a server: production's table as the catalog reader builds it, a table
config, and the indexes, generated columns, defaults and sequences the target gets."""

from __future__ import annotations

from dataclasses import replace

import pytest

from replication.config import TableConfig
from replication.masking import target_column
from replication.model import ReplicaIdentity, SourceColumn, SourceTable
from replication.names import QualifiedName
from replication.table_definitions import index_name, table_parts
from replication.table_model import Definition, Sequence, SourceIndex

PEOPLE = QualifiedName("public", "people")


def column(attnum: int, name: str, type_: str = "text", definition=None) -> SourceColumn:
    type_name = {"text": "text", "integer": "int4", "bigint": "int8"}.get(type_, type_)
    return SourceColumn(attnum, name, type_, False, bool(definition and definition.generated),
                        "pg_catalog", type_name, "S" if type_ == "text" else "N",
                        definition=definition)


def index(name: str, attnums, definition: str, **kw) -> SourceIndex:
    base = dict(name=name, unique=False, primary=False, replica_identity=False,
                deferrable=False, has_expressions=False, definition=definition,
                attnums=tuple(attnums), default_opclasses=True)
    return SourceIndex(**{**base, **kw})


SEQ = Sequence(QualifiedName("public", "people_id_seq"), "id", "a", "bigint", 1, 1, 1,
               2**63 - 1, 1, False, 42)
SOURCE = SourceTable(
    PEOPLE, 16400, "r", "postgres", True, 10,
    (column(1, "id", "bigint", Definition("id", None, identity="a")),
     column(2, "name"), column(3, "email"),
     column(4, "plan", definition=Definition("plan", "'free'::text")),
     column(5, "score", "integer"),
     column(6, "double", "integer", Definition("double", "(score * 2)", "s", attnums=(5,))),
     column(7, "slug", definition=Definition("slug", "public.slugify(name)", "s", attnums=(2,),
                                             requires=("function public.slugify(text)",)))),
    ReplicaIdentity("d", ("id",), "people_pkey", True),
    indexes=(index("people_pkey", [1], "USING btree (id)", unique=True, primary=True),
             index("people_name_key", [2], "USING btree (name)", unique=True),
             index("people_email_key", [3], "USING btree (email)", unique=True),
             index("people_lower_email", [3], "USING btree (lower(email))", unique=True,
                   has_expressions=True),
             index("people_plan_score", [4, 5], "USING btree (plan) WHERE (score > 0)"),
             index("people_double", [6], "USING btree (double)"),
             index("people_trgm", [2], "USING gin (name public.gin_trgm_ops)",
                   default_opclasses=False, requires=("operator class public.gin_trgm_ops",)),
             index("people_deferred", [5], "USING btree (score)", unique=True,
                   deferrable=True)),
    sequences=(SEQ,))


def parts(masks=None, columns=("name", "email", "plan", "score", "double"), **kw):
    table = TableConfig(columns=columns, mask=masks or {}, **kw)
    listed = {"id", *(c.name for c in SOURCE.columns if columns == "all" or c.name in columns)}
    targets = tuple(target_column(table.mask.get(c.name), c) for c in SOURCE.columns
                    if c.name in listed and not c.generated)
    return table_parts(PEOPLE, table, SOURCE, targets, 18, {"public"})


def built(p) -> dict[str, bool]:
    return {i.source: i.unique for i in p.indexes}


ALL_BUT_KEY = {"people_name_key": True, "people_email_key": True, "people_lower_email": True,
               "people_plan_score": False, "people_double": False, "people_deferred": False}

CASES = {
    "unmasked: every index but the key and what needs objects repl does not create": (
        {}, {}, ALL_BUT_KEY),
    "fake_name makes a unique index plain; email keeps it unique": (
        {"name": "fake_name", "email": "email"}, {},
        {**ALL_BUT_KEY, "people_name_key": False, "people_lower_email": False}),
    "hash keeps it unique; an expression over a masked column does not": (
        {"email": "hash"}, {}, {**ALL_BUT_KEY, "people_lower_email": False}),
    "not every operation replicated: no unique index stays unique": (
        {}, {"operations": ["insert"]}, {k: False for k in ALL_BUT_KEY}),
    "a column the target lacks takes its indexes with it (predicates too)": (
        {}, {"columns": ("name", "plan")}, {"people_name_key": True}),
}


@pytest.mark.parametrize("masks, options, expected", CASES.values(), ids=CASES.keys())
def test_which_indexes_a_target_gets(masks, options, expected):
    p = parts(masks, **options)
    assert built(p) == expected


def test_what_is_left_out_is_said_and_names_are_digests():
    p = parts({"name": "fake_name"})
    notes = "\n".join(p.notes)
    assert "people_trgm is not built on the target: it uses operator class " \
           "public.gin_trgm_ops" in notes
    assert "unique index people_name_key is built as a plain index on the target: masked by " \
           "a strategy that can map two values to one: name (fake_name)" in notes
    assert "people_deferred is built as a plain index on the target: it is DEFERRABLE" in notes
    name = index_name(PEOPLE, False, "USING btree (name)", "people_name_key")
    assert name.startswith("repl_people_name_key_") and len(name) == 31
    assert name in {i.name for i in p.indexes}
    assert name != index_name(PEOPLE, True, "USING btree (name)", "people_name_key")
    long = index_name(PEOPLE, False, "USING btree (x)", "é" * 40)
    assert len(long.encode()) <= 63 and long.startswith("repl_é")


def test_generated_columns_defaults_and_sequences():
    p = parts({"plan": "redact"})
    assert [(g.name, g.expression, g.reads) for g in p.generated] == \
        [("double", "(score * 2)", ("score",))]
    assert p.defaults == ()  # plan is masked: production's default would be a raw value
    assert p.sequences == (SEQ,)
    assert parts().defaults == (("plan", "'free'::text"),)
    # under `all`, a generated column the target cannot compute is left out, with a note
    everything = parts(columns="all")
    assert [g.name for g in everything.generated] == ["double"]
    assert any("generated column slug is left out: it uses function public.slugify(text)"
               in n for n in everything.notes)
    # status (existing=...): under `all`, only those the target has already
    assert parts(columns="all").generated and not table_parts(
        PEOPLE, TableConfig(columns="all"), SOURCE, (), 18, {"public"}, existing=set()
    ).generated
    # a virtual column (PostgreSQL 18) stays virtual on an 18 target, stored on older ones
    virtual = replace(SOURCE, columns=tuple(
        replace(c, definition=replace(c.definition, generated="v")) if c.name == "double"
        else c for c in SOURCE.columns))
    cols = tuple(target_column(None, c) for c in virtual.columns if not c.generated)
    kinds = {major: [g.kind for g in table_parts(PEOPLE, TableConfig(columns="all"), virtual,
                                                 cols, major, {"public"}).generated]
             for major in (15, 18)}
    assert kinds == {15: ["s"], 18: ["v"]}
