"""`repl init`: a starting repl.yaml from production's catalogs and a bounded sample of
its values (inventory.py), every column classified by the rules of detection.py.

Each target is `masked` (developers: every column, the personal-looking ones masked) or
`filtered` (analysts: those columns excluded). Every table of the chosen schemas is
configured for every target (a partitioned table once, through its root), and every
column lands in `columns`, `exclude` or `mask`, a personal one with the rule that
flagged it. A table that PostgreSQL could not publish for UPDATE and DELETE gets
`operations: [insert]`; one that cannot be replicated without a personal value (its
replica identity looks personal), or at all (unlogged), is left out with the reason.

Every DSN is a placeholder; the one given on the command line is never written. The
file is written only once config_file reads it back into exactly these tables.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import inventory, slots, yaml_text
from .config import Config, MaskSpec
from .config_file import parse_config
from .db import Database, connect, describe
from .detection import Finding, judge, mask_for
from .errors import ConfigError, ReplError, UsageError
from .inventory import Inventory, TableFacts
from .names import QualifiedName, plain_name, subscription_name
from .validate import identity_problems

KINDS = {"masked": "every column; personal ones masked",
         "filtered": "personal columns excluded"}
DEFAULT_TARGETS = ("dev:masked", "analytics:filtered")
SOURCE_VARIABLE = "PRODUCTION_DSN"
GENERATED = "a generated column: PostgreSQL does not replicate it"
IDENTITY_FIX = ("Give it a primary key (or REPLICA IDENTITY USING INDEX on a unique index "
                "of NOT NULL columns), then remove this line to replicate updates and "
                "deletes too.")


@dataclass(frozen=True)
class TargetSpec:
    name: str
    kind: str  # masked or filtered

    @property
    def variable(self) -> str:
        return f"{self.name.upper()}_DSN"


def parse_targets(texts: Sequence[str]) -> list[TargetSpec]:
    """`--target NAME:KIND` options (default: dev:masked and analytics:filtered)."""
    specs: list[TargetSpec] = []
    for text in texts or DEFAULT_TARGETS:
        name, _, kind = text.partition(":")
        if kind not in KINDS:
            raise UsageError(f"--target {text}: expected NAME:KIND, KIND masked or filtered")
        if not plain_name(name):
            raise UsageError(f"--target {text}: a target name must match [a-z_][a-z0-9_]*")
        if any(s.name == name for s in specs):
            raise UsageError(f"--target {text}: target {name} is given twice")
        if f"{name.upper()}_DSN" == SOURCE_VARIABLE:
            raise UsageError(f"--target {text}: its DSN variable would be the source's "
                             f"${{{SOURCE_VARIABLE}}}; choose another name")
        specs.append(TargetSpec(name, kind))
    return specs


@dataclass(frozen=True)
class TableDraft:
    """One table as one target receives it; every reason is a rule, never a value."""

    relation: QualifiedName
    columns: tuple[str, ...]
    exclude: tuple[tuple[str, str], ...] = ()  # (column, why)
    mask: tuple[tuple[str, Any, MaskSpec, str], ...] = ()  # (column, as written, spec, why)
    insert_only: str | None = None  # why only inserts are published
    note: str | None = None  # said next to the table's name


@dataclass(frozen=True)
class TargetDraft:
    spec: TargetSpec
    tables: tuple[TableDraft, ...]
    left_out: tuple[tuple[QualifiedName, str], ...]


@dataclass(frozen=True)
class Draft:
    source: str  # host:port/dbname, for the header
    name: str  # the config's prefix of slots, subscriptions and publications
    schemas: tuple[str, ...]
    targets: tuple[TargetDraft, ...]
    findings: dict[tuple[QualifiedName, str], Finding]
    sampled: int
    not_sampled: dict[str, int]  # why -> tables

    @property
    def kept_in_production(self) -> dict[QualifiedName, str]:
        """Tables no target gets, with why: written to source.exclude, acknowledged (an
        unlogged table is not among them: PostgreSQL cannot publish it anyway)."""
        everywhere: dict[QualifiedName, list[str]] = {}
        for target in self.targets:
            for relation, why in target.left_out:
                everywhere.setdefault(relation, []).append(why)
        return {rel: whys[0] for rel, whys in everywhere.items()
                if len(whys) == len(self.targets) and not whys[0].startswith("unlogged")}


def insert_only_reason(facts: TableFacts) -> str | None:
    """Why UPDATE and DELETE of the table cannot be published as it stands, or None."""
    table = facts.source
    if not identity_problems("", table.relation, table):
        return None
    if table.identity.usable:  # then a partition's identity is not the table's
        root = set(table.identity.columns or ())
        partition = next((p for p, identity in table.partition_identities
                          if not identity.usable or set(identity.columns or ()) - root), "")
        has = f"a partition ({partition}) whose replica identity is not the table's"
    else:
        has = table.identity.describe()
    return (f"Only inserts: it has {has}, and PostgreSQL would reject UPDATE and DELETE on "
            f"production once they are published. {IDENTITY_FIX}")


def _left_out(facts: TableFacts, findings: dict[str, Finding], superuser: bool) -> str | None:
    table = facts.source
    if facts.unlogged:
        return ("unlogged: PostgreSQL writes no WAL for it, so it cannot be published; "
                "ALTER TABLE ... SET LOGGED to replicate it")
    if not (table.owned or superuser):
        return f"the source role does not own it (owner: {table.owner}), and only the " \
               "owner may publish it"
    if not [c for c in table.columns if not c.generated]:
        return "it has no column to replicate"
    personal = [c for c in table.identity.columns or () if c in findings]
    if personal:
        why = "; ".join(f"{c}: {findings[c].describe()}" for c in personal)
        return (f"its replica identity looks personal ({why}), and identity columns are "
                "always replicated unmasked; give it a surrogate primary key to replicate it")
    return None


PARTITIONED = "partitioned: replicated through its root, as one table"


def _for_target(spec: TargetSpec, facts: TableFacts, findings: dict[str, Finding]
                ) -> TableDraft | str:
    table = facts.source
    note = PARTITIONED if table.partitioned else None
    generated = tuple((c.name, GENERATED) for c in table.columns if c.generated)
    replicated = [c for c in table.columns if not c.generated]
    insert_only = insert_only_reason(facts)
    if spec.kind == "masked":
        masks = []
        for column in replicated:
            if (finding := findings.get(column.name)) is not None:
                value, mask_spec = mask_for(finding, column)
                masks.append((column.name, value, mask_spec, finding.describe()))
        return TableDraft(table.relation, tuple(c.name for c in replicated), generated,
                          tuple(masks), insert_only, note)
    kept = tuple(c.name for c in replicated if c.name not in findings)
    if not kept:
        return "every column looks personal"
    excluded = tuple((c.name, findings[c.name].describe())
                     for c in replicated if c.name in findings)
    return TableDraft(table.relation, kept, excluded + generated, (), insert_only, note)


def free_name(db: Database, targets: Sequence[TargetSpec]) -> str:
    """`repl`, or repl2, repl3...: slot names are cluster-wide, and another database of
    the source's cluster may already replicate through repl_dev."""
    for name in ("repl", *(f"repl{n}" for n in range(2, 100))):
        if not slots.elsewhere(db, [subscription_name(name, t.name) for t in targets]):
            return name
    raise UsageError("the source's cluster already has repl's slots for 99 other configs")


def draft(inv: Inventory, targets: Sequence[TargetSpec], source: str, name: str = "repl"
          ) -> Draft:
    """The whole configuration, from what was read of production."""
    scope = f" in schema(s) {', '.join(inv.schemas)}" if inv.schemas else ""
    if not inv.tables:
        raise UsageError(f"the source has no table{scope} to configure")
    per_target: dict[str, tuple[list[TableDraft], list[tuple[QualifiedName, str]]]] = {
        t.name: ([], []) for t in targets}
    all_findings: dict[tuple[QualifiedName, str], Finding] = {}
    for facts in inv.tables:
        rel = facts.source.relation
        findings = {c.name: f for c in facts.source.columns if not c.generated
                    and (f := judge(rel, c, facts.seen.get(c.name))) is not None}
        all_findings.update({(rel, column): f for column, f in findings.items()})
        everywhere = _left_out(facts, findings, inv.info.superuser)
        for spec in targets:
            tables, left_out = per_target[spec.name]
            entry = everywhere or _for_target(spec, facts, findings)
            if isinstance(entry, str):
                left_out.append((rel, entry))
            else:
                tables.append(entry)
    drafts = tuple(TargetDraft(t, tuple(per_target[t.name][0]), tuple(per_target[t.name][1]))
                   for t in targets)
    for target in drafts:
        if not target.tables:
            reasons = "; ".join(f"{r}: {why}" for r, why in target.left_out)
            raise UsageError(f"no table{scope} can be configured for target "
                             f"{target.spec.name}: {reasons}")
    readable = [f for f in inv.tables if not f.unlogged]
    return Draft(source, name, inv.schemas, drafts, all_findings,
                 sampled=sum(1 for f in readable if f.not_sampled is None),
                 not_sampled=dict(Counter(f.not_sampled for f in readable if f.not_sampled)))


def read_back(text: str, plan: Draft) -> Config:
    """The file as repl will read it, which must be exactly the draft: a name quoted
    wrongly would otherwise configure another column, or none."""
    env = {t.spec.variable: "dbname=placeholder" for t in plan.targets}
    env[SOURCE_VARIABLE] = "dbname=placeholder"
    try:
        config = parse_config(text, env, origin="the generated file")
    except ConfigError as exc:
        raise ReplError("repl init made a file it cannot read back, so it wrote nothing: "
                        + "; ".join(exc.problems)) from None
    if set(config.source.exclude) != set(plan.kept_in_production):
        raise ReplError("repl init made a file whose source.exclude reads back differently, "
                        "so it wrote nothing")
    if config.name != plan.name:
        raise ReplError("repl init made a file whose name reads back differently, so it "
                        "wrote nothing")
    for target in plan.targets:
        got = config.targets[target.spec.name].tables
        want = {t.relation: t for t in target.tables}
        same = set(got) == set(want) and all(
            got[r].columns == t.columns and got[r].exclude == tuple(c for c, _ in t.exclude)
            and got[r].mask == {c: spec for c, _, spec, _ in t.mask}
            and (got[r].operations == frozenset({"insert"})) == (t.insert_only is not None)
            for r, t in want.items())
        if not same:
            raise ReplError("repl init made a file that reads back differently from what it "
                            f"meant for target {target.spec.name}, so it wrote nothing")
    return config


def write(path: Path, text: str, force: bool) -> None:
    """A new file, or with `force` one that replaces the old file whole (never half)."""
    if not force:
        try:
            with open(path, "x", encoding="utf-8") as out:
                out.write(text)
        except FileExistsError:
            raise UsageError(f"{path} exists; pass --force to overwrite it") from None
        return
    temporary = path.with_name(f".{path.name}.repl-init-{os.getpid()}")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def init(source_dsn: str, schemas: Sequence[str], target_texts: Sequence[str], path: Path,
         force: bool, sample: bool = True) -> Draft:
    """Read production, draft, render, read back, write. Reads production only."""
    targets = parse_targets(target_texts)
    if path.exists() and not force:
        raise UsageError(f"{path} exists; pass --force to overwrite it")
    db = connect(source_dsn, "source", source=True)
    try:
        inv = inventory.read(db, schemas, with_samples=sample)
        name = free_name(db, targets)
    finally:
        db.close()
    plan = draft(inv, targets, describe(source_dsn), name)
    text = yaml_text.render(plan, SOURCE_VARIABLE, KINDS)
    read_back(text, plan)
    write(path, text, force)
    return plan
