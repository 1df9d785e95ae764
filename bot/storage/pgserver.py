"""A throwaway PostgreSQL server on 127.0.0.1, for the tests, the benchmarks and trying it out.

It runs the machine's own PostgreSQL binaries (Debian's `postgresql` package: `make test` installs
it as root when it is missing) on a data folder of its own, trusts local connections, and is
stopped and deleted with the folder. As root, the server runs as the `postgres` user (PostgreSQL
refuses to run as root). Durability is switched off (fsync, synchronous_commit): it is a test
server; a deployment runs its own PostgreSQL.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "yimi"


def binaries() -> Path | None:
    """The folder of initdb/pg_ctl/postgres, or None when PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One running server; `url(name)` is a database URL for one of its databases."""

    root: Path
    port: int
    bindir: Path
    _user: str | None = field(default=None, repr=False)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bindir / tool), *args],
            user=self._user,
            group=self._user,
            extra_groups=[] if self._user else None,
            cwd=self.root,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )


def start(root: Path) -> Server:
    """Initialise and start a server under `root` (which must not exist yet or be empty).

    Raises RuntimeError with the reason in one line when it cannot be had.
    """
    bindir = binaries()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    user = None
    root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        user = "postgres"
        try:
            entry = pwd.getpwnam(user)
        except KeyError as exc:
            raise RuntimeError("running as root and there is no postgres user") from exc
        os.chown(root, entry.pw_uid, entry.pw_gid)
        # Each folder above the root must let the postgres user through.
        for parent in root.parents:
            if parent == Path("/"):
                break
            mode = parent.stat().st_mode
            if not mode & 0o001:
                os.chmod(parent, mode | 0o001)
    server = Server(root=root, port=_free_port(), bindir=bindir, _user=user)
    data = root / "data"
    try:
        server._run(
            "initdb",
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={server.port} "
            f"-c unix_socket_directories={root} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        server._run(
            "pg_ctl",
            "-D",
            str(data),
            "-l",
            str(root / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"PostgreSQL did not start: {detail.strip().splitlines()[-1:]}") from exc
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError("PostgreSQL started but does not accept connections on 127.0.0.1")
