"""Connections to the source and the targets, and running repl's catalog queries on them."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from .errors import ConnectError
from .redact import redact
from .resources import load_sql_for

APPLICATION_NAME = "repl"
CONNECT_TIMEOUT_S = 10
# DDL on production waits at most this long for a lock: a long-running transaction on
# a published table makes setup fail fast instead of queueing every write behind it.
SOURCE_LOCK_TIMEOUT = "5s"
SOURCE_STATEMENT_TIMEOUT = "60s"


@dataclass
class Database:
    """An open autocommit connection, named for messages ("source", "target dev")."""

    label: str
    conn: psycopg.Connection
    version_num: int

    def sql_text(self, name: str) -> bytes:
        """The text of sql/<name>.sql, the variant for this server's version: repl's own
        trusted SQL, with %(name)s parameters."""
        return load_sql_for(name, self.version_num).encode()

    def query(self, name: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of sql/<name>.sql (the variant for this server's version) as dicts."""
        with self.conn.cursor(row_factory=dict_row) as cur:
            cur.execute(self.sql_text(name), params or {})  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def execute(self, statement: sql.Composable | str, params: Any = None) -> None:
        with self.conn.cursor() as cur:
            cur.execute(statement if not isinstance(statement, str) else sql.SQL(statement),
                        params)

    def execute_one(self, statement: sql.Composable) -> list[tuple]:
        """Run exactly one statement, and return its rows (if any).

        Sent with the extended protocol (as a prepared statement), so PostgreSQL refuses
        a second statement smuggled into config text (row filters, `sql` masks).
        """
        text = statement.as_string(self.conn).encode()
        with self.conn.cursor() as cur:
            cur.execute(text, prepare=True)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    @contextlib.contextmanager
    def statements_out_of_log(self) -> Iterator[None]:
        """Outside a transaction: keep the statements run meanwhile, and failing ones,
        out of the server log (CREATE SUBSCRIPTION's connection string holds a password,
        which PostgreSQL would log with the statement if it fails). Only a superuser may
        change these settings; settings restored afterwards."""
        names = ("log_statement", "log_min_duration_statement", "log_min_error_statement")
        if not self.scalar("SELECT pg_catalog.current_setting('is_superuser') = 'on'"):
            yield
            return
        saved = {n: self.scalar("SELECT pg_catalog.current_setting(%s)", (n,)) for n in names}
        for name, quiet in zip(names, ("none", "-1", "panic"), strict=True):
            self.execute("SELECT pg_catalog.set_config(%s, %s, false)", (name, quiet))
        try:
            yield
        finally:
            with contextlib.suppress(psycopg.Error):  # a broken connection resets them
                for name, value in saved.items():
                    self.execute("SELECT pg_catalog.set_config(%s, %s, false)", (name, value))

    def scalar(self, statement: sql.Composable | str, params: Any = None) -> Any:
        with self.conn.cursor() as cur:
            cur.execute(statement if not isinstance(statement, str) else sql.SQL(statement),
                        params)
            row = cur.fetchone()
            return row[0] if row else None

    def close(self) -> None:
        self.conn.close()


# libpq's complaints about a malformed conninfo quote pieces of it ("missing "=" after
# "..."): with a password written unquoted, a piece of the password. Those that quote a
# keyword are kept: they say what to fix.
_QUOTED = re.compile(r'"([^"]*)"')
_QUOTES_A_KEYWORD = ("invalid connection option", "invalid URI query parameter")


def dsn_problem(dsn: str) -> str | None:
    """Why libpq cannot parse `dsn`, with no piece of it quoted; None if it can."""
    try:
        psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error as exc:
        message = str(exc).strip()
        if not message.startswith(_QUOTES_A_KEYWORD):
            message = _QUOTED.sub(lambda m: m[0] if m[1] == "=" else '"..."', message)
        return f"its DSN is not a valid connection string: {redact(message)}"
    return None


def connect(dsn: str, label: str, *, source: bool = False, **options: Any) -> Database:
    """An autocommit connection; `options` are libpq connection parameters that take
    precedence over the DSN's (`repl run`'s lock: its own application_name, keepalives)."""
    if problem := dsn_problem(dsn):
        raise ConnectError(f"cannot connect to {label}: {problem}")
    try:
        conn = psycopg.connect(dsn, autocommit=True, **{
            "connect_timeout": CONNECT_TIMEOUT_S, "application_name": APPLICATION_NAME,
            **options})
    except psycopg.Error as exc:
        raise ConnectError(f"cannot connect to {label}: {redact(str(exc)).strip()}") from None
    # Types and expressions read from the catalogs come out schema-qualified unless they
    # live in pg_catalog: they mean the same in every session, the apply worker's too.
    conn.execute("SET search_path = pg_catalog, pg_temp")
    # Dates and intervals as psycopg reads them, whatever the role or database set.
    conn.execute("SET datestyle = 'ISO'; SET intervalstyle = 'postgres'")
    if source:
        conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(SOURCE_LOCK_TIMEOUT)))
        conn.execute(
            sql.SQL("SET statement_timeout = {}").format(sql.Literal(SOURCE_STATEMENT_TIMEOUT))
        )
    return Database(label, conn, conn.info.server_version)


def describe(dsn: str) -> str:
    """host:port/dbname of a DSN, for messages (never its password)."""
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.Error:
        return "<unparsable dsn>"
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    return f"{host}:{port}/{params.get('dbname') or params.get('user') or ''}"
