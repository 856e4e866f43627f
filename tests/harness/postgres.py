"""A throwaway PostgreSQL cluster on 127.0.0.1 (``scripts/throwaway-postgres``, which CI and
developers also call from the shell), for tests that need one beside the suite's own
database, that make databases on demand, or that stop and start the server to see what the
service does while its database is away.

    with ThrowawayPostgres() as pg:
        url = pg.create_database()
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Self

from . import REPO

SCRIPT = REPO / "scripts" / "throwaway-postgres"


def available() -> bool:
    """PostgreSQL's server binaries are installed."""
    return bool(glob.glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("initdb"))


class ThrowawayPostgres:
    """A cluster of its own (the script starts it, and stops it by the pid PostgreSQL wrote
    down), removed at the end."""

    def __init__(self) -> None:
        # Under /tmp, not pytest's private temp dir: as root the server runs as postgres.
        self._parent = Path(tempfile.mkdtemp(prefix="exchange-pg-"))
        self._parent.chmod(0o755)
        self.dir = self._parent / "pg"
        self.url = ""
        self._count = 0

    def _run(self, command: str) -> str:
        result = subprocess.run(
            [str(SCRIPT), command, str(self.dir)], capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            raise RuntimeError(f"throwaway-postgres {command} failed:\n{result.stderr}")
        return result.stdout.strip()

    def start(self) -> Self:
        self.url = self._run("start")
        return self

    def pause(self) -> None:
        """Stop the server (by its own pid), keeping its data."""
        self._run("pause")

    def resume(self) -> None:
        self._run("resume")

    def version(self) -> str:
        return (self.dir / "data" / "PG_VERSION").read_text().strip()

    def create_database(self, prefix: str = "t") -> str:
        """The DATABASE_URL of a new, empty database on this cluster."""
        import psycopg

        self._count += 1
        name = f"{prefix}_{os.getpid()}_{self._count}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        self._run("stop")
        shutil.rmtree(self._parent, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
