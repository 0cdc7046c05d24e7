"""Sequences of targets people write to (`read_only: false`): each replicated sequence
is kept ahead of production's, so that a local insert never takes an id that production
will send (its row would then stop the subscription). At every setup, a step only for a
sequence that is not ahead.

"Ahead" by half of what production has left: a sequence that falls behind is set
halfway between production's last value and its type's end. Any smaller lead is caught
up by production at its own pace, and then the next local row collides; halfway, an
int4 production at a million ids needs a billion more inserts first, a bigint one
practically never. Local rows have conspicuously large ids, which tells them apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

from ..names import ident
from ..table_model import Sequence
from .steps import Step

if TYPE_CHECKING:
    from .diff import TargetDiff


def is_ahead(target: Sequence, production: Sequence) -> bool:
    """The target's sequence will not hand out a value production has handed out."""
    if production.increment > 0:
        return target.position > production.position
    return target.position < production.position


def ahead_of(production: Sequence) -> int:
    """Halfway between production's last value and the end it counts towards."""
    position = production.position
    if production.increment > 0:
        return position + (production.maximum - position) // 2
    return position - (position - production.minimum) // 2


def behind(d: TargetDiff) -> list[tuple[Sequence, Sequence | None]]:
    """(production's, the target's) of every replicated sequence not ahead."""
    found = []
    for table in d.want.tables:
        have = d.have.table(table.relation)
        there = {s.column: s for s in (have.sequences if have else ())}
        for seq in table.sequences:
            current = there.get(seq.column)
            if current is None or not is_ahead(current, seq):
                found.append((seq, current))
    return found


def keep_ahead(d: TargetDiff) -> list[Step]:
    if d.sub is None or d.want.read_only:
        return []
    moves = [sql.SQL("SELECT pg_catalog.setval({}, {}, true)").format(
        sql.Literal(ident(seq.name).as_string(None)), sql.Literal(ahead_of(seq)))
        for seq, _ in behind(d)]
    if not moves:
        return []
    return [Step(d.target, f"move {len(moves)} sequence(s) ahead of production's "
                           "(read_only: false)", tuple(moves))]
