"""Real JupyterLab servers for the browser tests: one per user, each with its own HOME.

Each user gets a home directory with its own Jupyter config, data and runtime directories
and an ``nbgrader_config.py`` in the config directory, the way a single-user image puts one
in ``/etc/jupyter``. The server listens on 127.0.0.1 on a free port with a random token and
is stopped through its own process group.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from .forkserver import run_nbgrader
from .ports import free_port
from .process import ManagedProcess

# JupyterLab asks new users whether to fetch Jupyter news and checks for updates: both
# show a toast over the page, and neither belongs in a test.
QUIET_LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


@dataclass
class LabUser(ManagedProcess):
    """One person's JupyterLab: a HOME, an nbgrader config, and (once started) a server."""

    name: str
    home: Path
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    token: str = ""
    process: subprocess.Popen | None = None
    kind = "JupyterLab"
    startup_timeout = 90.0
    stop_timeout = 15.0
    stop_group = True  # the server and its kernels

    @property
    def config_dir(self) -> Path:
        return self.home / ".jupyter"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def lab_url(self) -> str:
        return f"{self.url}/lab?token={self.token}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def env(self) -> dict[str, str]:
        """The environment this user's server and nbgrader commands run with."""
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("JUPYTER", "NBGRADER_EXCHANGE", "IPYTHON"))
        }
        env.update(
            HOME=str(self.home),
            USER=self.name,
            LOGNAME=self.name,
            JUPYTER_CONFIG_DIR=str(self.config_dir),
            JUPYTER_DATA_DIR=str(self.home / ".local/share/jupyter"),
            JUPYTER_RUNTIME_DIR=str(self.home / ".local/share/jupyter/runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(self.config_dir / "lab/user-settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(self.config_dir / "lab/workspaces"),
            IPYTHONDIR=str(self.home / ".ipython"),
            PYTHONUNBUFFERED="1",
            # nbgrader runs `alembic` and kernels by name: the test's own environment first.
            PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        )
        env.update(self.extra_env)
        return env

    def write_nbgrader_config(self, text: str) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        (self.config_dir / "nbgrader_config.py").write_text(text)

    def prepare(self) -> None:
        """A HOME with quiet Lab settings, a free port and a new token."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        settings_dir = self.config_dir / "lab/user-settings"
        for relative, values in QUIET_LAB_SETTINGS.items():
            path = settings_dir / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        self.port = free_port()
        self.token = secrets.token_hex(16)

    def command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.home}",
            "--FileContentsManager.delete_to_trash=False",
        ]
        if os.geteuid() == 0:  # CI machines run everything as root
            command.append("--allow-root")
        return command

    def environment(self) -> dict[str, str]:
        return self.env()

    def workdir(self) -> Path:
        return self.home

    def is_ready(self) -> bool:
        status_url = f"{self.url}/api/status?token={self.token}"
        with urllib.request.urlopen(status_url, timeout=2) as response:
            return response.status == 200

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        """Run a command as this user (same HOME and config as the server)."""
        return subprocess.run(
            args,
            cwd=cwd or self.home,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )

    def nbgrader(self, *args: str, cwd: Path | None = None) -> str:
        """Run the real ``nbgrader`` CLI as this user; fail loudly with its output."""
        status, output = run_nbgrader(list(args), env=self.env(), cwd=cwd or self.home)
        if status != 0:
            raise AssertionError(f"nbgrader {' '.join(args)} failed for {self.name}:\n{output}")
        return output
