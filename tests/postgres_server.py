"""A real, throw-away PostgreSQL server for the tests of a study shared by several workers (not a
test module).

``postgres_url`` (session-scoped, registered in tests/conftest.py) runs initdb in a temporary
folder as an unprivileged user, starts the server on 127.0.0.1 and a free port, creates one
database, yields its SQLAlchemy URL and, at the end of the session (also after failures), stops the
server and removes the folder. Where no server can be made (no initdb, no psycopg2, initdb fails)
the tests that ask for it are skipped with one line saying why.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

BINARIES = ("initdb", "pg_ctl", "postgres")
DEBIAN_ROOTS = "/usr/lib/postgresql/*/bin"
DATABASE = "deepfit_test"
START_TIMEOUT_S = 30
SETTINGS = {  # a server for tests: local only, no durability, little memory
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "max_connections": "50",
}


class Unavailable(Exception):
    """This machine cannot run a PostgreSQL server for the tests; the message says why."""


@dataclass(frozen=True)
class PostgresServer:
    url: str  # postgresql+psycopg2://USER@127.0.0.1:PORT/deepfit_test
    port: int
    directory: Path  # the temporary folder: data/, server.log and the unix socket


def _version_key(bindir: str) -> tuple[int, ...]:
    """(15,) for /usr/lib/postgresql/15/bin, so that 16 sorts after 9.6."""
    version = Path(bindir).parent.name
    return tuple(int(part) for part in re.findall(r"\d+", version)) or (-1,)


def find_bindir(path: str | None = None, roots: str | None = None) -> Path:
    """The folder holding initdb, pg_ctl and postgres: initdb's on PATH first (symlinks followed),
    then Debian's /usr/lib/postgresql/<version>/bin, newest version first."""
    candidates = []
    initdb = shutil.which("initdb", path=path)
    if initdb:
        candidates.append(str(Path(initdb).resolve().parent))
    candidates += sorted(glob.glob(roots or DEBIAN_ROOTS), key=_version_key, reverse=True)
    for bindir in candidates:
        if all(os.access(os.path.join(bindir, name), os.X_OK) for name in BINARIES):
            return Path(bindir)
    if not candidates:
        raise Unavailable("initdb not found (apt-get install postgresql)")
    missing = [name for name in BINARIES if not os.access(os.path.join(candidates[0], name), os.X_OK)]
    raise Unavailable(f"{', '.join(missing)} not found next to initdb in {candidates[0]}")


def server_account() -> pwd.struct_passwd:
    """Who runs the server: ourselves, or, as root (which PostgreSQL refuses), an existing
    unprivileged account: postgres, else nobody."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise Unavailable("running as root and neither a 'postgres' nor a 'nobody' account exists")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _runner(account: pwd.struct_passwd, cwd: Path):
    """subprocess.run as ``account`` (switched in the child by subprocess itself when we are
    root), in ``cwd``, without the caller's PG* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(HOME=str(cwd), LC_ALL="C")
    switch = {}
    if os.geteuid() == 0:
        switch = dict(user=account.pw_uid, group=account.pw_gid, extra_groups=[])

    def run(*args, timeout):
        return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout, **switch)
    return run


def _first_line(result) -> str:
    lines = [line for line in (result.stderr + "\n" + result.stdout).splitlines() if line.strip()]
    return lines[0].strip() if lines else f"exit status {result.returncode}, no output"


def _log_tail(log: Path, lines: int = 5) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:]) or "(empty)"
    except OSError as err:
        return f"(no log: {err})"


def _stop(run, bindir: Path, data: Path) -> None:
    """pg_ctl stop -m immediate; if the postmaster is somehow still there, SIGKILL it."""
    pid_file = data / "postmaster.pid"
    pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
    with contextlib.suppress(subprocess.TimeoutExpired):
        run(bindir / "pg_ctl", "-D", data, "stop", "-m", "immediate", "-w", "-t", 10, timeout=20)
    if pid is not None and pid_file.exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def running_postgres():
    """Yield a PostgresServer; raise Unavailable where this machine cannot run one."""
    try:
        import psycopg2
    except ImportError:
        raise Unavailable("psycopg2 is not installed (pip install -e '.[postgres]')") from None
    bindir = find_bindir()
    account = server_account()
    directory = Path(tempfile.mkdtemp(prefix="deepfit-pg-"))
    try:
        os.chmod(directory, 0o700)
        if os.geteuid() == 0:
            os.chown(directory, account.pw_uid, account.pw_gid)
        run = _runner(account, directory)
        data, log, port = directory / "data", directory / "server.log", _free_port()
        try:
            made = run(bindir / "initdb", "-D", data, "--auth=trust", f"--username={account.pw_name}",
                       "--encoding=UTF8", "--no-locale", "--no-sync", timeout=120)
        except (OSError, subprocess.SubprocessError) as err:  # e.g. no right to switch user
            raise Unavailable(f"initdb could not run as {account.pw_name}: {err}") from None
        if made.returncode != 0:
            raise Unavailable(f"initdb failed: {_first_line(made)}")
        settings = dict(SETTINGS, port=str(port), unix_socket_directories=f"'{directory}'")
        with open(data / "postgresql.conf", "a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        try:
            started = run(bindir / "pg_ctl", "-D", data, "-l", log, "-w", "-t", START_TIMEOUT_S,
                          "start", timeout=START_TIMEOUT_S + 10)
            if started.returncode != 0:
                raise RuntimeError(f"PostgreSQL did not start ({_first_line(started)}, waited up to "
                                   f"{START_TIMEOUT_S} s); its log says: {_log_tail(log)}")
            with contextlib.closing(psycopg2.connect(host="127.0.0.1", port=port, dbname="postgres",
                                                     user=account.pw_name)) as admin:
                admin.autocommit = True
                admin.cursor().execute(f"CREATE DATABASE {DATABASE}")
            yield PostgresServer(f"postgresql+psycopg2://{account.pw_name}@127.0.0.1:{port}/{DATABASE}",
                                 port, directory)
        finally:
            _stop(run, bindir, data)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url():
    """SQLAlchemy URL of a database on a PostgreSQL server that lives for this test session
    (shared by its tests: give each study its own name)."""
    try:
        with running_postgres() as server:
            yield server.url
    except Unavailable as why:
        pytest.skip(f"PostgreSQL server not available: {why}")
