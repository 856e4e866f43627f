"""The image's steps, run here without a container engine.

The build context is assembled as Docker would (the .dockerignore allow-list), the
Dockerfile's collectstatic step runs in it, and then the chart's own migration command and
server command run from it with the environment the chart renders. The probes' requests must
succeed, and nothing may be written outside /data and /tmp: the pod's root filesystem is
read-only.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from .helpers import REPO, manifests, one, pod_containers
from .test_dockerfile import instructions

SECRETS = {
    "SECRET_KEY": "test-secret-key-" + "x" * 40,
    "JUPYTERHUB_API_TOKEN": "test-hub-token",
}


def _dockerignore_regexes() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        regex = ""
        index = 0
        while index < len(pattern):
            if pattern.startswith("**/", index):
                regex += "(?:.*/)?"
                index += 3
            elif pattern[index] == "*":
                regex += "[^/]*"
                index += 1
            elif pattern[index] == "?":
                regex += "[^/]"
                index += 1
            else:
                regex += re.escape(pattern[index])
                index += 1
        rules.append((negated, re.compile(regex)))
    return rules


def assemble_build_context(destination: Path) -> None:
    """Copy the files Docker would send: a rule matches a path or any of its parents."""
    rules = _dockerignore_regexes()
    for path in REPO.rglob("*"):
        if not path.is_file() or ".git" in path.relative_to(REPO).parts[:1]:
            continue
        relative = path.relative_to(REPO).as_posix()
        parts = relative.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        excluded = False
        for negated, regex in rules:
            if any(regex.fullmatch(prefix) for prefix in prefixes):
                excluded = not negated
        if not excluded:
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def _image_env() -> dict[str, str]:
    env = {}
    for keyword, arguments in instructions():
        if keyword == "ENV":
            env.update(dict(pair.split("=", 1) for pair in arguments.split()))
    return env


def _container_env(container: dict[str, Any], data: Path) -> dict[str, str]:
    env = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            env[item["name"]] = SECRETS[item["valueFrom"]["secretKeyRef"]["key"]]
    assert env.pop("EXCHANGE_DATA_DIR") == "/data"
    env["EXCHANGE_DATA_DIR"] = str(data)
    return env


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in root.rglob("*")
        if path.is_file()
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def image(tmp_path):
    """The build context with the Dockerfile's RUN steps after the COPY applied to it."""
    app, build_tmp = tmp_path / "app", tmp_path / "build-tmp"
    app.mkdir()
    build_tmp.mkdir()
    assemble_build_context(app)
    base_env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "HOME": str(app),
        **_image_env(),
    }
    runs = [args for keyword, args in instructions() if keyword == "RUN"]
    build_step = next(run for run in runs if "collectstatic" in run)
    build_step = build_step.replace("/tmp/", f"{build_tmp}/").replace("/app", str(app))
    subprocess.run(["sh", "-c", build_step], cwd=app, env=base_env, check=True, capture_output=True)
    assert (app / "staticfiles" / "admin").is_dir()
    return app, base_env


def test_image_migrates_serves_and_writes_only_to_data_and_tmp(image, tmp_path):
    app, base_env = image
    data, tmp = tmp_path / "data", tmp_path / "tmp"
    data.mkdir()
    tmp.mkdir()
    before = _snapshot(app)
    deployment = one(manifests({"gunicorn": {"workers": 1, "threads": 2}}), "Deployment")
    init, server = pod_containers(deployment)
    env = {**base_env, "TMPDIR": str(tmp)}

    migrate = subprocess.run(
        init["command"],
        cwd=app,
        env={**env, **_container_env(init, data)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    assert (data / "db.sqlite3").exists()

    port = _free_port()
    command = [
        f"--bind=127.0.0.1:{port}" if arg.startswith("--bind=") else arg
        for arg in server["command"]
    ]
    log = tmp_path / "server.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            command,
            cwd=app,
            env={**env, **_container_env(server, data)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        probe_host = server["readinessProbe"]["httpGet"]["httpHeaders"][0]["value"]
        deadline = time.monotonic() + 30
        while True:
            try:
                ready = requests.get(f"{base}/readyz", headers={"Host": probe_host}, timeout=5)
                break
            except requests.ConnectionError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ok", "database": "ok", "storage": "ok"}
        alive = requests.get(f"{base}/healthz", headers={"Host": probe_host}, timeout=5)
        assert alive.status_code == 200
        in_cluster = requests.get(
            f"{base}/healthz",
            headers={"Host": "nbgrader-exchange.jhub.svc.cluster.local:8000"},
            timeout=5,
        )
        assert in_cluster.status_code == 200
        stranger = requests.get(f"{base}/healthz", headers={"Host": "evil.example"}, timeout=5)
        assert stranger.status_code == 400
        # Collected at build time, served by whitenoise.
        static = requests.get(
            f"{base}/static/admin/css/base.css", headers={"Host": probe_host}, timeout=5
        )
        assert static.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)

    assert _snapshot(app) == before, "the server wrote outside /data and /tmp"
