"""A throwaway PostgreSQL 15 cluster for the end-to-end tests of the PostgreSQL store: initdb and pg_ctl as
the `postgres` user, on a free loopback port, in a directory under /tmp removed at the end. The tests own
the cluster (they stop and restart it), so they never use a server given from outside.

Without the PostgreSQL binaries or root (runuser needs it) the tests fail when CI=true and otherwise skip
with a loud message.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

import e2e

BIN = Path("/usr/lib/postgresql/15/bin")
DATABASE_URL_ENV = "ROLEGATE_DATABASE_URL"


def unavailable_reason() -> str | None:
    if not (BIN / "initdb").is_file():
        return f"{BIN}/initdb is missing (Debian package postgresql-15)"
    if os.geteuid() != 0:
        return "the cluster is started with runuser as the postgres user, which needs root"
    return None


class Postgres:
    """One cluster; `url(db)` for a database on it."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="rolegate-pgtest-"))
        shutil.chown(self.dir, "postgres")
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        self.port = e2e.free_port()
        self._as_postgres("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.start()

    def _as_postgres(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        r = subprocess.run(["runuser", "-u", "postgres", "--", str(BIN / tool), *args],
                           capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"{tool} {' '.join(args)} failed: {r.stdout}\n{r.stderr}"
        return r

    def start(self) -> None:
        self._as_postgres(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w",
            "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200",
            "start")

    def stop(self) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def sql(self, statement: str, db: str = "postgres") -> str:
        r = self._as_postgres("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                              "-d", db, "-v", "ON_ERROR_STOP=1", "-Atc", statement)
        return r.stdout.strip()

    def create_database(self, name: str) -> str:
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, db: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def destroy(self) -> None:
        try:
            self.stop()
        except AssertionError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_cluster():
    why = unavailable_reason()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL tests must run with CI=true: {why}")
        pytest.skip(f"!!! SKIPPING the PostgreSQL end-to-end tests: {why} !!!")
    cluster = Postgres()
    yield cluster
    cluster.destroy()


def postgres_store(config_text: str, **settings: str | int) -> str:
    """`config_text` (a rendered test configuration with a sled store) with a PostgreSQL store whose
    URL comes from $ROLEGATE_DATABASE_URL, plus extra `[store]` settings."""
    start = config_text.index("[store]\n")
    end = config_text.index("\n\n", start)
    lines = ["[store]", 'kind = "postgres"', f'url_env = "{DATABASE_URL_ENV}"']
    lines += [f"{k} = {v}" for k, v in settings.items()]
    return config_text[:start] + "\n".join(lines) + config_text[end:]


def wait_until(what: str, check, timeout: float, interval: float = 0.1):
    """Calls `check` until it returns a true value (returned) or `timeout` seconds pass (fails)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(interval)
