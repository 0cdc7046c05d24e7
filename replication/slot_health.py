"""What `status` says of a target's slot on the source: the subscriber's lag in seconds
and what the figure rests on, and the slot's health (missing, lost, about to lose WAL,
without a consumer). Lag in seconds is PostgreSQL's own measurement, not a heartbeat of
ours: repl is not in the data path and puts nothing but publications and slots on the
source."""

from __future__ import annotations

from .model import Slot

# Flushed WAL a walsender may not have sent yet while still keeping up with the source.
UNSENT_SLACK = 1024 * 1024
# Warn when a slot has used this share of its max_slot_wal_keep_size budget.
WAL_BUDGET_WARNING = 0.75


def lag(slot: Slot | None) -> tuple[float | None, str]:
    """The subscriber's lag in seconds, and what the figure rests on.

    - "caught up": the walsender has sent all flushed WAL and the subscriber reported it
      applied (or confirmed everything): 0 s. PostgreSQL blanks replay_lag once idle, so
      without this an idle, healthy target would show no figure at all.
    - "replay_lag": pg_stat_replication.replay_lag. A logical walsender times a position
      from decoding its commit to the subscriber reporting it applied, so this is the
      whole lag only while the walsender keeps up with the WAL.
    - "at least": replay_lag while the walsender is behind in decoding (more than
      UNSENT_SLACK of flushed WAL not sent): the changes not decoded yet are older than
      anything measured, so the lag is longer, by an unknown amount; the bytes tell.
    - "inactive": no walsender; PostgreSQL 17+ dates when the slot lost its consumer, so
      the lag is at least that long (a lower bound: older unapplied WAL is not dated).
    - "unknown": behind, and PostgreSQL has no measurement; the bytes still tell.
    """
    if slot is None:
        return None, "unknown"
    if slot.caught_up or (slot.lag_bytes is not None and slot.lag_bytes <= 0):
        return 0.0, "caught up"
    if slot.active and slot.replay_lag_seconds is not None:
        behind = slot.unsent_bytes is not None and slot.unsent_bytes > UNSENT_SLACK
        return slot.replay_lag_seconds, "at least" if behind else "replay_lag"
    if not slot.active and slot.inactive_seconds is not None:
        return slot.inactive_seconds, "inactive"
    return None, "unknown"


def slot_findings(slot: Slot | None, sub_name: str) -> tuple[list[str], list[str]]:
    """What `status` says of a target's slot: problems (unhealthy), and warnings."""
    problems: list[str] = []
    warnings: list[str] = []
    if slot is None:
        problems.append(f"replication slot {sub_name} is missing on the source; "
                        "`repl setup` recreates the subscription and copies every table")
        return problems, warnings
    if slot.wal_status == "lost":
        problems.append(f"replication slot {sub_name} is lost (its WAL was removed past "
                        "max_slot_wal_keep_size); `repl setup` recreates the subscription "
                        "and copies this target's tables again")
        return problems, warnings
    if slot.wal_status == "unreserved":
        problems.append(f"replication slot {sub_name} is about to lose required WAL "
                        "(wal_status unreserved): it will be invalidated at the next "
                        "checkpoint unless the target catches up")
    elif slot.safe_wal_size is not None and slot.retained_bytes is not None:
        budget = slot.retained_bytes + slot.safe_wal_size
        if budget > 0 and slot.retained_bytes >= WAL_BUDGET_WARNING * budget:
            warnings.append(
                f"replication slot {sub_name} retains {_mb(slot.retained_bytes)} of WAL, "
                f"{slot.retained_bytes * 100 // budget}% of max_slot_wal_keep_size; after "
                f"{_mb(max(slot.safe_wal_size, 0))} more PostgreSQL invalidates it and the "
                "target's tables must be copied again")
    if not slot.active:
        since = (f" for {slot.inactive_seconds:.0f} s" if slot.inactive_seconds is not None
                 else "")
        warnings.append(f"replication slot {sub_name} has no consumer{since}: the WAL it "
                        f"retains ({_mb(slot.retained_bytes or 0)}) grows with every write "
                        "on the source until the target is back")
    return problems, warnings


def _mb(n: int) -> str:
    return f"{n / 1048576:.1f} MB"
