"""What the servers must allow before repl changes anything (SPEC section 5, guarantee 1):
versions, wal_level, free slots, WAL senders and apply workers, the connecting roles'
privileges, reader roles repl may manage, and a target database of its own.
"""

from __future__ import annotations

from psycopg import sql

from .catalog import SourceCatalog, TargetCatalog
from .config import Config
from .migrations import head_revision, newer_revision
from .model import Role
from .problems import REPL_SCHEMA, Problem, where

MIN_SERVER_VERSION = 150000


def check_source_server(cat: SourceCatalog, new_slots: int, need_publications: bool
                        ) -> list[Problem]:
    info, out = cat.info, []
    if info.version_num < MIN_SERVER_VERSION:
        out.append(Problem("error", "source", f"PostgreSQL {info.version} is too old; "
                                              "repl needs 15 or newer (row filters, column lists)"))
    if info.wal_level != "logical":
        out.append(Problem("error", "source",
                           f"wal_level is '{info.wal_level}'; run ALTER SYSTEM SET wal_level = "
                           "'logical' and restart the server"))
    if not (info.superuser or info.replication):
        out.append(Problem("error", "source",
                           f"role {info.role} can create no replication slot; grant it "
                           f"REPLICATION (ALTER ROLE {info.role} REPLICATION)"))
    if need_publications and not (info.superuser or info.can_create_in_database):
        out.append(Problem("error", "source",
                           f"role {info.role} cannot create publications in database "
                           f"{info.database}; GRANT CREATE ON DATABASE {info.database} "
                           f"TO {info.role}"))
    free_slots = info.max_replication_slots - info.slots_used
    if new_slots > free_slots:
        out.append(Problem("error", "source",
                           f"{new_slots} replication slot(s) needed but only {free_slots} of "
                           f"max_replication_slots = {info.max_replication_slots} are free"))
    free_senders = info.max_wal_senders - info.senders_used
    if new_slots > free_senders:
        out.append(Problem("error", "source",
                           f"{new_slots} WAL sender(s) needed but only {free_senders} of "
                           f"max_wal_senders = {info.max_wal_senders} are free"))
    elif new_slots and new_slots + 2 > min(free_slots, free_senders):
        out.append(Problem("warning", "source",
                           "few replication slots or WAL senders are left for the temporary "
                           "slots of initial table copies; copies will queue"))
    if not info.read_all_stats:
        out.append(Problem("warning", "source",
                           f"role {info.role} may not read the walsenders' positions and lag "
                           "times in pg_stat_replication, so status cannot tell the lag in "
                           f"seconds: GRANT pg_read_all_stats TO {info.role}"))
    if info.max_slot_wal_keep_size.strip() in ("-1", "-1MB"):
        out.append(Problem("warning", "source",
                           "max_slot_wal_keep_size is unlimited: a target that stays down makes "
                           "the source keep WAL without bound; set a limit"))
    return out


def check_roles(name: str, config: Config, targets: dict[str, TargetCatalog]) -> list[Problem]:
    """Configured reader roles: NOLOGIN roles that repl may create or created itself,
    members that exist. A role is cluster-wide: the targets of one cluster share it, so one
    may have made a role another configures, and they must agree on its members."""
    roles, cat, out = config.targets[name].roles, targets[name], []
    cluster = [n for n, c in targets.items()
               if c.info.system_identifier == cat.info.system_identifier]
    if roles and not (cat.privileges.superuser or cat.privileges.can_create_roles):
        out.append(Problem("error", where(name),
                           f"role {cat.info.role} cannot create the configured roles; it needs "
                           "CREATEROLE (or superuser)"))
    for role, spec in roles.items():
        existing = cat.roles.get(role)
        if existing is not None and existing.login:
            out.append(Problem("error", f"target {name}, role {role}",
                               "exists and can log in; repl manages NOLOGIN reader roles "
                               "only: pick another name and list login roles as members"))
        # A repl older than the mark recorded its roles only in the repl.managed_role of
        # the target whose setup created them.
        elif existing is not None and not existing.marked and not any(
                role in targets[n].managed_roles for n in cluster):
            out.append(Problem(
                "error", f"target {name}, role {role}",
                f"exists and repl did not create it (it has no comment '{Role.MARKER}'); "
                "repl would revoke from it every member the config does not list: pick "
                "another name, or, if repl is to manage this role, run COMMENT ON ROLE "
                f"{sql.Identifier(role).as_string()} IS '{Role.MARKER}'"))
        for member in spec.members:
            if member not in cat.roles:
                out.append(Problem("error", f"target {name}, role {role}",
                                   f"member {member} does not exist on the target; create "
                                   "that login role first"))
        for other in cluster[:cluster.index(name)]:
            theirs = config.targets[other].roles.get(role)
            if theirs is not None and set(theirs.members) != set(spec.members):
                out.append(Problem(
                    "error", f"target {name}, role {role}",
                    f"is also configured on target {other}, in the same cluster, with other "
                    f"members ([{', '.join(sorted(theirs.members))}] there, "
                    f"[{', '.join(sorted(spec.members))}] here); a role and its members are "
                    "the same in every database of a cluster: give both targets the same "
                    "members, or the roles different names"))
    return out


def check_distinct_databases(source: SourceCatalog, targets: dict[str, TargetCatalog]
                             ) -> list[Problem]:
    """A target must be its own database: setup empties and reshapes target tables."""
    out, seen = [], {(source.info.system_identifier, source.info.database): "the source"}
    for name, cat in targets.items():
        key = (cat.info.system_identifier, cat.info.database)
        if key in seen:
            out.append(Problem("error", where(name),
                               f"is the same database as {seen[key]} ({cat.info.database}); "
                               "setup would empty and reshape its tables: give it a database "
                               "of its own"))
        else:
            seen[key] = f"target {name}"
    return out


def check_target_server(name: str, cat: TargetCatalog) -> list[Problem]:
    info, privs, out = cat.info, cat.privileges, []
    if info.version_num < MIN_SERVER_VERSION:
        out.append(Problem("error", where(name),
                           f"PostgreSQL {info.version} is too old; repl needs 15 or newer"))
    may_subscribe = privs.superuser or (
        info.major >= 16 and privs.member_of_pg_create_subscription
        and privs.can_create_in_database)
    if not may_subscribe:
        how = ("a superuser" if info.major < 16 else
               "a superuser, or a member of pg_create_subscription with CREATE on the database")
        out.append(Problem("error", where(name),
                           f"role {info.role} cannot create subscriptions; it must be {how}"))
    if cat.foreign_repl_schema:
        out.append(Problem(
            "error", where(name),
            "a schema named repl exists that repl did not create (it has no "
            "repl.alembic_version); repl keeps its own state in the schema repl: rename "
            "that schema (ALTER SCHEMA repl RENAME TO ...) or drop it", kind=REPL_SCHEMA))
    elif cat.schema_revision is not None and newer_revision(cat.schema_revision):
        out.append(Problem(
            "error", where(name),
            f"the repl schema is at revision {cat.schema_revision}, newer than this repl "
            f"knows ({head_revision()}): a newer repl set this target up; use that version",
            kind=REPL_SCHEMA))
    workers = cat.workers
    # A subscription needs an apply worker for good, and a table-sync worker while a table
    # is copied: without a free one the copy waits, with an error nowhere but the log.
    if workers is not None and workers.other_subscriptions + 2 > workers.max_workers:
        exists = bool(cat.subscriptions)
        out.append(Problem(
            "warning" if exists else "error", where(name),
            f"max_logical_replication_workers is {workers.max_workers} on this target's "
            f"server and {workers.other_subscriptions} other enabled subscription(s) use "
            "that many apply workers; " + (
                "a table copied again (a resync, a changed table) would wait for a free "
                "worker" if exists else
                "repl's subscription needs one more, and one per table it copies at a "
                "time") + ": raise max_logical_replication_workers (and "
            "max_worker_processes), then restart the server"))
    return out
