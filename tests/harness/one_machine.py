"""The one-machine recipe of docs/one-machine.md, read from the page and run for real.

Every block introduced by *File `<path>`:* in the page is a file of the recipe. ``Recipe``
reads them, moves the recipe's absolute paths into a temporary directory and its ports onto
free ones (``PATHS`` and ``PORTS`` below: each must occur in the page, so a page that stops
matching fails here), writes the files, runs the page's secret-key block and the
``exchange-manage`` wrapper, and starts ``jupyterhub -f <the page's jupyterhub_config.py>``.

What a test machine needs beyond the page is appended to the hub's configuration in
``TEST_ADDITIONS`` and nowhere else: the plugin on ``PYTHONPATH`` (the shared test
virtualenv does not install it), ``--allow-root`` when the tests run as root (CI), a
service account for the test to drive the hub's REST API, and gunicorn's pid file so the
test can stop a leftover service by its pid.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from . import BIN, REPO
from .hub import PROXY, HubAdminAPI
from .live import exchange_environment
from .ports import free_port
from .process import ManagedProcess, alive, stop_pid_file

DOC = REPO / "docs" / "one-machine.md"
SERVICE = "nbgrader-exchange"
FILE_BLOCK = re.compile(
    r"^File `(?P<path>[^`]+)`:\n\n```(?P<lang>\w+)\n(?P<body>.*?)^```", re.M | re.S
)
SHELL_BLOCK = re.compile(r"^```sh\n(?P<body>.*?)^```", re.M | re.S)
PASSWORD = re.compile(r'c\.DummyAuthenticator\.password = "([^"]+)"')
# Nothing of this belongs in the page: see the module docstring.
TEST_ADDITIONS = """
# --- added by tests/harness/one_machine.py (a test machine, not the recipe) ---
import os as _os
c.Spawner.environment["PYTHONPATH"] = {repo!r}
if _os.geteuid() == 0:
    c.Spawner.args = ["--allow-root"]
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
c.JupyterHub.services[0]["command"] += ["--pid", {gunicorn_pid!r}]
if "TMPDIR" in _os.environ:  # the test run's own (conftest.py): the hub passes on no other
    c.Spawner.environment["TMPDIR"] = _os.environ["TMPDIR"]
    c.JupyterHub.services[0].setdefault("environment", {{}})["TMPDIR"] = _os.environ["TMPDIR"]
c.JupyterHub.services.append({{"name": "test-admin", "api_token": {admin_token!r}}})
c.JupyterHub.load_roles.append(
    {{
        "name": "test-admin",
        "scopes": ["admin:users", "admin:servers", "admin:server_state", "tokens", "read:users"],
        "services": ["test-admin"],
    }}
)
"""
# JupyterLab's news and update toasts cover the page in screenshots.
QUIET_LAB = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def doc_files(text: str) -> dict[str, str]:
    """The recipe's files: path -> content, as the page gives them."""
    files = {m["path"]: m["body"] for m in FILE_BLOCK.finditer(text)}
    if not files:
        raise AssertionError(f"{DOC} has no 'File `...`:' blocks")
    return files


class Recipe(HubAdminAPI, ManagedProcess):
    """JupyterHub, the exchange and the users' servers, configured by docs/one-machine.md."""

    kind = "jupyterhub"
    startup_timeout = 120.0
    api_timeout = 60.0

    def __init__(self) -> None:
        if not PROXY.exists():
            raise RuntimeError(f"{PROXY} is missing: run `make hub-proxy`.")
        self.dir = Path(tempfile.mkdtemp(prefix="one-machine-"))
        os.chmod(self.dir, 0o755)
        self.ports = {port: free_port() for port in ("8000", "8001", "8081", "9010")}
        self.paths = {
            # Longest first: "/opt/jupyter/" must not catch "/opt/jupyterhub".
            "/opt/nbgrader-exchange/.venv/bin/": f"{BIN}/",
            "/opt/nbgrader-exchange": str(REPO),
            "/opt/jupyter/bin": str(BIN),
            "/srv/nbgrader-exchange": str(self.dir / "srv-exchange"),
            "/etc/nbgrader-exchange": str(self.dir / "etc-exchange"),
            "/srv/jupyterhub": str(self.dir / "srv-hub"),
            '"/etc/jupyter"': json.dumps(str(self.dir / "etc-jupyter")),
            "/etc/jupyter/": str(self.dir / "etc-jupyter") + "/",
            "/etc/jupyterhub/": str(self.dir / "etc-jupyterhub") + "/",
            "/usr/local/bin/": str(self.dir / "bin") + "/",
        }
        self.text = DOC.read_text()
        self.files = doc_files(self.text)
        self.password = PASSWORD.search(self.files["/etc/jupyterhub/jupyterhub_config.py"])[1]
        self.url = f"http://127.0.0.1:{self.ports['8000']}"
        self.api_url = self.url + "/hub/api"
        self.service_url = f"{self.url}/services/{SERVICE}/"
        self.admin_token = secrets.token_hex(24)
        self.gunicorn_pid = self.dir / "gunicorn.pid"
        self.log_path = self.dir / "jupyterhub.log"
        self.process = None
        self.migrate = True
        self.server_pids: list[int] = []

    # --- the page, moved here ---------------------------------------------------------------

    def local(self, text: str) -> str:
        """The page's text with its paths and ports moved to this test's."""
        for old, new in self.paths.items():
            text = text.replace(old, new)
        for old, new in self.ports.items():
            text = text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
        return text

    def missing_placeholders(self) -> list[str]:
        """Paths and ports the test moves that the page no longer has."""
        wanted = [*self.paths, *(f"127.0.0.1:{port}" for port in self.ports)]
        return [item for item in wanted if item not in self.text]

    def path(self, doc_path: str) -> Path:
        return Path(self.local(doc_path))

    def write_files(self) -> None:
        for doc_path, body in self.files.items():
            target = self.path(doc_path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(self.local(body))
            if body.startswith("#!"):
                target.chmod(0o755)

    def run_secret_block(self) -> None:
        """The page's shell block that makes the data directory and the secret key."""
        blocks = [
            m["body"] for m in SHELL_BLOCK.finditer(self.text) if "token_urlsafe" in m["body"]
        ]
        assert len(blocks) == 1, "the page should make the secret key in exactly one block"
        subprocess.run(["sh", "-e", "-c", self.local(blocks[0])], check=True, timeout=60)

    def manage(self, *args: str) -> str:
        """``exchange-manage <args>``: the page's wrapper script."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("JUPYTERHUB_", "EXCHANGE_", "DATABASE_URL", "SECRET_KEY"))
        }
        result = subprocess.run(
            [str(self.path("/usr/local/bin/exchange-manage")), *args],
            cwd=self.dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(f"exchange-manage {' '.join(args)}:\n{result.stdout}{result.stderr}")
        return result.stdout

    # --- the hub ----------------------------------------------------------------------------

    def start(self, *, wait: bool = True, migrate: bool = True) -> Recipe:
        """Write the page's files, run its secret-key block, migrate (unless told not to),
        start the hub and (unless told not to) wait for it and the service."""
        self.migrate = migrate
        return super().start(wait=wait)

    def prepare(self) -> None:
        self.write_files()
        self.run_secret_block()
        if self.migrate:
            self.manage("migrate", "--noinput")
        config = self.config_path
        config.write_text(
            config.read_text()
            + TEST_ADDITIONS.format(
                repo=str(REPO),
                gunicorn_pid=str(self.gunicorn_pid),
                admin_token=self.admin_token,
            )
        )

    @property
    def config_path(self) -> Path:
        return self.path("/etc/jupyterhub/jupyterhub_config.py")

    def command(self) -> list[str]:
        return [str(BIN / "jupyterhub"), "-f", str(self.config_path)]

    def environment(self) -> dict[str, str]:
        env = exchange_environment(strip=("JUPYTER",))
        # The proxy from npm, as `npm install -g` would put it on PATH.
        env["PATH"] = os.pathsep.join([str(PROXY.parent), env.get("PATH", "")])
        return env

    def workdir(self) -> Path:
        return self.path("/srv/jupyterhub")

    def is_ready(self) -> bool:
        hub = requests.get(self.api_url + "/", timeout=2)
        ready = requests.get(self.service_url + "readyz", timeout=2)
        return hub.status_code == 200 and ready.status_code == 200

    def cleanup(self) -> None:
        # The hub stops its service, proxy and servers; these are for a hub that could not.
        for pid_file in (self.gunicorn_pid, self.path("/srv/jupyterhub") / "jupyterhub-proxy.pid"):
            stop_pid_file(pid_file)
        for pid in self.server_pids:
            if alive(pid):  # pragma: no cover
                os.killpg(pid, signal.SIGTERM)
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- users and their servers ------------------------------------------------------------

    def home(self, name: str) -> Path:
        return self.path(f"/srv/jupyterhub/home/{name}")

    def prepare_home(self, name: str) -> Path:
        home = self.home(name)
        settings = home / ".jupyter" / "lab" / "user-settings"
        for relative, values in QUIET_LAB.items():
            target = settings / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values))
        return home

    def start_servers(self, *names: str) -> dict[str, dict[str, str]]:
        """Have the hub spawn these users' JupyterLab servers (all at once); the environment
        each server runs with, by user name."""
        for name in names:
            self.prepare_home(name)
            created = self.api("POST", f"users/{name}")
            assert created.status_code in (201, 409), created.text
            started = self.api("POST", f"users/{name}/server")
            assert started.status_code in (201, 202, 400), started.text
        environments: dict[str, dict[str, str]] = {}
        deadline = time.monotonic() + 240
        while len(environments) < len(names) and time.monotonic() < deadline:
            for name in set(names) - set(environments):
                server = self.api("GET", f"users/{name}").json().get("servers", {}).get("", {})
                if server.get("ready"):
                    pid = int(server["state"]["pid"])
                    self.server_pids.append(pid)
                    environments[name] = self.process_environment(pid)
            time.sleep(0.5)
        if len(environments) < len(names):
            raise RuntimeError(f"servers did not start:\n{self.log()[-8000:]}")
        return environments

    @staticmethod
    def process_environment(pid: int) -> dict[str, str]:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
        pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
        return {key.decode(): value.decode() for key, value in pairs}
