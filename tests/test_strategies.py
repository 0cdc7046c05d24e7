"""The registry of masking strategies (replication/strategies.py), one shared test for all
of them: every record's examples masked on real servers of every installed major version
by the trigger repl builds, fed as the table sync feeds it (COPY text out of a column of
the source type, into the column type the registry chose). For each: the result fits
that type, the same value masks alike in two tables and again in the same table, NULL
stays NULL and '' stays '', a keyed strategy depends on the key, an injective one keeps
distinct inputs distinct. And the docs' table of strategies lists exactly the
registry's."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import pytest
from psycopg import sql
from test_masking_sql import MAJORS, create_database, drop_database

from replication.catalog import source_tables
from replication.config import MaskSpec, QualifiedName, TableConfig
from replication.db import Database as Db
from replication.masking import (
    create_sql_mask,
    create_trigger,
    target_column,
    trigger_body,
    type_problem,
)
from replication.masking_sql import install_statements, padded_keys
from replication.model import SourceColumn
from replication.strategies import REGISTRY, Example, Strategy

ROOT = Path(__file__).resolve().parent.parent
CASES = [pytest.param(s, i, id=f"{s.name}-{i}-{e.type}")
         for s in REGISTRY.values() for i, e in enumerate(s.examples)]
OTHER_KEYS = padded_keys(b"another secret")


@pytest.fixture(scope="module", params=MAJORS, ids=[f"pg{m}" for m in MAJORS])
def db(request, servers):
    database = create_database(servers.get(request.param, "a"),
                               f"strategies_{os.getpid()}_{request.param}")
    try:
        yield database
    finally:
        drop_database(database)


def spec_of(strategy: Strategy, example: Example) -> MaskSpec:
    """The example's mask as repl.yaml would give it."""
    written = strategy.name if example.mask is None else example.mask
    return TableConfig.model_validate({"columns": ["c"], "mask": {"c": written}}).mask["c"]


class Case:
    """A schema of its own: the source table `src` and target tables with the trigger."""

    def __init__(self, conn, strategy: Strategy, index: int, schema: str | None = None):
        example = strategy.examples[index]
        self.conn, self.strategy, self.example = conn, strategy, example
        self.schema = schema or f"case_{strategy.name}_{index}"
        self.spec = spec_of(strategy, example)
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {0} CASCADE; CREATE SCHEMA {0}").format(
            sql.Identifier(self.schema)))
        conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, c {})").format(
            sql.Identifier(self.schema, "src"), sql.SQL(example.type)))
        relation = QualifiedName(self.schema, "src")
        db = Db("test", conn, conn.info.server_version)
        self.column = source_tables(db, [relation])[relation].column("c")
        self.text_like = self.column.type_category == "S"
        self.values: list[str | None] = [*example.values, *([""] if self.text_like else []),
                                         None]
        conn.execute(sql.SQL("INSERT INTO {} SELECT n, CAST(v AS {}) FROM "
                             "unnest(%s::text[]) WITH ORDINALITY AS u(v, n)").format(
            sql.Identifier(self.schema, "src"), sql.SQL(example.type)), (self.values,))

    def target(self, name: str) -> QualifiedName:
        """A target table of the registry's column type, behind repl's masking trigger."""
        relation = QualifiedName(self.schema, name)
        column = target_column(self.spec, self.column)
        self.conn.execute(sql.SQL("CREATE TABLE {} (id int, c {} {})").format(
            sql.Identifier(relation.schema, relation.name), sql.SQL(column.type),
            sql.SQL("NOT NULL" if column.not_null else "NULL")))
        functions = [create_sql_mask(relation, self.column, self.spec)] \
            if self.spec.strategy == "sql" else []
        body = trigger_body(relation, {"c": self.spec}, {"c": self.column})
        for statement in create_trigger(relation, body, functions):
            self.conn.execute(statement)
        return relation

    def copy(self, into: QualifiedName, offset: int = 0) -> None:
        """The source's rows as the table sync sends them: COPY text of the source type."""
        source = sql.SQL("COPY (SELECT id + {}, c FROM {} ORDER BY id) TO STDOUT").format(
            sql.Literal(offset), sql.Identifier(self.schema, "src"))
        with self.conn.cursor().copy(source) as out:
            data = b"".join(bytes(chunk) for chunk in out)
        target = sql.SQL("COPY {} (id, c) FROM STDIN").format(
            sql.Identifier(into.schema, into.name))
        with self.conn.cursor().copy(target) as copy:
            copy.write(data)

    def masked(self, relation: QualifiedName, offset: int = 0) -> list[str | None]:
        """The stored values' text, in the order of `values`."""
        rows = self.conn.execute(sql.SQL(
            "SELECT c::text FROM {} WHERE id > %s AND id <= %s ORDER BY id").format(
                sql.Identifier(relation.schema, relation.name)),
            (offset, offset + len(self.values))).fetchall()
        return [r[0] for r in rows]

    def raw(self) -> list[str | None]:
        return [r[0] for r in self.conn.execute(sql.SQL("SELECT c::text FROM {} ORDER BY id")
                                                .format(sql.Identifier(self.schema, "src")))]


@pytest.mark.pg
@pytest.mark.parametrize("strategy, index", CASES)
def test_every_strategy_on_its_examples(db, strategy: Strategy, index: int) -> None:
    with db.connect() as conn:
        case = Case(conn, strategy, index)
        assert type_problem(case.spec, case.column) is None, "an example of a refused type"
        first, second = case.target("t1"), case.target("t2")
        case.copy(first)  # a masked value that did not fit the column would fail here
        case.copy(first, offset=1000)
        case.copy(second)
        masked = case.masked(first)
        assert len(masked) == len(case.values)
        # Deterministic, and alike in every table.
        assert case.masked(first, offset=1000) == masked
        assert case.masked(second) == masked
        raw = case.raw()
        assert masked[-1] is None, "NULL must stay NULL"
        if case.text_like:
            assert masked[-2] == "", "'' must stay ''"
        assert any(m != r for m, r in zip(masked, raw, strict=True) if r is not None), \
            "the mask changed nothing"
        if strategy.injective:
            given = [r for r in raw if r is not None]
            assert len({m for m, r in zip(masked, raw, strict=True) if r is not None}) == \
                len(set(given))
        if strategy.keyed:
            with conn.transaction(force_rollback=True):
                conn.execute("UPDATE repl.secret SET ikey = %s, okey = %s", OTHER_KEYS)
                for text in install_statements():  # how sessions learn of a new key
                    conn.execute(text)
                third = case.target("t3")
                case.copy(third)
                other = case.masked(third)
            assert other != masked, "a keyed strategy gave the same values under another key"
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(case.schema)))


TEXT_STRATEGIES = [s for s in REGISTRY.values() if s.name != "sql" and s.refuses(
    SourceColumn(1, "c", "character(5)", False, False, "pg_catalog", "bpchar", "S")) is None]


@pytest.mark.pg
@pytest.mark.parametrize("strategy", TEXT_STRATEGIES, ids=[s.name for s in TEXT_STRATEGIES])
def test_char_n_masks_like_text(db, strategy: Strategy) -> None:
    """char(n) arrives padded; its padding is not part of the value (PostgreSQL compares
    char(n) without it), so the same value masks alike in a char(5) and a text column."""
    values = ("ab", "a b", "12345")
    masked = []
    with db.connect() as conn:
        for index, example in enumerate((Example("character(5)", values),
                                         Example("text", values))):
            case = Case(conn, replace(strategy, examples=(example,)), 0,
                        schema=f"case_char_{strategy.name}_{index}")
            relation = case.target("t")
            case.copy(relation)
            masked.append(case.masked(relation))
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(case.schema)))
    assert masked[0] == masked[1]


def test_every_record_has_examples_and_a_complete_parameter_form() -> None:
    for strategy in REGISTRY.values():
        assert strategy.examples, strategy.name
        assert strategy.types and strategy.result, strategy.name
        required = strategy.params is not None and any(
            f.is_required() for f in strategy.params.model_fields.values())
        if required:  # the message for a missing parameter names it and shows an example
            assert strategy.shorthand and strategy.example, strategy.name


def docs_table() -> tuple[Path, list[str]]:
    """The docs' table of masking strategies (README.md first, else
    docs/configuration.md) and the strategies its rows name."""
    for path in (ROOT / "README.md", ROOT / "docs" / "configuration.md"):
        if not path.exists():
            continue
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if re.match(r"\|\s*strategy\s*\|", line):
                rows = []
                for row in lines[i + 2:]:
                    if not row.startswith("|"):
                        break
                    rows.append(row.split("|")[1])
                return path, [name for cell in rows for name in re.findall(r"`([a-z_]+)", cell)]
    raise AssertionError("no table of masking strategies in README.md or docs/configuration.md")


def test_docs_list_exactly_the_registry() -> None:
    path, names = docs_table()
    missing = "\n".join(s.doc_row() for n, s in REGISTRY.items() if n not in names)
    assert sorted(names) == sorted(REGISTRY), \
        f"{path.name}: the table of strategies must list exactly the registry's; " \
        f"missing rows:\n{missing}"
    assert len(names) == len(set(names)), f"{path.name} lists a strategy twice"
