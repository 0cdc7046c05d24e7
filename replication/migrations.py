"""repl's own `repl` schema in each target, versioned with alembic (scripts in alembic/).

alembic (and SQLAlchemy under it) is imported only to migrate: importing it takes about
0.3 s, which every read-only command (`status`, `plan`, `check`) would otherwise pay at
start. Those only need to know the newest revision, which is kept here as a constant;
tests/test_units.py checks it against alembic's own view of alembic/versions.
"""

from __future__ import annotations

import psycopg

from .errors import MigrationError
from .resources import resource_dir

# The newest revision in alembic/versions: update it with every new migration.
HEAD_REVISION = "0008"


def head_revision() -> str:
    return HEAD_REVISION


def is_revision(revision: str) -> bool:
    """Whether `revision` has the form of repl's revisions, numbered 0001, 0002, ... in
    alembic/versions (another alembic project's are hex ids)."""
    return len(revision) == 4 and revision.isascii() and revision.isdigit()


def newer_revision(revision: str) -> bool:
    """Whether a revision of repl's is newer than this repl knows (a newer repl made it)."""
    return int(revision) > int(HEAD_REVISION)


def alembic_head_revision() -> str | None:
    """The head as alembic computes it from the scripts (for the test of the constant)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def _config():  # -> alembic.config.Config
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resource_dir("alembic")))
    return cfg


def upgrade(dsn: str) -> None:
    """Bring the target's `repl` schema to the newest revision, in one transaction."""
    import sqlalchemy
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import NullPool

    from alembic import command

    engine = sqlalchemy.create_engine(
        "postgresql+psycopg://",
        creator=lambda: psycopg.connect(dsn, application_name="repl"),
        poolclass=NullPool,
    )
    try:
        with engine.begin() as connection:
            cfg = _config()
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
    except SQLAlchemyError as exc:
        raise MigrationError(str(exc)) from exc
    finally:
        engine.dispose()
