"""A live exchange server for tests: gunicorn on 127.0.0.1 in a subprocess, and setting up
courses on it over its real interfaces.

Usable from any test, with or without Django loaded (the plugin's tests import it without
Django)::

    with LiveServer() as server:
        tokens = server.tokens({"ines": True, "sam": False})
        session(tokens["ines"]).get(server.api_url + "/me")

Each server has its own data directory (SQLite database and files) unless ``database_url``
is given, is migrated before it starts, listens on a free port, and is stopped by its pid.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import requests

from exchange_site import gunicorn_conf

from . import BIN, REPO
from .ports import free_port
from .process import ManagedProcess

KEEP_ALIVE = gunicorn_conf.keepalive
WORKER_CLASS = gunicorn_conf.worker_class


def worker_options(workers: int, threads: int) -> list[str]:
    """gunicorn's options for ``workers`` processes of ``threads`` threads, with the
    service's worker class: what every test server gives gunicorn."""
    return ["--workers", str(workers), "--threads", str(threads), "--worker-class", WORKER_CLASS]


# Users and API tokens in one `manage.py shell` run, by the service's own functions.
_MAKE_TOKENS = """
import json
from api.tokens import create_api_token
from courses import services
wanted = json.loads('''{spec}''')
tokens = {{}}
for name, staff in wanted.items():
    user = services.get_or_create_user(name)
    if staff and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    tokens[name] = create_api_token(user=user)
print(json.dumps(tokens))
"""


# A SQLite database migrated once in this process, copied for every new server: the
# migrations take a Python start and ~1 s of CPU (14 s of wall time on a loaded machine) per
# server, and the suite starts about twenty.
_TEMPLATE_DIR: Path | None = None


def migrated_sqlite(database: Path, migrate: Callable[[], object]) -> None:
    """Make ``database`` a migrated SQLite database: a copy of the one this process migrated
    first, or migrated by ``migrate()`` (and kept as that copy) if none is yet. A database
    that exists already is migrated in place (a server started again on its data)."""
    global _TEMPLATE_DIR
    template = _TEMPLATE_DIR / "db.sqlite3" if _TEMPLATE_DIR else None
    if database.exists() or template is None:
        migrate()
        if template is None and database.exists():
            _TEMPLATE_DIR = Path(tempfile.mkdtemp(prefix="exchange-migrated-"))
            atexit.register(shutil.rmtree, _TEMPLATE_DIR, ignore_errors=True)
            _copy_sqlite(database, _TEMPLATE_DIR / "db.sqlite3")
        return
    _copy_sqlite(template, database)


def _copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy through SQLite's backup API (a journal or WAL file is folded in)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    target.chmod(0o600)


def run_manage(
    env: Mapping[str, str], *args: str, check: bool = True, timeout: float = 300, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """``manage.py <args>`` in a process of its own with ``env``; the finished process.
    With ``check``, a failure raises with the command's output."""
    result = subprocess.run(
        [str(BIN / "python"), str(REPO / "manage.py"), *args],
        cwd=REPO,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} failed ({result.returncode}):\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result


def exchange_environment(*, strip: tuple[str, ...] = ()) -> dict[str, str]:
    """This process's environment without the exchange's, the hub's or coverage's settings,
    for a server that must be configured only by what the test gives it."""
    prefixes = ("EXCHANGE_", "DATABASE_URL", "JUPYTERHUB_", "COV_CORE", *strip)
    return {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}


class LiveServer(ManagedProcess):
    """gunicorn serving the exchange on 127.0.0.1:<free port>, with its own data."""

    kind = "gunicorn"
    stop_timeout = 20.0

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
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/api/v1"
        self.workers = workers
        self.threads = threads
        self.startup_timeout = startup_timeout
        self.env = exchange_environment()
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
                # Idle connections kept open as every deployment keeps them (make run, the
                # image, the chart): with gunicorn's 2 s a client that paused a little longer
                # could send on a connection the server was closing ("Remote end closed
                # connection without response"). A caller's GUNICORN_CMD_ARGS replaces it.
                "GUNICORN_CMD_ARGS": f"--keep-alive {KEEP_ALIVE}",
            }
        )
        self.env.update(env or {})
        self.database_url = self.env["DATABASE_URL"]
        self.log_path = self.data_dir / "gunicorn.log"
        self.process = None

    # --- commands against this server's database ----------------------------------------

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``manage.py <args>`` with this server's settings; returns the finished process."""
        return run_manage(self.env, *args, check=check)

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

    def tokens(self, users: Mapping[str, bool] | Iterable[str]) -> dict[str, str]:
        """An API token for each user (created if missing; ``True`` makes a site admin), all
        in one ``manage.py shell`` run: one process start instead of one per user."""
        wanted = dict(users) if isinstance(users, Mapping) else dict.fromkeys(users, False)
        result = self.manage("shell", "-c", _MAKE_TOKENS.format(spec=json.dumps(wanted)))
        return json.loads(result.stdout.strip().splitlines()[-1])

    # --- the process --------------------------------------------------------------------

    def prepare(self) -> None:
        own_sqlite = self.data_dir / "db.sqlite3"
        if self.database_url == f"sqlite:///{own_sqlite}":
            migrated_sqlite(own_sqlite, lambda: self.manage("migrate", "--noinput"))
        else:
            self.manage("migrate", "--noinput")

    def command(self) -> list[str]:
        return [
            str(BIN / "gunicorn"),
            "exchange_site.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
            *worker_options(self.workers, self.threads),
            "--timeout",
            "300",
            "--access-logfile",
            "-",
        ]

    def environment(self) -> dict[str, str]:
        return self.env

    def workdir(self) -> Path:
        return REPO

    def is_ready(self) -> bool:
        with urllib.request.urlopen(self.url + "/healthz", timeout=2) as response:
            return response.status == 200

    def cleanup(self) -> None:
        """Remove a data dir we made."""
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


# --- a course on a live server, through its API --------------------------------------------


def session(token: str) -> requests.Session:
    """An HTTP session that sends the API token."""
    http = requests.Session()
    http.headers["Authorization"] = f"token {token}"
    return http


def create_course(
    server: LiveServer,
    *,
    code: str,
    admin_token: str,
    instructor: str,
    instructor_token: str,
    students: Iterable[str],
) -> None:
    """A course with one instructor and a roster of students, through the API."""
    response = session(admin_token).post(
        f"{server.api_url}/courses",
        json={"course_id": code, "instructors": [instructor]},
        timeout=60,
    )
    response.raise_for_status()
    members = [{"username": name} for name in students]
    if members:
        response = session(instructor_token).post(
            f"{server.api_url}/courses/{code}/roster",
            json={"role": "student", "members": members},
            timeout=300,
        )
        response.raise_for_status()
