"""The target's replication slot on the source, made before its subscription (the same
cluster's subscriptions would wait forever for their own), replaced when invalidated,
dropped with the target; and table-sync slots a copy left behind, which keep
production's WAL without bound."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import slots
from . import initial_copy
from .steps import SOURCE, DropSlot, Step

if TYPE_CHECKING:
    from .diff import TargetDiff


def converge(d: TargetDiff) -> list[Step]:
    have = d.have.slot
    if d.sub is None:  # torn down: after its subscription, which let go of it
        return [DropSlot(SOURCE, f"drop replication slot {name}", slot=name)
                for name in ((have.name,) if have else ()) + d.have.sync_slots]
    if initial_copy.from_snapshot(d):  # the copy makes it, with its snapshot
        lost = ", invalidated (wal_status lost)" if d.lost else ""
        return [DropSlot(SOURCE, f"drop replication slot {have.name}{lost}: a new one is made "
                                 "with the snapshot the tables are copied from", slot=have.name)
                ] if have else []
    steps: list[Step] = []
    if d.lost:
        steps.append(DropSlot(SOURCE, f"drop replication slot {d.sub.slot_name}, invalidated "
                                      "(wal_status lost)", slot=d.sub.slot_name))
    if have is None or d.lost:
        steps.append(Step(SOURCE, f"create replication slot {d.sub.slot_name}",
                          (slots.create_statement(d.sub.slot_name),), transactional=False))
    return steps
