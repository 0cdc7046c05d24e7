"""Known ways personal data or secrets leave repl's control, reported by `check` as
warnings: PostgreSQL behaviours repl cannot switch off, each with what to do about it.
"""

from __future__ import annotations

import psycopg

from .catalog import TargetCatalog
from .config import Config
from .problems import Problem, where
from .state import subscriber_conninfo

PASSWORD_FILE_ROUTE = (
    "give subscriber_dsn a passfile=PATH instead of a password (a password file the "
    "target server's operating-system account can read, in the format of ~/.pgpass): "
    "the catalog then holds the path, not the password")


def conninfo_has_password(conninfo: str) -> bool:
    try:
        return bool(psycopg.conninfo.conninfo_to_dict(conninfo).get("password"))
    except psycopg.Error:
        return False


def check_exposure(config: Config, targets: dict[str, TargetCatalog]) -> list[Problem]:
    out: list[Problem] = []
    stored_password = conninfo_has_password(subscriber_conninfo(config))
    for name, cat in targets.items():
        if stored_password:
            failing = "" if cat.info.log_min_error_statement == "panic" else (
                "; and should CREATE SUBSCRIPTION fail (the source unreachable, say), "
                "PostgreSQL writes it, password included, to the target's server log "
                f"(log_min_error_statement = {cat.info.log_min_error_statement}), which a "
                "role that is not a superuser cannot turn off")
            remedy = PASSWORD_FILE_ROUTE if cat.privileges.superuser else (
                f"role {cat.info.role} is not a superuser, so its subscription must keep it "
                "there (password_required): let subscriber_dsn's role have REPLICATION and "
                f"SELECT on the published tables only{failing}")
            out.append(Problem(
                "warning", where(name),
                "the subscription will keep the source's password in "
                "pg_subscription.subconninfo on this target, readable by its superusers and "
                f"in its backups; {remedy}", kind="exposure"))
        if stored_password and not cat.privileges.superuser and cat.info.logs_statements:
            out.append(Problem(
                "warning", where(name),
                f"this server logs role {cat.info.role}'s statements (log_statement = "
                f"{cat.info.log_statement}, log_min_duration_statement = "
                f"{cat.info.log_min_duration_statement}) and, not being a superuser, repl "
                "cannot turn that off: CREATE SUBSCRIPTION, with the source's password from "
                "subscriber_dsn, will be written to the target's server log; have "
                "log_statement = none and log_min_duration_statement = -1 for this role "
                "(ALTER ROLE ... SET, by a superuser) while setup runs", kind="exposure"))
        masked = [str(rel) for rel, table in config.targets[name].tables.items() if table.mask]
        if masked and cat.info.major >= 18:
            out.append(Problem(
                "warning", where(name),
                f"PostgreSQL {cat.info.major} logs apply conflicts with the replicated row "
                "as the source sent it: when a row to update is missing on the target "
                "(update_missing) no trigger has run, so raw values of masked columns "
                f"({', '.join(masked)}) reach this target's server log. Keep its log as "
                "private as production's, and never change replicated tables by hand",
                kind="exposure"))
    return out
