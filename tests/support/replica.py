"""A primary and its streaming replica (hot standby) on loopback, for the read-replica
stories: initdb, pg_basebackup -R, two servers on free ports, removed afterwards.

The servers' binaries come from ROADCHIEF_TEST_PG_BIN (scripts/test exports the throwaway
cluster's), else from the newest /usr/lib/postgresql/<major>/bin. As root the clusters
belong to the postgres user, as in scripts/pgcluster.sh: PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

PG_BIN_VAR = "ROADCHIEF_TEST_PG_BIN"

_CONF = """
# --- tests/support/replica.py: throwaway primary or standby ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '{sockets}'
fsync = off
full_page_writes = on
wal_level = replica
max_wal_senders = 4
hot_standby = on
random_page_cost = 1.1
"""


def server_binaries() -> Path | None:
    """The directory holding initdb, pg_ctl and pg_basebackup, or None: the one named,
    else the newest Debian major with PostGIS, else the newest."""
    named = os.environ.get(PG_BIN_VAR)
    candidates = [Path(named)] if named else []
    majors = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_major, reverse=True)
    postgis = [
        d for d in majors
        if Path(f"/usr/share/postgresql/{_major(d)}/extension/postgis.control").is_file()
    ]  # fmt: skip
    for directory in [*candidates, *postgis, *majors]:
        if all((directory / tool).is_file() for tool in ("initdb", "pg_ctl", "pg_basebackup")):
            return directory
    return None


def _major(path: Path) -> int:
    return int(path.parent.name) if path.parent.name.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Pair:
    """The two servers: URLs of the app's database, superuser engines for the test's own
    checks (replay, recovery), on each server's `postgres` database."""

    primary_url: str
    standby_url: str
    primary: Engine
    standby: Engine

    def wait_for_replay(self, timeout: float = 30.0) -> None:
        """Until the standby has replayed everything the primary has written so far."""
        with self.primary.connect() as conn:
            target = conn.execute(text("SELECT pg_current_wal_lsn()")).scalar_one()
        deadline = time.monotonic() + timeout
        query = text("SELECT pg_last_wal_replay_lsn() >= CAST(:target AS pg_lsn)")
        while True:
            with self.standby.connect() as conn:
                if conn.execute(query, {"target": target}).scalar_one():
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the standby did not replay up to {target}")
            time.sleep(0.05)

    def wait_for_receipt(self, timeout: float = 30.0) -> None:
        """Until the standby has received (not necessarily replayed) all the primary wrote."""
        with self.primary.connect() as conn:
            target = conn.execute(text("SELECT pg_current_wal_lsn()")).scalar_one()
        deadline = time.monotonic() + timeout
        query = text("SELECT pg_last_wal_receive_lsn() >= CAST(:target AS pg_lsn)")
        while True:
            with self.standby.connect() as conn:
                if conn.execute(query, {"target": target}).scalar_one():
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the standby did not receive up to {target}")
            time.sleep(0.05)


@contextmanager
def primary_and_standby(binaries: Path) -> Iterator[Pair]:
    """Start a primary, clone it with pg_basebackup -R into a streaming standby, yield
    both; stop them and remove their files on the way out."""
    run_as: list[str] = []
    if os.geteuid() == 0:
        run_as = ["runuser", "-u", "postgres", "--"]
        root = Path(tempfile.mkdtemp(prefix="roadchief-replica-", dir="/tmp"))
        shutil.chown(root, "postgres", "postgres")
    else:
        root = Path(tempfile.mkdtemp(prefix="roadchief-replica-"))
    primary, standby = root / "primary", root / "standby"
    started: list[Path] = []
    engines: list[Engine] = []

    def run(*command: str | Path) -> None:
        done = subprocess.run(
            [*run_as, *map(str, command)], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed:\n{done.stdout}\n{done.stderr}")

    def start(data: Path) -> int:
        for attempt in range(3):  # a free port may be taken before the server binds it
            port = _free_port()
            try:
                run(binaries / "pg_ctl", "start", "-D", data, "-l", data.with_suffix(".log"),
                    "-w", "-t", "60", "-s", "-o", f"-p {port}")  # fmt: skip
            except RuntimeError:
                if attempt == 2:
                    raise RuntimeError(data.with_suffix(".log").read_text()) from None
                continue
            started.append(data)
            return port
        raise AssertionError("unreachable")

    try:
        run(binaries / "initdb", "-D", primary, "-A", "trust", "-U", "postgres", "--no-sync",
            "-E", "UTF8", "--locale=C")  # fmt: skip
        with (primary / "postgresql.conf").open("a") as conf:
            conf.write(_CONF.format(sockets=root))
        with (primary / "pg_hba.conf").open("a") as hba:
            hba.write("host replication postgres 127.0.0.1/32 trust\n")
        primary_port = start(primary)
        # -R writes standby.signal and primary_conninfo: the copy starts as a streaming standby.
        run(binaries / "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary_port), "-U",
            "postgres", "-D", standby, "-R", "-X", "stream", "-c", "fast", "--no-sync")  # fmt: skip
        standby_port = start(standby)
        urls = [f"postgresql+psycopg://postgres@127.0.0.1:{p}/roadchief"
                for p in (primary_port, standby_port)]  # fmt: skip
        # The test's own engines reach the servers' `postgres` database: replication is of
        # the whole cluster, so its functions answer there for the app's database too.
        primary_admin, standby_admin = (
            create_engine(url.replace("/roadchief", "/postgres"), isolation_level="AUTOCOMMIT")
            for url in urls
        )
        engines += [primary_admin, standby_admin]
        with primary_admin.connect() as conn:
            conn.execute(text("CREATE DATABASE roadchief"))
        pair = Pair(urls[0], urls[1], primary_admin, standby_admin)
        pair.wait_for_replay()
        yield pair
    finally:
        for engine in engines:
            engine.dispose()
        for data in reversed(started):
            with suppress(RuntimeError):
                run(binaries / "pg_ctl", "stop", "-D", data, "-m", "immediate", "-s")
        shutil.rmtree(root, ignore_errors=True)
