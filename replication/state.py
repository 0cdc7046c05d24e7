"""Desired and actual state of each target, as `model.TargetState` values.

`desired` turns the config plus what the source's catalog says (column types, replica
identities, canonical row filters) into the objects repl should own; `actual` reads
the same objects out of the catalogs. The planner diffs the two.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass, field, replace

from . import guard
from .catalog import SourceCatalog, TargetCatalog
from .columns import pending_columns, published_columns, requested_columns
from .config import Config, MaskSpec
from .masking import create_sql_mask, library_version, target_column, trigger_body
from .masking_sql import padded_keys
from .migrations import head_revision
from .model import (
    COPYING,
    ConninfoDigest,
    Owner,
    Publication,
    PublishedTable,
    Role,
    RowFilter,
    SourceColumn,
    Subscription,
    TableIdentity,
    TargetState,
    TargetTable,
)
from .names import (
    OPERATIONS,
    QualifiedName,
    owns_publication,
    publication_name,
    subscription_name,
)
from .slots import is_sync_slot
from .table_definitions import table_parts
from .user_types import needed, typed_columns


@dataclass
class Desired:
    states: dict[str, TargetState]
    notes: list[str] = field(default_factory=list)  # things `plan` says about the config


def subscriber_conninfo(config: Config) -> str:
    return config.source.subscriber_dsn or config.source.dsn


def mask_keys(config: Config, catalog: TargetCatalog) -> tuple[bytes, bytes, str]:
    """The configured secret's keys; else the key this target generated before; else new."""
    if config.masking.secret:
        ikey, okey = padded_keys(config.masking.secret.encode())
        return ikey, okey, "config"
    if catalog.mask_keys is not None and catalog.mask_keys[2] == "generated":
        return catalog.mask_keys
    ikey, okey = padded_keys(secrets.token_bytes(32))
    return ikey, okey, "generated"


def desired(config: Config, source: SourceCatalog, catalogs: dict[str, TargetCatalog],
            filters: dict[tuple[str, QualifiedName], RowFilter],
            targets: list[str], accept_new: bool = False, drop_columns: bool = False
            ) -> Desired:
    """The state to converge to. Assumes validation passed (tables and columns exist).

    Under `columns: all` a table replicates the columns the last setup accepted, by
    identity (columns.py): a column production added since is pending, unless
    `accept_new` (`setup --accept-new-columns`) accepts it.
    """
    states, notes = {}, []
    for target in targets:
        tcfg = config.targets[target]
        masked = any(t.mask for t in tcfg.tables.values())
        groups: dict[frozenset[str], list[PublishedTable]] = {}
        tables = []
        estimates = {}
        typed = []  # the replicated columns that keep production's type on the target
        for relation, table in tcfg.tables.items():
            src = source.tables[relation]
            identity = catalogs[target].identity_of(src.oid)
            published = _published(config, source, target, relation)
            listed = published.columns if published is not None else None
            columns = published_columns(table, src, identity, listed, accept_new)
            added = sorted(set(columns) - set(requested_columns(table, src, identity, listed,
                                                                accept_new)))
            if added:
                notes.append(f"target {target}, table {relation}: {', '.join(added)} added to "
                             "the column list (the replica identity is always replicated)")
            if pending := pending_columns(table, src, identity, listed):
                notes.append(f"target {target}, table {relation}: "
                             + (f"accepting {', '.join(pending)}, which production added: "
                                "the table is copied again" if accept_new else
                                f"{', '.join(pending)} pending (added by production; "
                                "`repl setup --accept-new-columns` replicates them)"))
            row_filter = filters.get((target, relation))
            groups.setdefault(table.operations, []).append(
                PublishedTable(relation, columns, row_filter.canonical if row_filter else None))
            by_name = {c.name: c for c in src.columns}
            target_columns = tuple(replace(target_column(table.mask.get(n), by_name[n]),
                                           attnum=by_name[n].attnum) for n in columns)
            parts = table_parts(relation, table, src, target_columns,
                                catalogs[target].info.major, catalogs[target].schemas, None)
            notes += [f"target {target}, table {relation}: {note}" for note in parts.notes]
            tables.append(TargetTable(
                relation, target_columns,
                src.identity.columns if src.identity.usable else None,
                mask_function=trigger_body(relation, table.mask, by_name) if table.mask
                else None,
                mask_sql=tuple(create_sql_mask(relation, by_name[c], spec).as_string(None)
                               for c, spec in sorted(table.mask.items())
                               if spec.strategy == "sql"),
                mask_trigger="A" if table.mask else None,
                masks=tuple(sorted((c, spec) for c, spec in table.mask.items() if c in columns)),
                source_oid=src.oid,
                recorded_mask_function=_recorded_body(table.mask, by_name, identity),
                indexes=parts.indexes, generated=parts.generated, defaults=parts.defaults,
                sequences=parts.sequences, read_only="O" if tcfg.read_only else None,
            ))
            estimates[relation] = src.estimated_rows
            typed += typed_columns(relation, table, src, columns)
        owner = desired_owner(config, target, catalogs[target].owner)
        publications = tuple(
            Publication(publication_name(config.name, target, ops), ops,
                        tuple(sorted(entries, key=lambda e: e.relation)), marker=owner.marker)
            for ops, entries in sorted(groups.items(), key=lambda g: _ops_key(g[0]))
        )
        name = subscription_name(config.name, target)
        states[target] = TargetState(
            target=target,
            publications=publications,
            subscription=Subscription(
                name=name, slot_name=name,
                publications=frozenset(p.name for p in publications),
                enabled=True, conninfo=subscriber_conninfo(config),
                disable_on_error=config.targets[target].disable_on_error,
            ),
            tables=tuple(tables),
            types=tuple(n.type for n in needed(typed, source.types) if n.type.creatable),
            schema_revision=head_revision(),
            mask_keys=mask_keys(config, catalogs[target]) if masked else None,
            masking_version=library_version() if masked else None,
            roles=tuple(
                Role(name, members=frozenset(spec.members),
                     readable=frozenset(tcfg.tables),
                     schemas=frozenset(r.schema for r in tcfg.tables))
                for name, spec in tcfg.roles.items()),
            managed_roles=frozenset(tcfg.roles),
            owner=owner,
            guard_function=guard.BODY if tcfg.read_only else None,
            read_only=tcfg.read_only,
            estimated_rows=estimates,
            drop_columns=drop_columns,
        )
    return Desired(states, notes)


def _recorded_body(masks: dict[str, MaskSpec], columns: dict[str, SourceColumn],
                   identity: TableIdentity | None) -> str | None:
    """The masking trigger's body as written for the names the last setup recorded (the
    target's names, before production renamed anything): the same masks by attnum."""
    if not masks or identity is None:
        return None
    names = {c.attnum: c.name for c in identity.columns}
    old = {name: replace(col, name=names.get(col.attnum, name)) for name, col in columns.items()}
    return trigger_body(identity.relation, {old[c].name: spec for c, spec in masks.items()},
                        {col.name: col for col in old.values()})


def desired_owner(config: Config, target: str, recorded: Owner | None) -> Owner:
    """This config's target, with the id the database got at its first setup (a new one
    before: recorded by the next setup)."""
    return Owner(config.name, target, recorded.id if recorded is not None else str(uuid.uuid4()))


def _published(config: Config, source: SourceCatalog, target: str,
               relation: QualifiedName) -> PublishedTable | None:
    """The table's entry in one of the target's publications, if any."""
    return next((e for name, pub in source.publications.items()
                 if owns_publication(config.name, target, name)
                 and (e := pub.table(relation)) is not None), None)


def _ops_key(ops: frozenset[str]) -> tuple[int, ...]:
    return tuple(OPERATIONS.index(op) for op in OPERATIONS if op in ops)


# The actual connection string of a subscription whose digest differs from the wanted one.
CONNINFO_CHANGED = "(changed since the last setup)"


def _known_conninfo(sub: Subscription | None, recorded: ConninfoDigest | None,
                    wanted: str) -> Subscription | None:
    """A role that may not read subconninfo still learns, from the digest setup recorded,
    whether the subscription has the wanted connection string. Without a digest (a
    subscription older than repl's schema revision 0005) the string is unknown: it is set
    once, so that what is recorded is known to be true."""
    if sub is None or sub.conninfo is not None:
        return sub
    same = recorded is not None and recorded.matches(wanted)
    return replace(sub, conninfo=wanted if same else CONNINFO_CHANGED)


def actual(config: Config, source: SourceCatalog | None, catalogs: dict[str, TargetCatalog],
           targets: list[str]) -> dict[str, TargetState]:
    """What exists of each target's objects. Without the source (out of reach), nothing
    on it is known: no publication, no slot."""
    states = {}
    publications = source.publications if source is not None else {}
    for target in targets:
        cat = catalogs[target]
        name = subscription_name(config.name, target)
        states[target] = TargetState(
            target=target,
            publications=tuple(
                pub for pub_name, pub in sorted(publications.items())
                if owns_publication(config.name, target, pub_name)
            ),
            subscription=_known_conninfo(cat.subscriptions.get(name),
                                         cat.conninfo_digests.get(name),
                                         subscriber_conninfo(config)),
            tables=tuple(cat.tables.values()),
            types=tuple(cat.user_types.values()),
            slot=source.slots.get(name) if source is not None else None,
            schema_revision=cat.schema_revision,
            mask_keys=cat.mask_keys,
            masking_version=cat.masking_version,
            roles=tuple(cat.roles[n] for n in sorted(set(config.targets[target].roles)
                                                      | cat.managed_roles) if n in cat.roles),
            managed_roles=cat.managed_roles,
            owner=cat.owner,
            guard_function=cat.guard_function,
            sync_slots=leftover_sync_slots(source, cat.subscriptions.get(name),
                                           cat.info.system_identifier)
            if source is not None else (),
        )
    return states


def leftover_sync_slots(source: SourceCatalog, sub: Subscription | None,
                        system_identifier: str) -> tuple[str, ...]:
    """The subscription's table-sync slots that no copy uses: PostgreSQL drops them when
    a table's copy is done, but one left behind (a sync worker killed at the wrong time,
    a subscription dropped without its slots) keeps production's WAL without bound."""
    if sub is None or sub.oid is None or any(s.state in COPYING for s in sub.table_states):
        return ()
    return tuple(name for name, slot in sorted(source.slots.items())
                 if is_sync_slot(name, sub.oid, system_identifier) and not slot.active)


def torn_down(have: TargetState, drop_tables: bool, keep_schema: bool) -> TargetState:
    """The desired state of a target being torn down: nothing of repl's, but its tables
    (unless `drop_tables`) and its reader roles, which are cluster-wide and may serve
    others; repl's schema too while `keep_schema` (its record of the target is what tells
    the leftovers on an unreachable source from another config's later)."""
    return TargetState(
        target=have.target, publications=(), subscription=None, tables=(),
        schema_revision=have.schema_revision if keep_schema else None,
        roles=have.roles, managed_roles=have.managed_roles, owner=have.owner,
        drop_tables=drop_tables)
