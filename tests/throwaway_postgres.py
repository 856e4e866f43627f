"""A throwaway PostgreSQL cluster (``scripts/throwaway-postgres``) that a test or the bench
can stop and start again, to see what the service does while its database is away."""

from __future__ import annotations

import glob
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "throwaway-postgres"


def available() -> bool:
    """PostgreSQL's server binaries are installed."""
    return bool(glob.glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("initdb"))


class ThrowawayPostgres:
    """``with ThrowawayPostgres() as pg: pg.url`` -- a cluster of its own, removed at the end."""

    def __init__(self) -> None:
        self._parent = Path(tempfile.mkdtemp(prefix="exchange-pg-"))
        self._parent.chmod(0o755)
        self.dir = self._parent / "pg"
        self.url = ""

    def _run(self, command: str) -> str:
        result = subprocess.run(
            [str(SCRIPT), command, str(self.dir)], capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            raise RuntimeError(f"throwaway-postgres {command} failed:\n{result.stderr}")
        return result.stdout.strip()

    def start(self) -> ThrowawayPostgres:
        self.url = self._run("start")
        return self

    def pause(self) -> None:
        """Stop the server (by its own pid), keeping its data."""
        self._run("pause")

    def resume(self) -> None:
        self._run("resume")

    def version(self) -> str:
        return (self.dir / "data" / "PG_VERSION").read_text().strip()

    def stop(self) -> None:
        self._run("stop")
        shutil.rmtree(self._parent, ignore_errors=True)

    def __enter__(self) -> ThrowawayPostgres:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
