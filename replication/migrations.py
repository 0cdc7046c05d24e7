"""repl's own `repl` schema in each target, versioned with alembic (scripts in alembic/)."""

from __future__ import annotations

from functools import cache

import psycopg
import sqlalchemy
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.pool import NullPool

from alembic import command

from .resources import resource_dir


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resource_dir("alembic")))
    return cfg


@cache
def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "alembic/ has no revisions"
    return head


def upgrade(dsn: str) -> None:
    """Bring the target's `repl` schema to the newest revision, in one transaction."""
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
    finally:
        engine.dispose()
