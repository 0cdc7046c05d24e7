"""User-defined types on a target, before the tables that use them (SPEC section 7):
created from production's definitions, the types they need first; renamed when
production renamed them (the target type repl recorded with production's type OID);
brought in step with what production added (enum labels in their place, composite
attributes at the end, a domain's constraints, default and NOT NULL); recorded as
production's when the target already had them with production's structure.

Each type's statements run in one transaction with its record in repl.replicated_type,
so that a type repl made or renamed is known as repl's even after an interrupted setup
(a type of that name that repl did not make is never changed: user_types.problems
refuses it). Types are never dropped: tables use them, and teardown leaves them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from psycopg import sql

from ..model import UserType
from ..names import ident
from ..user_types import TypeDiff, as_renamed, compare, counterpart
from .steps import Step

if TYPE_CHECKING:
    from .diff import TargetDiff

KIND_WORDS = {"enum": "enum type", "composite": "composite type", "domain": "domain",
              "range": "range type"}


def converge(d: TargetDiff) -> list[Step]:
    """The steps of every type the target's replicated columns need, in dependency order.
    What user_types.problems reports as an error gets no step (setup stops before)."""
    steps = []
    taken = {h.name for h in d.have.types}
    for want, found, diff in _matched(d):
        words = f"{KIND_WORDS[want.kind]} {want.name}"
        if found is None:
            steps.append(Step(d.target, f"create {words}", (*create(want), *record(want))))
            continue
        if found.name != want.name:
            if want.name in taken:
                continue
            steps.append(Step(d.target, f"rename {KIND_WORDS[want.kind]} {found.name} to "
                                        f"{want.name}, as production did",
                              (*rename(found, want), *record(want))))
        if diff.blocking or (diff.fixes and not _ours(want, found)):
            continue
        if diff.fixes:
            steps.append(Step(d.target, f"bring {words} in step with production: "
                                        + ", ".join(diff.words()), alter(want, diff)))
        elif not _ours(want, found):
            steps.append(Step(d.target, f"record {words}, which has production's structure, "
                                        "as production's", record(want)))
    return steps


def behind(d: TargetDiff) -> list[str]:
    """What production added to the target's types (labels, attributes, a domain's
    constraints) that the target lacks, in words: the first row that uses it stops the
    apply worker until setup brings the type in step."""
    return [f"{KIND_WORDS[want.kind]} {want.name}: {', '.join(diff.words())}"
            for want, found, diff in _matched(d)
            if found is not None and _ours(want, found) and diff.fixes and not diff.blocking]


def _matched(d: TargetDiff) -> Iterator[tuple[UserType, UserType | None, TypeDiff]]:
    """Each type wanted, the target's type that stands for it, and how they differ."""
    if d.sub is None:
        return
    for want in d.want.types:
        found = counterpart(want, d.have.types)
        yield want, found, compare(want, as_renamed(found, d.type_renames)) \
            if found is not None else TypeDiff()


def _ours(want: UserType, found: UserType) -> bool:
    """repl recorded the target's type as made from this production type."""
    return found.source_oid is not None and found.source_oid == want.source_oid


def record(t: UserType) -> tuple[sql.Composable, ...]:
    """The target's name of production's type (by its OID): a type production renames is
    renamed on the target, not created twice."""
    return (sql.SQL("DELETE FROM repl.replicated_type WHERE source_oid = {} "
                    "OR (schema_name, type_name) = ({}, {})").format(
                sql.Literal(t.source_oid), sql.Literal(t.name.schema), sql.Literal(t.name.name)),
            sql.SQL("INSERT INTO repl.replicated_type (schema_name, type_name, source_oid) "
                    "VALUES ({}, {}, {})").format(
                sql.Literal(t.name.schema), sql.Literal(t.name.name), sql.Literal(t.source_oid)))


def create(t: UserType) -> list[sql.Composable]:
    """CREATE TYPE (or DOMAIN) from production's definition. Type names and expressions
    are PostgreSQL's own deparsed text (format_type, pg_get_expr, pg_get_constraintdef),
    as for table columns; names of labels and attributes are quoted here."""
    name = ident(t.name)
    if t.kind == "enum":
        return [sql.SQL("CREATE TYPE {} AS ENUM ({})").format(
            name, sql.SQL(", ").join(map(sql.Literal, t.labels)))]
    if t.kind == "composite":
        return [sql.SQL("CREATE TYPE {} AS ({})").format(name, sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(a), sql.SQL(typ)) for a, typ in t.attributes))]
    if t.kind == "domain":
        parts = [sql.SQL("CREATE DOMAIN {} AS {}").format(name, sql.SQL(t.base or ""))]
        if t.collation:
            parts.append(sql.SQL(" COLLATE {}").format(sql.SQL(t.collation)))
        if t.default is not None:
            parts.append(sql.SQL(" DEFAULT {}").format(sql.SQL(t.default)))
        if t.not_null:
            parts.append(sql.SQL(" NOT NULL"))
        # Constraints one by one, as ALTER DOMAIN: a NOT VALID one can only be added so.
        return [sql.Composed(parts), *(_add_check(t, c, d) for c, d in t.checks)]
    options = [sql.SQL("subtype = {}").format(sql.SQL(t.base or ""))]
    for option, value in (("subtype_opclass", t.subtype_opclass), ("collation", t.collation),
                          ("subtype_diff", t.subtype_diff),
                          ("multirange_type_name", t.multirange)):
        if value is not None:
            options.append(sql.SQL("{} = {}").format(sql.SQL(option), sql.SQL(value)))
    return [sql.SQL("CREATE TYPE {} AS RANGE ({})").format(name, sql.SQL(", ").join(options))]


def rename(have: UserType, want: UserType) -> list[sql.Composable]:
    """ALTER TYPE (or DOMAIN) ... RENAME TO and SET SCHEMA: a rename keeps the type's OID,
    so every target column of it follows without a rewrite."""
    alter = sql.SQL("ALTER DOMAIN" if want.kind == "domain" else "ALTER TYPE")
    out = []
    if have.name.name != want.name.name:
        out.append(sql.SQL("{} {} RENAME TO {}").format(
            alter, ident(have.name), sql.Identifier(want.name.name)))
    if have.name.schema != want.name.schema:
        out.append(sql.SQL("{} {} SET SCHEMA {}").format(
            alter, sql.Identifier(have.name.schema, want.name.name),
            sql.Identifier(want.name.schema)))
    return out


def alter(t: UserType, diff: TypeDiff) -> tuple[sql.Composable, ...]:
    """What production added, as production's own statements would add it. A label goes
    before the target label that follows it on production (never after one added in the
    same transaction), or at the end."""
    name = ident(t.name)
    out: list[sql.Composable] = []
    for label, before in diff.labels:
        position = sql.SQL(" BEFORE {}").format(sql.Literal(before)) if before is not None \
            else sql.SQL("")
        out.append(sql.SQL("ALTER TYPE {} ADD VALUE {}{}").format(
            name, sql.Literal(label), position))
    out += [sql.SQL("ALTER TYPE {} ADD ATTRIBUTE {} {}").format(
        name, sql.Identifier(a), sql.SQL(typ)) for a, typ in diff.attributes]
    # A domain loosens before it tightens: what production accepts must fit in between.
    out += [sql.SQL("ALTER DOMAIN {} DROP CONSTRAINT {}").format(name, sql.Identifier(c))
            for c in diff.drop_checks]
    for wanted in diff.not_null:
        out.append(sql.SQL("ALTER DOMAIN {} {} NOT NULL").format(
            name, sql.SQL("SET" if wanted else "DROP")))
    for default in diff.default:
        out.append(sql.SQL("ALTER DOMAIN {} DROP DEFAULT").format(name) if default is None
                   else sql.SQL("ALTER DOMAIN {} SET DEFAULT {}").format(name, sql.SQL(default)))
    out += [_add_check(t, c, d) for c, d in diff.add_checks]
    return tuple(out)


def _add_check(t: UserType, name: str, definition: str) -> sql.Composable:
    return sql.SQL("ALTER DOMAIN {} ADD CONSTRAINT {} {}").format(
        ident(t.name), sql.Identifier(name), sql.SQL(definition))
