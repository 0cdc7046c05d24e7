"""How the CLI finds and reports on its config; no database needed (none is reachable)."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from conftest import Repl

UNREACHABLE = "host=127.0.0.1 port=1 dbname=prod user=repl password=s3cr3t-pw connect_timeout=2"

VALID = f"""
version: 1
source: {{dsn: "{UNREACHABLE}"}}
targets:
  analytics:
    dsn: "postgresql://repl:t4rget-pw@127.0.0.1:1/analytics"
    tables:
      public.users: {{columns: [id, country]}}
"""

INVALID = """
version: 1
source: {dsn: "host=127.0.0.1 port=1"}
targets:
  dev:
    dsn: "host=127.0.0.1 port=1"
    tables:
      public.users:
        columns: [id, email]
        colums: [oops]
        mask:
          email: emial
      nodot: {columns: all}
    roles:
      analyst: write
"""


@pytest.fixture
def repl() -> Repl:
    return Repl()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A local port that accepts TCP connections (and answers nothing), to count them."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        yield sock


def accepted(sock: socket.socket) -> int:
    """Connections made to `sock` since the last call (closed ones included)."""
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_config_errors_exit_2_with_dotted_paths_before_connecting(tmp_path, repl, listener):
    port = listener.getsockname()[1]
    cfg = tmp_path / "repl.yaml"
    # Both servers at the listener: a connection attempt would be counted (and time out).
    cfg.write_text(INVALID.replace("port=1", f"port={port} connect_timeout=2"))
    for command in ("check", "plan", "setup", "status"):
        result = repl(command, config=cfg, expect=2)
        err = result.stderr
        assert "targets.dev.tables.public.users.colums" in err
        assert "targets.dev.tables.public.users.mask.email" in err and "emial" in err
        assert "targets.dev.tables.nodot" in err
        assert "targets.dev.roles.analyst" in err
        assert accepted(listener) == 0, f"repl {command} connected before validating"
    socket.create_connection(("127.0.0.1", port)).close()  # the count does count
    assert accepted(listener) == 1


def test_config_option_before_or_after_command_env_and_default(tmp_path, repl, monkeypatch):
    cfg = tmp_path / "custom.yaml"
    cfg.write_text(INVALID)
    before = repl("-c", str(cfg), "check", expect=2)
    after = repl("check", "--config", str(cfg), expect=2)
    assert "targets.dev.roles.analyst" in before.stderr
    assert before.stderr == after.stderr
    monkeypatch.setenv("REPL_CONFIG", str(cfg))
    assert "targets.dev.roles.analyst" in repl("check", expect=2).stderr
    monkeypatch.delenv("REPL_CONFIG")
    monkeypatch.chdir(tmp_path)
    missing = repl("check", expect=2)
    assert "repl.yaml" in missing.stderr
    (tmp_path / "repl.yaml").write_text(INVALID)
    assert "targets.dev.roles.analyst" in repl("check", expect=2).stderr


def test_env_interpolation_and_missing_variable(tmp_path, repl, monkeypatch):
    cfg = tmp_path / "repl.yaml"
    cfg.write_text(VALID.replace(UNREACHABLE, "${PRODUCTION_DSN}"))
    monkeypatch.delenv("PRODUCTION_DSN", raising=False)
    err = repl("check", config=cfg, expect=2).stderr
    assert "source.dsn" in err and "PRODUCTION_DSN" in err
    monkeypatch.setenv("PRODUCTION_DSN", UNREACHABLE)
    result = repl("check", config=cfg, expect=1)  # valid config, unreachable server
    assert "cannot connect to source" in result.stderr


def test_unreachable_server_never_prints_passwords(tmp_path, repl):
    cfg = tmp_path / "repl.yaml"
    cfg.write_text(VALID)
    for command in ("check", "plan", "setup", "status"):
        result = repl(command, config=cfg, expect=1)
        text = result.stdout + result.stderr
        assert "cannot connect to source" in text
        assert "s3cr3t-pw" not in text and "t4rget-pw" not in text


def test_unknown_target_is_a_usage_error(tmp_path, repl):
    cfg = tmp_path / "repl.yaml"
    cfg.write_text(VALID)
    result = repl("plan", "nosuch", config=cfg, expect=2)
    assert "unknown target(s): nosuch" in result.stderr
