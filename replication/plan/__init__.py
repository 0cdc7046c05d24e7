"""The diff of desired and actual state as an ordered list of steps: the whole order here.

A table is (re)copied the way PostgreSQL allows: taken out of its publication, the
subscriber waited for until it applied everything sent before, the subscription
refreshed without copying (it forgets the table), the target table emptied and
reshaped, the table added back with its column list and row filter, and the
subscription refreshed with copy. Teardown is the same plan against a desired state
without a subscription (state.torn_down).
"""

from __future__ import annotations

from ..model import TargetState
from ..names import QualifiedName
from ..snapshot_copy import FROM_SNAPSHOT, CopyOptions
from . import (definitions, guard, indexes, masking, publications, renames,
               roles, schema, sequences, slot, subscription, tables, types)
from .diff import Copy, TargetDiff
from .steps import SOURCE, Plan, Step, merge

__all__ = ["SOURCE", "Copy", "Plan", "Step", "merge", "plan_target"]


def plan_target(want: TargetState, have: TargetState, target_schemas: set[str],
                resync: frozenset[QualifiedName] = frozenset(),
                copy: CopyOptions = FROM_SNAPSHOT) -> Plan:
    """Steps that converge one target, and its publications and slot on the source."""
    moved = renames.find(want, have)  # the rest diffs the target as renamed
    d = TargetDiff(want, renames.applied(have, want, moved), frozenset(target_schemas), resync,
                   copy)
    steps = [
        # 1. Target: what the rest stands on (schemas, repl's own, the types of the
        #    replicated columns), the names production gave tables and columns since; a
        #    subscription that can never stream goes.
        *tables.create_schemas(d), *schema.migrate(d), *schema.record_owner(d),
        *types.converge(d), *renames.steps(d, moved), *subscription.drop(d),
        *masking.install(d), *masking.hold_back(d), *subscription.enable(d), *tables.create(d),
        *tables.keep_released(d),
        # 2. Source, then target: tables to copy again or no longer wanted leave their
        #    publications, and the subscription forgets them.
        *publications.remove_entries(d), *subscription.forget(d),
        # 3. Target: each table to copy is emptied (its indexes wait for the copy),
        #    reshaped and masked before a row comes; what production's definition gives
        #    every table but its indexes; the read-only guard.
        *[s for rel in d.copies for s in (
            *indexes.drop_for_copy(d, rel), *definitions.drop_for_reshape(d, rel),
            *tables.empty(d, rel), *masking.trigger(d, rel))],
        *masking.drop_unwanted(d), *roles.grants(d), *definitions.converge(d),
        *sequences.keep_ahead(d), *guard.install(d),
        # 4. Source: publications with their column lists and row filters; the slot.
        *publications.create_or_alter(d), *slot.converge(d),
        # 5. Target: the subscription and the copies (a new target's from a snapshot,
        #    indexes built as each table is done); indexes of tables copied already.
        *subscription.create_or_alter(d), *indexes.build(d),
        # 6. What is no longer wanted.
        *publications.drop_unused(d), *tables.drop_released(d), *indexes.drop_unwanted(d),
        *guard.drop_unwanted(d), *tables.drop_unwanted(d), *schema.drop(d),
    ]
    return Plan(steps, d.copy_list())
