"""What a non-superuser role on a target needs beyond creating subscriptions (PostgreSQL
16+: pg_create_subscription and CREATE on the database, checked with the server):
somewhere to create the tables, and a password the subscription can show the source.
"""

from __future__ import annotations

from .catalog import TargetCatalog
from .config import TargetConfig
from .exposure import conninfo_has_password
from .problems import Problem, where


def check_target_privileges(name: str, target: TargetConfig, cat: TargetCatalog,
                            conninfo: str) -> list[Problem]:
    if cat.privileges.superuser:
        return []
    out: list[Problem] = []
    role = cat.info.role
    schemas = sorted({rel.schema for rel in target.tables
                      if rel not in cat.tables and rel.schema in cat.schemas
                      and rel.schema not in cat.creatable_schemas})
    if schemas:
        out.append(Problem(
            "error", where(name),
            f"role {role} may not create tables in schema(s) {', '.join(schemas)}, where "
            f"repl creates this target's tables; grant it: GRANT CREATE ON SCHEMA "
            f"{', '.join(schemas)} TO {role}"))
    if cat.info.major >= 16 and not conninfo_has_password(conninfo):
        out.append(Problem(
            "error", where(name),
            f"role {role} is not a superuser, so PostgreSQL requires its subscription to "
            "connect to the source with a password written in the connection string "
            "(password_required; a password file does not count): put the password in "
            "source.subscriber_dsn, or run setup on this target as a superuser"))
    return out
