"""The image's steps, run here without a container engine.

The build context is assembled as Docker would (the .dockerignore allow-list), the
Dockerfile's collectstatic step runs in it, and then the chart's own migration command and
server command run from it with the environment the chart renders. The probes' requests must
succeed, and nothing may be written outside /data and /tmp: the pod's root filesystem is
read-only.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from tests.harness import REPO
from tests.harness.ports import free_port

from .helpers import by_kind, manifests, one, pod_containers, values_file
from .test_dockerfile import instructions

# Generous: the first request loads Django in the worker, and CI machines are shared.
TIMEOUT = 30

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


def _image_env(path: str) -> dict[str, str]:
    """The Dockerfile's ENV, ``$PATH`` standing for ``path`` (the image's own PATH)."""
    env = {}
    for keyword, arguments in instructions():
        if keyword == "ENV":
            for pair in arguments.split():
                name, value = pair.split("=", 1)
                env[name] = value.replace("$PATH", path)
    return env


def _container_env(
    container: dict[str, Any], data: Path, secrets: dict[str, str] | None = None
) -> dict[str, str]:
    """The container's environment with the Secret's values filled in, /data moved to data."""
    secrets = secrets or SECRETS
    env = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            env[item["name"]] = secrets[item["valueFrom"]["secretKeyRef"]["key"]]
    assert env.pop("EXCHANGE_DATA_DIR") == "/data"
    env["EXCHANGE_DATA_DIR"] = str(data)
    return env


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in root.rglob("*")
        if path.is_file()
    }


@pytest.fixture
def image(tmp_path):
    """The build context with the Dockerfile's RUN steps after the COPY applied to it."""
    app, build_tmp = tmp_path / "app", tmp_path / "build-tmp"
    app.mkdir()
    build_tmp.mkdir()
    assemble_build_context(app)
    # The image's virtualenv is this one (same requirements.txt).
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    base_env = {"PATH": path, "HOME": str(app), **_image_env(path)}
    runs = [args for keyword, args in instructions() if keyword == "RUN"]
    build_step = next(run for run in runs if "collectstatic" in run)
    build_step = build_step.replace("/tmp/", f"{build_tmp}/").replace("/app", str(app))
    subprocess.run(["sh", "-c", build_step], cwd=app, env=base_env, check=True, capture_output=True)
    assert (app / "staticfiles" / "admin").is_dir()
    return app, base_env


def _run_to_completion(container: dict[str, Any], app: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        container["command"], cwd=app, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@contextmanager
def serving(server: dict[str, Any], app: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """The chart's server command on a free 127.0.0.1 port, ready; yields its base URL."""
    port = free_port()
    command = [
        f"--bind=127.0.0.1:{port}" if arg.startswith("--bind=") else arg
        for arg in server["command"]
    ]
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=app, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(
                    f"{base}/healthz", headers={"Host": _probe_host(server)}, timeout=TIMEOUT
                )
                break
            except (requests.ConnectionError, requests.Timeout):
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def _probe_host(server: dict[str, Any]) -> str:
    headers = server["readinessProbe"]["httpGet"]["httpHeaders"]
    return {header["name"]: header["value"] for header in headers}["Host"]


def _ready(base: str, server: dict[str, Any]) -> requests.Response:
    return requests.get(f"{base}/readyz", headers={"Host": _probe_host(server)}, timeout=TIMEOUT)


def test_image_migrates_serves_and_writes_only_to_data_and_tmp(image, tmp_path):
    app, base_env = image
    data, tmp = tmp_path / "data", tmp_path / "tmp"
    data.mkdir()
    tmp.mkdir()
    before = _snapshot(app)
    deployment = one(manifests({"gunicorn": {"workers": 1, "threads": 2}}), "Deployment")
    init, server = pod_containers(deployment)
    env = {**base_env, "TMPDIR": str(tmp)}

    _run_to_completion(init, app, {**env, **_container_env(init, data)})
    assert (data / "db.sqlite3").exists()

    server_env = {**env, **_container_env(server, data)}
    with serving(server, app, server_env, tmp_path / "server.log") as base:
        probe_host = _probe_host(server)
        ready = _ready(base, server)
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ok", "database": "ok", "storage": "ok"}
        alive = requests.get(f"{base}/healthz", headers={"Host": probe_host}, timeout=TIMEOUT)
        assert alive.status_code == 200
        in_cluster = requests.get(
            f"{base}/healthz",
            headers={"Host": "nbgrader-exchange.jhub.svc.cluster.local:8000"},
            timeout=TIMEOUT,
        )
        assert in_cluster.status_code == 200
        # Through the hub's proxy, which forwards the service prefix as it is.
        proxied = requests.get(
            f"{base}/services/nbgrader-exchange/healthz",
            headers={"Host": probe_host},
            timeout=TIMEOUT,
        )
        assert proxied.status_code == 200
        stranger = requests.get(
            f"{base}/healthz", headers={"Host": "evil.example"}, timeout=TIMEOUT
        )
        assert stranger.status_code == 400
        # Collected at build time, served by whitenoise under the service prefix.
        static = requests.get(
            f"{base}/services/nbgrader-exchange/static/admin/css/base.css",
            headers={"Host": probe_host},
            timeout=TIMEOUT,
        )
        assert static.status_code == 200

    assert _snapshot(app) == before, "the server wrote outside /data and /tmp"


@pytest.fixture
def empty_postgresql_database():
    """A database of its own on the suite's PostgreSQL server, dropped afterwards."""
    import psycopg

    url = urlsplit(os.environ["DATABASE_URL"])
    name = f"chart_{uuid.uuid4().hex[:12]}"
    admin = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(url._replace(path=f"/{name}"))
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


@pytest.mark.postgres_only
def test_replicated_values_run_two_replicas_on_postgresql_and_s3(
    image, tmp_path, seaweedfs, empty_postgresql_database
):
    """The replicated values file, pointed at real servers: one migration Job, two replicas."""
    app, base_env = image
    from tests.harness.seaweedfs import ACCESS_KEY, SECRET_KEY

    bucket = seaweedfs.create_bucket(f"chart-{uuid.uuid4().hex[:8]}")
    values = values_file("replicated-postgresql-s3")
    values["replicas"] = 2
    values["gunicorn"] = {"workers": 1, "threads": 2}
    values["database"]["url"] = empty_postgresql_database
    values["storage"]["s3"].update(
        bucket=bucket,
        endpointUrl=seaweedfs.endpoint,
        accessKeyId=ACCESS_KEY,
        secretAccessKey=SECRET_KEY,
    )
    objects = manifests(values)
    secrets = {}
    for secret in by_kind(objects, "Secret"):
        secrets.update(
            {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
        )
    (job,) = pod_containers(one(objects, "Job"))
    (server,) = pod_containers(one(objects, "Deployment"))
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**base_env, "TMPDIR": str(tmp)}

    _run_to_completion(job, app, {**env, **_container_env(job, tmp_path / "job", secrets)})

    replicas = []
    with ExitStack() as stack:
        for number in range(2):
            data = tmp_path / f"replica-{number}"
            data.mkdir()
            replica_env = {**env, **_container_env(server, data, secrets)}
            log = tmp_path / f"replica-{number}.log"
            replicas.append(stack.enter_context(serving(server, app, replica_env, log)))
        for base in replicas:
            ready = _ready(base, server)
            assert ready.status_code == 200, ready.text
            assert ready.json() == {"status": "ok", "database": "ok", "storage": "ok"}
    # Nothing in the pods' own /data: the state is all in PostgreSQL and the bucket.
    assert not any((tmp_path / "replica-0").iterdir())
