"""A live exchange server for tests: gunicorn on 127.0.0.1 in a subprocess.

Usable from any test, with or without Django loaded (the plugin's tests import it without
Django)::

    with LiveServer() as server:
        token = server.create_api_token("ines", create_user=True, staff=True)
        requests.get(server.url + "/api/v1/me", headers={"Authorization": f"token {token}"})

Each server has its own data directory (SQLite database and files) unless ``database_url``
is given, is migrated before it starts, listens on a free port, and is stopped by its pid.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.processes import read_log, terminate

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """gunicorn serving the exchange on 127.0.0.1:<free port>, with its own data."""

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike[str] | None = None,
        database_url: str | None = None,
        env: dict[str, str] | None = None,
        workers: int = 2,
        threads: int = 4,
        startup_timeout: float = 60.0,
    ) -> None:
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="exchange-live-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/api/v1"
        self.workers = workers
        self.threads = threads
        self.startup_timeout = startup_timeout
        self.env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("EXCHANGE_", "DATABASE_URL", "JUPYTERHUB_", "COV_CORE"))
        }
        self.env.update(
            {
                "EXCHANGE_DATA_DIR": str(self.data_dir),
                "DATABASE_URL": database_url or f"sqlite:///{self.data_dir / 'db.sqlite3'}",
                "SECRET_KEY": "live-server-test-key-" + str(self.port),
                "ALLOWED_HOSTS": "127.0.0.1,localhost",
                "DJANGO_SETTINGS_MODULE": "exchange_site.settings",
                "PYTHONUNBUFFERED": "1",
                # Tests and benchmarks submit as one person many times a minute; the rate's
                # own tests set it.
                "EXCHANGE_UPLOADS_PER_MINUTE": "0",
            }
        )
        self.env.update(env or {})
        self.log_path = self.data_dir / "gunicorn.log"
        self.process: subprocess.Popen[bytes] | None = None

    # --- commands against this server's database ----------------------------------------

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``manage.py <args>`` with this server's settings; returns the finished process."""
        result = subprocess.run(
            [str(BIN / "python"), str(REPO / "manage.py"), *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"manage.py {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def create_api_token(
        self, username: str, *, create_user: bool = True, staff: bool = False
    ) -> str:
        """A new API token for the user (created if missing), made with the real command."""
        args = ["create_api_token", username]
        if create_user:
            args.append("--create-user")
        if staff:
            args.append("--staff")
        return self.manage(*args).stdout.strip()

    # --- the process --------------------------------------------------------------------

    def start(self) -> LiveServer:
        self.manage("migrate", "--noinput")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    str(BIN / "gunicorn"),
                    "exchange_site.wsgi",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--workers",
                    str(self.workers),
                    "--threads",
                    str(self.threads),
                    "--timeout",
                    "300",
                    "--access-logfile",
                    "-",
                ],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_until_healthy()
        return self

    def _wait_until_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited at start:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer /healthz in {self.startup_timeout} s")

    def log(self) -> str:
        return read_log(self.log_path)

    def stop(self) -> None:
        """Stop gunicorn by its pid (TERM, then KILL), and remove a data dir we made."""
        process, self.process = self.process, None
        terminate(process, timeout=20)
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
