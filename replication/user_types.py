"""User-defined types on the targets (SPEC sections 6 and 7): which types the replicated
columns need, read with their structure from production's catalog and from the
target's; which target type stands for which production type (the one of its name, or
the one repl recorded with production's type OID, across a rename); how the two differ,
what `setup` can bring in step and what needs a person.

A type is compared by structure, never by name alone: enum labels in order, composite
attributes (name and type) in order, a domain's base type, NOT NULL, default and CHECK
constraints, a range's subtype and options. What setup converges is what production can
do without rewriting data: enum labels added (kept in order), composite attributes
added at the end, a domain's constraints and default, a rename. Anything else (a label
production renamed, attributes in another order, a type of that name that repl did not
make and that differs) is an error of `check` and `setup`, with the way out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields, replace

from psycopg import sql

from .columns import published_columns
from .config import Config, TableConfig
from .db import Database
from .masking import target_column
from .model import SourceColumn, SourceTable, UserType
from .names import QualifiedName
from .problems import Problem, where

KINDS = {"e": "enum", "d": "domain", "r": "range", "b": "base type", "p": "pseudo-type"}

# Fields of UserType that make its structure, with their words in messages.
STRUCTURE = {"kind": "kind", "labels": "labels", "attributes": "attributes",
             "base": "base type", "not_null": "NOT NULL", "default": "default",
             "checks": "CHECK constraints", "collation": "collation",
             "subtype_opclass": "subtype operator class", "canonical": "canonical function",
             "subtype_diff": "subtype_diff function", "multirange": "multirange type",
             "extension": "extension"}


def read(db: Database, oids: Iterable[int] = (), names: Iterable[QualifiedName] = ()
         ) -> dict[int, UserType]:
    """The types asked for (by OID or by name) and every user type they need, by OID. The
    OID of an array or a multirange maps to the type it stands for: a column of `mood[]`
    needs `mood`, and the target makes `mood[]` with it."""
    wanted = list(names)
    rows = {r["oid"]: r for r in db.query("catalog/user_types", {
        "oids": list(oids), "schemas": [n.schema for n in wanted],
        "names": [n.name for n in wanted]})}

    def resolve(oid: int) -> int | None:
        while oid in rows and rows[oid]["stands_for"] is not None:
            oid = rows[oid]["stands_for"]
        return oid if oid in rows else None

    types = {oid: _user_type(r) for oid, r in rows.items() if r["stands_for"] is None}
    for oid, t in types.items():
        needs = (types[found].name for ref in rows[oid]["refs"]
                 if (found := resolve(ref)) is not None and found != oid)
        types[oid] = replace(t, needs=tuple(dict.fromkeys(needs)))
    for oid, r in rows.items():
        if r["stands_for"] is not None and (found := resolve(oid)) in types:
            types[oid] = types[found]
    return types


def _user_type(r: dict) -> UserType:
    kind = KINDS.get(r["typtype"], r["typtype"])
    if r["typtype"] == "c":
        kind = "composite" if r["relkind"] == "c" else "table row type"
    return UserType(
        name=QualifiedName(r["schema"], r["name"]), kind=kind, labels=tuple(r["labels"]),
        attributes=tuple(zip(r["attribute_names"], r["attribute_types"], strict=True)),
        base=r["base"], not_null=r["not_null"], default=r["default"],
        checks=tuple(zip(r["check_names"], r["check_defs"], strict=True)),
        collation=r["collation"], subtype_opclass=r["subtype_opclass"],
        canonical=r["canonical"], subtype_diff=r["subtype_diff"], multirange=r["multirange"],
        extension=r["extension"], spelled=r["spelled"], source_oid=r["oid"],
        functions=tuple(r["own_functions"]))


# --- what a target needs -------------------------------------------------------------

@dataclass(frozen=True)
class Needed:
    """A type a target needs, and the first replicated column that needs it (for messages)."""

    type: UserType
    relation: QualifiedName
    column: str


def typed_columns(relation: QualifiedName, table: TableConfig, source: SourceTable,
                  columns: Iterable[str]) -> list[tuple[QualifiedName, SourceColumn]]:
    """The columns among `columns` whose target column keeps production's type: a column
    masked into text does not need its source type on the target."""
    out = []
    for name in columns:
        col = source.column(name)
        if col is not None and target_column(table.mask.get(name), col).type == col.type:
            out.append((relation, col))
    return out


def needed(columns: Iterable[tuple[QualifiedName, SourceColumn]],
           source_types: Mapping[int, UserType]) -> list[Needed]:
    """The user types these columns need, each after the types it needs in turn."""
    by_name = {t.name: t for t in source_types.values()}
    order: dict[QualifiedName, Needed] = {}

    def visit(t: UserType, relation: QualifiedName, column: str) -> None:
        if t.name in order:
            return
        if t.creatable:  # what repl does not create must exist whole on the target
            for dep in t.needs:
                if dep in by_name:
                    visit(by_name[dep], relation, column)
        order[t.name] = Needed(t, relation, column)

    for relation, col in columns:
        if (t := source_types.get(col.type_oid)) is not None:
            visit(t, relation, col.name)
    return list(order.values())


def needed_by_config(config: Config, target: str, source_tables: Mapping[QualifiedName,
                     SourceTable], source_types: Mapping[int, UserType]) -> list[Needed]:
    """The types the target's configured columns need (before `columns: all` leaves out
    what production added since; validation looks at everything that may flow)."""
    columns = [
        pair
        for relation, table in config.targets[target].tables.items()
        if (src := source_tables.get(relation)) is not None
        for pair in typed_columns(relation, table, src, published_columns(table, src))
    ]
    return needed(columns, source_types)


# --- production's type and the target's ----------------------------------------------

def counterpart(want: UserType, have: Iterable[UserType]) -> UserType | None:
    """The target's type that stands for production's `want`: the one repl recorded with
    its source OID (made by repl, perhaps under a name production has since changed),
    else the one of its name."""
    have = list(have)
    recorded = next((h for h in have if h.source_oid is not None
                     and h.source_oid == want.source_oid), None)
    return recorded or next((h for h in have if h.name == want.name), None)


def renames(want: Iterable[UserType], have: Iterable[UserType]) -> dict[str, str]:
    """Target types production renamed (or moved to another schema): their spelling on the
    target now, and their spelling once renamed like production's."""
    have = list(have)
    taken = {h.name for h in have}
    out = {}
    for w in want:
        h = counterpart(w, have)
        if h is not None and h.name != w.name and w.name not in taken:
            out[h.spelled] = w.spelled
    return out


def respell(text: str | None, spellings: Mapping[str, str]) -> str | None:
    """A type's text with renamed types spelled by their new names (`public.mood[]` after
    a rename of mood)."""
    if text is None:
        return None
    for old, new in spellings.items():
        found = re.fullmatch(re.escape(old) + r"((?:\[\])*(?: .*)?)", text)
        if found:
            return new + found[1]
    return text


def _respell_expression(text: str | None, spellings: Mapping[str, str]) -> str | None:
    """An expression (a domain's default or CHECK) with renamed types spelled anew
    (`'{ok}'::public.mood[]`), where a name stands alone, not inside a longer one."""
    if text is None:
        return None
    for old, new in spellings.items():
        # The replacement as a function: a name may hold a backslash, which re.sub reads.
        text = re.sub(r'(?<![\w".$])' + re.escape(old) + r'(?![\w"$])',
                      lambda _, new=new: new, text)
    return text


def as_renamed(t: UserType, spellings: Mapping[str, str]) -> UserType:
    """`t` as it reads once the types it uses are renamed as production renamed them."""
    if not spellings:
        return t
    return replace(t, base=respell(t.base, spellings),
                   attributes=tuple((n, respell(a, spellings) or a) for n, a in t.attributes),
                   default=_respell_expression(t.default, spellings),
                   checks=tuple((n, _respell_expression(c, spellings) or c)
                                for n, c in t.checks))


@dataclass(frozen=True)
class TypeDiff:
    """How a target's type differs from production's: what setup changes, and what it
    cannot change (in words)."""

    labels: tuple[tuple[str, str | None], ...] = ()  # (label, the label it goes before)
    attributes: tuple[tuple[str, str], ...] = ()  # added at the end
    drop_checks: tuple[str, ...] = ()
    add_checks: tuple[tuple[str, str], ...] = ()
    default: tuple[str | None, ...] = ()  # (new default,) when it changes; (None,): dropped
    not_null: tuple[bool, ...] = ()  # (wanted,) when it changes
    blocking: tuple[str, ...] = ()

    @property
    def fixes(self) -> bool:
        return bool(self.labels or self.attributes or self.drop_checks or self.add_checks
                    or self.default or self.not_null)

    def words(self) -> list[str]:
        """The changes setup makes, in words."""
        out = []
        if self.labels:
            out.append("add label(s) " + ", ".join(repr(label) for label, _ in self.labels))
        if self.attributes:
            out.append("add attribute(s) " + ", ".join(f"{n} {t}" for n, t in self.attributes))
        out += [f"drop constraint {c}" for c in self.drop_checks]
        out += [f"add constraint {c} {d}" for c, d in self.add_checks]
        if self.default:
            out.append("drop the default" if self.default[0] is None
                       else f"set default {self.default[0]}")
        if self.not_null:
            out.append("set NOT NULL" if self.not_null[0] else "drop NOT NULL")
        return out


def differences(want: UserType, have: UserType) -> list[str]:
    """Every field in which `have` differs from `want`, in words."""
    out = []
    for f in fields(UserType):
        if f.name in STRUCTURE and getattr(want, f.name) != getattr(have, f.name):
            out.append(f"{STRUCTURE[f.name]} {_show(getattr(have, f.name))} on the target, "
                       f"{_show(getattr(want, f.name))} on production")
    return out


def _show(value: object) -> str:
    if isinstance(value, tuple):
        items = [" ".join(v) if isinstance(v, tuple) else repr(v) for v in value]
        return "(" + ", ".join(items) + ")"
    return "none" if value is None else str(value)


def compare(want: UserType, have: UserType) -> TypeDiff:
    """What setup can change in `have` (already read as renamed) to make it `want`."""
    have = replace(have, name=want.name)
    if have == want:
        return TypeDiff()
    blocking = tuple(differences(want, have))
    if want.kind != have.kind or want.extension != have.extension:
        return TypeDiff(blocking=blocking)
    if want.kind == "enum" and not _diff_fields(want, have, "labels"):
        added = _labels_to_add(want.labels, have.labels)
        return TypeDiff(labels=added) if added is not None else TypeDiff(blocking=blocking)
    if want.kind == "composite" and not _diff_fields(want, have, "attributes") \
            and want.attributes[:len(have.attributes)] == have.attributes:
        return TypeDiff(attributes=want.attributes[len(have.attributes):])
    if want.kind == "domain" and not _diff_fields(want, have, "checks", "default",
                                                     "not_null"):
        theirs, ours = dict(have.checks), dict(want.checks)
        return TypeDiff(
            drop_checks=tuple(c for c in theirs if ours.get(c) != theirs[c]),
            add_checks=tuple((c, d) for c, d in want.checks if theirs.get(c) != d),
            default=(want.default,) if want.default != have.default else (),
            not_null=(want.not_null,) if want.not_null != have.not_null else ())
    return TypeDiff(blocking=blocking)


def _diff_fields(want: UserType, have: UserType, *allowed: str) -> list[str]:
    """The structure fields other than `allowed` in which they differ."""
    return [f for f in STRUCTURE if f not in allowed and getattr(want, f) != getattr(have, f)]


def _labels_to_add(want: tuple[str, ...], have: tuple[str, ...]
                   ) -> tuple[tuple[str, str | None], ...] | None:
    """Production's labels the target lacks, each with the target label it goes before
    (None: at the end), when the target's labels are production's in the same order with
    some missing; None otherwise (a label renamed, or in another order)."""
    if [label for label in want if label in have] != list(have):
        return None
    out = []
    for i, label in enumerate(want):
        if label not in have:
            after = next((x for x in want[i + 1:] if x in have), None)
            out.append((label, after))
    return tuple(out)


# --- problems --------------------------------------------------------------------------

def _way_out(t: UserType) -> str:
    return (f"way out: drop it on the target (DROP TYPE {t.spelled} CASCADE; that also drops "
            "every target column and type that uses it) and run `repl setup`, which creates "
            "it from production's definition and copies the tables that use it again")


def problems(target: str, needs: list[Needed], have: Iterable[UserType]) -> list[Problem]:
    """What keeps the target's types from matching production's: errors setup cannot fix,
    and warnings for the differences the next setup brings in step."""
    have = list(have)
    spellings = renames((n.type for n in needs), have)
    out = []
    for need in needs:
        want = need.type
        at = f"{where(target)}, type {want.name}"
        found = counterpart(want, have)
        if found is None:
            if not want.creatable:
                out.append(Problem("error", where(target, need.relation, need.column),
                                   f"its type {want.spelled} does not exist on the target, "
                                   f"and repl does not create {_uncreatable(want)}; create it "
                                   "there first"))
            continue
        if found.name != want.name and want.name in {h.name for h in have}:
            out.append(Problem("error", at, f"production renamed {found.spelled} to "
                                            f"{want.spelled}, and the target has another type "
                                            f"{want.spelled}; way out: rename or drop that type "
                                            "on the target, then run `repl setup`"))
            continue
        diff = compare(want, as_renamed(found, spellings))
        if not (diff.fixes or diff.blocking):
            continue
        ours = found.source_oid is not None and found.source_oid == want.source_oid
        if not ours:
            differ = "; ".join(differences(want, as_renamed(replace(found, name=want.name),
                                                            spellings)))
            whose = ("was made by repl from an earlier type of that name on production "
                     "(dropped and created again there?)" if found.source_oid is not None
                     else "was not made by repl")
            out.append(Problem("error", at, f"differs from production's ({differ}) and "
                                            f"{whose}, so repl will not change it; "
                                            + _way_out(want)))
        elif diff.blocking:
            out.append(Problem("error", at, f"{'; '.join(diff.blocking)}: repl makes no such "
                                            "change on a target (it could change what the "
                                            "target's rows mean); " + _way_out(want)
                                            + _label_hint(want, found)))
        else:
            out.append(Problem("warning", at, f"differs from production's; `repl setup` will "
                                              f"{', '.join(diff.words())}", kind="type drift"))
    return out


def _uncreatable(t: UserType) -> str:
    if t.extension:
        return f"an extension's types (CREATE EXTENSION {t.extension})"
    if t.kind == "table row type":
        return "the row type of a table"
    if t.functions:
        return f"a type whose definition calls {', '.join(t.functions)}"
    return f"a {t.kind}"


def _label_hint(want: UserType, have: UserType) -> str:
    """For an enum whose labels differ in place only (what ALTER TYPE ... RENAME VALUE
    does): the same statements, to run on the target."""
    if want.kind != "enum" or have.kind != "enum" or len(want.labels) != len(have.labels):
        return ""
    renamed = [(old, new) for old, new in zip(have.labels, want.labels, strict=True)
               if old != new]
    if any(old in want.labels or new in have.labels for old, new in renamed):
        return ""  # moved, not renamed
    statements = "; ".join(sql.SQL("ALTER TYPE {} RENAME VALUE {} TO {}").format(
        sql.SQL(have.spelled), sql.Literal(old), sql.Literal(new)).as_string(None)
        for old, new in renamed)
    return (f"; or, if production renamed {'these labels' if len(renamed) > 1 else 'it'}, "
            f"do the same on the target ({statements}) and run `repl setup`")


def check(config: Config, source_tables: Mapping[QualifiedName, SourceTable],
          source_types: Mapping[int, UserType],
          target_types: Mapping[str, Iterable[UserType]]) -> list[Problem]:
    """The type problems of every target in `target_types`."""
    return [p for target, have in target_types.items()
            for p in problems(target, needed_by_config(config, target, source_tables,
                                                       source_types), have)]
