"""A real JupyterHub for tests, with the exchange registered as a hub-managed service.

    with JupyterHub() as hub:
        token = hub.create_token("sam")
        requests.get(hub.service_url + "api/v1/me", headers={"Authorization": f"token {token}"})

Everything binds 127.0.0.1 on free ports: the proxy's public port (``hub.url``), the proxy's
API, the hub itself and the exchange (gunicorn, started by the hub from the service's
``command``, reached through the proxy at ``/services/<name>/``, the prefix not stripped).
The hub's database, cookie secret, the exchange's SQLite database and files live in one
temporary directory. DummyAuthenticator logs anyone in with ``hub.password``. Single-user
servers are a tiny stand-in process that records the environment the hub gave it, so a
test can see what a user's server's ``JUPYTERHUB_API_TOKEN`` is allowed to do.

The hub is stopped by its pid (TERM; it stops the proxy, the service and the servers it
started); whatever is still alive afterwards is stopped by the pid it wrote down.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from . import BIN, REPO
from .live import KEEP_ALIVE, exchange_environment, migrated_sqlite, run_manage, worker_options
from .ports import free_port
from .process import ManagedProcess, stop_pid_file

PROXY = REPO / "node_modules" / ".bin" / "configurable-http-proxy"
SERVICE_NAME = "nbgrader-exchange"

# The stand-in single-user server: writes its environment down, answers every request.
FAKE_SERVER = r"""
import json, os, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse
with open(os.path.join(sys.argv[1], os.environ["JUPYTERHUB_USER"] + ".env.json"), "w") as f:
    json.dump({k: v for k, v in os.environ.items() if k.startswith("JUPYTERHUB_")}, f)
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"single-user server stand-in")
    def log_message(self, *args):
        pass
url = urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
ThreadingHTTPServer((url.hostname, url.port), Handler).serve_forever()
"""


class HubAdminAPI:
    """The hub's REST API as the test's admin service (``api_url``, ``admin_token``)."""

    api_url: str
    admin_token: str
    api_timeout: float = 30

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"token {self.admin_token}"}
        return requests.request(
            method,
            f"{self.api_url}/{path.lstrip('/')}",
            headers=headers,
            timeout=self.api_timeout,
            **kwargs,
        )


class JupyterHub(HubAdminAPI, ManagedProcess):
    """JupyterHub + configurable-http-proxy + the exchange as a hub-managed service."""

    kind = "jupyterhub"
    password = "hub-test-password"

    def __init__(
        self,
        *,
        exchange_env: dict[str, str] | None = None,
        user_scopes: list[str] | None = None,
        service_scopes: list[str] | None = None,
        server_token_scopes: list[str] | None = None,
        server_scopes: list[str] | None = None,
        admin_users: tuple[str, ...] = ("ada",),
        groups: dict[str, list[str]] | None = None,
        startup_timeout: float = 90.0,
    ) -> None:
        if not PROXY.exists():
            raise RuntimeError(
                f"{PROXY} is missing: run `make hub-proxy` (npm configurable-http-proxy)."
            )
        self.dir = Path(tempfile.mkdtemp(prefix="exchange-hub-"))
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.hub_port = free_port()
        self.proxy_api_port = free_port()
        self.service_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/hub/api"
        self.service_prefix = f"/services/{SERVICE_NAME}/"
        self.service_url = self.url + self.service_prefix
        self.admin_token = secrets.token_hex(24)
        self.service_token = secrets.token_hex(24)
        self.startup_timeout = startup_timeout
        self.exchange_data = self.dir / "exchange"
        self.exchange_data.mkdir()
        self.servers_dir = self.dir / "servers"
        self.homes_dir = self.dir / "home"
        self.servers_dir.mkdir()
        self.exchange_env = {
            "PATH": os.environ.get("PATH", ""),
            # The test run's own temp directory (conftest.py): the hub passes on no other.
            "TMPDIR": tempfile.gettempdir(),
            "EXCHANGE_DATA_DIR": str(self.exchange_data),
            "DATABASE_URL": f"sqlite:///{self.exchange_data / 'db.sqlite3'}",
            "SECRET_KEY": "hub-test-" + self.admin_token,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DJANGO_SETTINGS_MODULE": "exchange_site.settings",
            "PYTHONUNBUFFERED": "1",
            **(exchange_env or {}),
        }
        self.user_scopes = user_scopes
        self.service_scopes = service_scopes
        self.server_token_scopes = server_token_scopes
        self.server_scopes = server_scopes
        self.admin_users = admin_users
        self.groups = groups or {}
        self.process = None
        self.log_path = self.dir / "jupyterhub.log"
        self.config_file = self.dir / "jupyterhub_config.py"

    # --- configuration --------------------------------------------------------------------

    def _config(self) -> str:
        fake_server = self.dir / "fake_server.py"
        fake_server.write_text(FAKE_SERVER)
        service = {
            "name": SERVICE_NAME,
            "url": f"http://127.0.0.1:{self.service_port}",
            "command": [
                str(BIN / "gunicorn"),
                "exchange_site.wsgi",
                "--chdir",
                str(REPO),
                "--bind",
                f"127.0.0.1:{self.service_port}",
                *worker_options(2, 4),
                "--keep-alive",
                str(KEEP_ALIVE),
                "--pid",
                str(self.dir / "gunicorn.pid"),
                "--access-logfile",
                "-",
            ],
            "cwd": str(REPO),
            "api_token": self.service_token,
            "environment": self.exchange_env,
            "oauth_no_confirm": True,
        }
        roles: list[dict[str, Any]] = [
            {
                "name": "test-admin",
                "scopes": ["admin:users", "admin:groups", "tokens", "admin:servers"],
                "services": ["test-admin"],
            },
        ]
        if self.user_scopes is not None:
            roles.append({"name": "user", "scopes": self.user_scopes})
        if self.server_scopes is not None:
            # The server role: what every single-user server's own token may do.
            roles.append({"name": "server", "scopes": self.server_scopes})
        if self.service_scopes is not None:
            roles.append(
                {
                    "name": "exchange-service",
                    "scopes": self.service_scopes,
                    "services": [SERVICE_NAME],
                }
            )
        config = {
            "ip": "127.0.0.1",
            "port": self.port,
            "hub_ip": "127.0.0.1",
            "hub_port": self.hub_port,
            "proxy_api": f"http://127.0.0.1:{self.proxy_api_port}",
            "proxy_command": [str(PROXY)],
            "proxy_pid_file": str(self.dir / "proxy.pid"),
            "db_url": f"sqlite:///{self.dir / 'jupyterhub.sqlite'}",
            "cookie_secret_file": str(self.dir / "cookie_secret"),
            "password": self.password,
            "admin_users": list(self.admin_users),
            "services": [service, {"name": "test-admin", "api_token": self.admin_token}],
            "roles": roles,
            "groups": self.groups,
            "fake_server": [sys.executable, str(fake_server), str(self.servers_dir)],
            # The simple spawner's default home is /tmp/{username}, outside the run's own
            # directories; here it is removed with the hub.
            "home_dir_template": str(self.homes_dir / "{username}"),
            "server_token_scopes": self.server_token_scopes,
        }
        return CONFIG_TEMPLATE.format(config=json.dumps(config))

    # --- the process ----------------------------------------------------------------------

    def manage(self, *args: str) -> str:
        """``manage.py <args>`` as the service (its database, its hub token); the output."""
        hub_env = {
            "JUPYTERHUB_API_URL": f"http://127.0.0.1:{self.hub_port}/hub/api",
            "JUPYTERHUB_API_TOKEN": self.service_token,
        }
        return run_manage({**os.environ, **self.exchange_env, **hub_env}, *args).stdout

    def prepare(self) -> None:
        database = self.exchange_data / "db.sqlite3"
        if self.exchange_env["DATABASE_URL"] == f"sqlite:///{database}":
            migrated_sqlite(database, lambda: self.manage("migrate", "--noinput"))
        else:
            self.manage("migrate", "--noinput")
        self.config_file.write_text(self._config())

    def command(self) -> list[str]:
        return [str(BIN / "jupyterhub"), "-f", str(self.config_file)]

    def environment(self) -> dict[str, str]:
        return exchange_environment()

    def workdir(self) -> Path:
        return self.dir

    def is_ready(self) -> bool:
        hub = requests.get(f"{self.api_url}/", timeout=2)
        service = requests.get(self.service_url + "healthz", timeout=2)
        return hub.status_code == 200 and service.status_code == 200

    def cleanup(self) -> None:
        """The hub stops the proxy and the service it started; these are for a hub that
        could not."""
        for pid_file in ("gunicorn.pid", "proxy.pid"):
            stop_pid_file(self.dir / pid_file)
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- the hub's REST API, as its admin -------------------------------------------------

    def create_user(self, name: str) -> None:
        response = self.api("POST", f"users/{name}")
        if response.status_code not in (201, 409):
            response.raise_for_status()

    def create_token(self, name: str, scopes: list[str] | None = None) -> str:
        """A new API token of the user (made on first use), as the hub's token page makes."""
        self.create_user(name)
        body: dict[str, Any] = {"note": "test"}
        if scopes is not None:
            body["scopes"] = scopes
        response = self.api("POST", f"users/{name}/tokens", json=body)
        response.raise_for_status()
        return response.json()["token"]

    def revoke_token(self, name: str, token: str) -> None:
        """Revoke one of the user's tokens in the hub."""
        whoami = requests.get(
            f"{self.api_url}/user", headers={"Authorization": f"token {token}"}, timeout=30
        )
        whoami.raise_for_status()
        token_id = whoami.json()["token_id"]
        self.api("DELETE", f"users/{name}/tokens/{token_id}").raise_for_status()

    def start_server(self, name: str) -> dict[str, str]:
        """Start the user's (stand-in) server; the JUPYTERHUB_* environment it was given."""
        self.create_user(name)
        response = self.api("POST", f"users/{name}/server")
        if response.status_code not in (201, 202, 400):
            response.raise_for_status()
        env_file = self.servers_dir / f"{name}.env.json"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready = self.api("GET", f"users/{name}").json().get("servers", {}).get("", {})
            if ready.get("ready") and env_file.exists():
                return json.loads(env_file.read_text())
            time.sleep(0.3)
        raise RuntimeError(f"{name}'s server did not start:\n{self.log()}")

    def set_groups(self, name: str, groups: list[str]) -> None:
        """Put the user in exactly these hub groups (the groups are made when missing)."""
        self.create_user(name)
        for group in groups:
            self.api("POST", f"groups/{group}")
            self.api("POST", f"groups/{group}/users", json={"users": [name]}).raise_for_status()
        for group in self.api("GET", "groups").json():
            if group["name"] not in groups and name in group["users"]:
                self.api(
                    "DELETE", f"groups/{group['name']}/users", json={"users": [name]}
                ).raise_for_status()


CONFIG_TEMPLATE = '''
"""JupyterHub configuration written by tests/harness/hub.py."""
import json

settings = json.loads({config!r})
c = get_config()  # noqa: F821
c.JupyterHub.ip = settings["ip"]
c.JupyterHub.port = settings["port"]
c.JupyterHub.hub_ip = settings["hub_ip"]
c.JupyterHub.hub_port = settings["hub_port"]
c.ConfigurableHTTPProxy.api_url = settings["proxy_api"]
c.ConfigurableHTTPProxy.command = settings["proxy_command"]
c.ConfigurableHTTPProxy.pid_file = settings["proxy_pid_file"]
c.JupyterHub.db_url = settings["db_url"]
c.JupyterHub.cookie_secret_file = settings["cookie_secret_file"]
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = settings["password"]
c.Authenticator.allow_all = True
c.Authenticator.admin_users = set(settings["admin_users"])
c.JupyterHub.services = settings["services"]
c.JupyterHub.load_roles = settings["roles"]
c.JupyterHub.load_groups = settings["groups"]
c.JupyterHub.spawner_class = "simple"
c.Spawner.cmd = settings["fake_server"]
c.SimpleLocalProcessSpawner.home_dir_template = settings["home_dir_template"]
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 60
if settings["server_token_scopes"] is not None:
    c.Spawner.server_token_scopes = settings["server_token_scopes"]
'''
