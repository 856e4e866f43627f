"""The server image itself, built by `make image` and run with podman as the chart runs it.

Runs only when asked: `make test-image` sets EXCHANGE_TEST_IMAGE to the image's repository
(e.g. ``localhost/nbgrader-exchange``). The chart is rendered with that repository, in its
two single-replica modes (SQLite, migrated by the init container; PostgreSQL, migrated by the
Job), and the pods it describes are reproduced: the image and tag it names (its appVersion),
the user and group, a read-only root filesystem with every capability dropped, emptyDirs as
tmpfs, the PVC as a podman volume, the containers' environment with the rendered Secrets'
values; the migration container runs to completion first, then the server's command. Then
the plugin's own client (nbgrader_exchange.client) drives a release, fetch, submit and
collect against the container, and ``check --deploy`` runs in it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import tomllib

from nbgrader_exchange.client import ExchangeClient
from nbgrader_exchange.files import entry_from_bytes
from tests.chart.helpers import by_kind, manifests, one
from tests.harness import REPO
from tests.harness.ports import free_port

IMAGE_REPOSITORY = os.environ.get("EXCHANGE_TEST_IMAGE", "")
PODMAN = REPO / "scripts" / "image" / "podman"
ARTIFACTS = REPO / "test-artifacts"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
# The host name the test reaches the container by: one more entry in the chart's allowedHosts.
HOST = "127.0.0.1"

pytestmark = pytest.mark.skipif(
    not IMAGE_REPOSITORY,
    reason="runs only with EXCHANGE_TEST_IMAGE set to a built image's repository "
    "(`make test-image` builds the image and sets it)",
)


def podman(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(PODMAN), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check:
        assert result.returncode == 0, f"podman {' '.join(args)}: {result.stdout}{result.stderr}"
    return result


def resolved_env(container: dict[str, Any], secrets: dict[tuple[str, str], str]) -> list[str]:
    """The container's environment as ``--env`` options, secretKeyRefs read from ``secrets``
    ({(Secret name, key): value})."""
    options = []
    for item in container["env"]:
        if "value" in item:
            value = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            value = secrets[(ref["name"], ref["key"])]
        options += ["--env", f"{item['name']}={value}"]
    return options


def pod_options(pod: dict[str, Any], container: dict[str, Any], volume: str) -> list[str]:
    """podman run options for what the pod spec asks of its runtime."""
    pod_security = pod["securityContext"]
    security = container["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    options = [
        "--user",
        f"{pod_security['runAsUser']}:{pod_security['runAsGroup']}",
        "--group-add",
        str(pod_security["fsGroup"]),
        "--read-only",
        # The root stays read-only; podman's own writable /run, /dev/shm... are not wanted.
        "--read-only-tmpfs=false",
        "--security-opt",
        "no-new-privileges",
    ]
    for capability in security["capabilities"]["drop"]:
        options += ["--cap-drop", capability]
    volumes = {item["name"]: item for item in pod["volumes"]}
    for mount in container.get("volumeMounts", []):
        source = volumes[mount["name"]]
        if "emptyDir" in source:
            size = source["emptyDir"].get("sizeLimit", "")
            limit = f",size={size.replace('Gi', 'g').replace('Mi', 'm')}" if size else ""
            options += ["--tmpfs", f"{mount['mountPath']}:rw,mode=1777{limit}"]
        else:
            assert "persistentVolumeClaim" in source
            options += ["--volume", f"{volume}:{mount['mountPath']}"]
    return options


@dataclass
class Running:
    """The server container, where the test reaches it, and what the chart rendered."""

    name: str
    url: str
    image: str
    server: dict[str, Any]
    database: str

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """``manage.py`` inside the running container (its user, environment, read-only root)."""
        return podman("exec", self.name, "python", "manage.py", *args, check=check)


def run_to_completion(container: dict[str, Any], options: list[str]) -> subprocess.CompletedProcess:
    """One of the chart's migration containers (init container or Job), run until it exits."""
    return podman(
        "run",
        "--rm",
        *options,
        "--entrypoint",
        container["command"][0],
        container["image"],
        *container["command"][1:],
    )


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def container(request) -> Iterator[Running]:
    """The chart's pod in one of its two single-replica modes.

    ``sqlite``: the default values; the Deployment's migrate init container runs first, on the
    data volume. ``postgresql``: ``database.type=postgresql`` pointed at a throwaway
    PostgreSQL on this machine (reached from the container through slirp4netns's gateway to
    the host's loopback); the chart's migration Job runs first, with its own short-lived Secret.
    """
    values: dict[str, Any] = {"image": {"repository": IMAGE_REPOSITORY}, "allowedHosts": [HOST]}
    network: list[str] = []
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_server").create_database("image")
        # The container sees the host's 127.0.0.1 as slirp4netns's 10.0.2.2.
        values["database"] = {"type": "postgresql", "url": url.replace("@127.0.0.1:", "@10.0.2.2:")}
        network = ["--network", "slirp4netns:allow_host_loopback=true"]
    objects = manifests(values)
    secrets = {
        (secret["metadata"]["name"], key): base64.b64decode(value).decode()
        for secret in by_kind(objects, "Secret")
        for key, value in secret["data"].items()
    }
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    if request.param == "sqlite":
        assert not by_kind(objects, "Job")
        migration_pod = pod
        (migrate,) = pod["initContainers"]
    else:
        assert "initContainers" not in pod
        migration_pod = one(objects, "Job")["spec"]["template"]["spec"]
        (migrate,) = migration_pod["containers"]
    assert migrate["image"] == server["image"] == f"{IMAGE_REPOSITORY}:{VERSION}"
    suffix = uuid.uuid4().hex[:8]
    volume, name = f"exchange-test-data-{suffix}", f"exchange-test-{suffix}"
    podman("volume", "create", volume)
    try:
        migrated = run_to_completion(
            migrate,
            [
                *pod_options(migration_pod, migrate, volume),
                *network,
                *resolved_env(migrate, secrets),
            ],
        )
        assert "Applying courses." in migrated.stdout, migrated.stdout + migrated.stderr
        port = free_port()
        podman(
            "run",
            "--detach",
            "--name",
            name,
            *pod_options(pod, server, volume),
            *network,
            *resolved_env(server, secrets),
            "--publish",
            f"{HOST}:{port}:{server['ports'][0]['containerPort']}",
            "--entrypoint",
            server["command"][0],
            server["image"],
            *server["command"][1:],
        )
        running = Running(
            name=name,
            url=f"http://{HOST}:{port}",
            image=server["image"],
            server=server,
            database=request.param,
        )
        try:
            wait_ready(running)
            yield running
        finally:
            ARTIFACTS.mkdir(exist_ok=True)
            logs = podman("logs", name, check=False)
            log = ARTIFACTS / f"image-server-{request.param}.log"
            log.write_text(logs.stdout + logs.stderr)
            podman("rm", "--force", "--time", "10", name, check=False)
    finally:
        podman("volume", "rm", "--force", volume, check=False)


def wait_ready(running: Running) -> None:
    """Poll the readiness probe's path, as the kubelet would, until it answers 200."""
    path = running.server["readinessProbe"]["httpGet"]["path"]
    deadline = time.monotonic() + 180
    last = "no answer"
    while time.monotonic() < deadline:
        state = podman("inspect", "--format", "{{.State.Status}}", running.name).stdout.strip()
        if state != "running":
            logs = podman("logs", running.name, check=False)
            pytest.fail(f"the server container is {state}:\n{logs.stdout}{logs.stderr}")
        try:
            answer = requests.get(f"{running.url}{path}", timeout=10)
            if answer.status_code == 200:
                return
            last = f"{answer.status_code} {answer.text[:200]}"
        except requests.RequestException as exc:
            last = str(exc)
        time.sleep(0.5)
    pytest.fail(f"{path} never answered 200 within 180 s: {last}")


def test_serves_ready_as_uid_10001_on_a_read_only_root(container):
    ready = requests.get(f"{container.url}/readyz", timeout=30)
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "database": "ok", "storage": "ok"}
    health = requests.get(f"{container.url}/healthz", timeout=30).json()
    assert health == {"status": "ok", "version": VERSION}
    # Every process in the container (gunicorn's master and workers) runs as 10001:10001.
    status = podman(
        "exec", container.name, "sh", "-c", "cat /proc/[0-9]*/status"
    ).stdout.splitlines()
    uids = {line.split()[1] for line in status if line.startswith("Uid:")}
    gids = {line.split()[1] for line in status if line.startswith("Gid:")}
    assert (uids, gids) == ({"10001"}, {"10001"}), status
    # The root filesystem refuses writes; /tmp and /data take them.
    refused = podman("exec", container.name, "touch", "/app/written", check=False)
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr
    for writable in ("/tmp", "/data"):
        podman("exec", container.name, "touch", f"{writable}/written")
    # SQLite: the migrate init container left the database on the volume the server uses.
    on_volume = podman("exec", container.name, "ls", "/data").stdout.split()
    assert ("db.sqlite3" in on_volume) == (container.database == "sqlite")


def test_image_is_labelled_and_tagged_with_the_project_version():
    image = f"{IMAGE_REPOSITORY}:{VERSION}"
    labels = json.loads(podman("image", "inspect", "--format", "{{json .Labels}}", image).stdout)
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.licenses"] == "BSD-3-Clause"


def test_release_fetch_submit_collect_through_the_plugin_client(container, tmp_path):
    def token(username: str, *options: str) -> str:
        result = container.manage("create_api_token", "--create-user", *options, username)
        return result.stdout.strip().splitlines()[-1]

    admin = ExchangeClient(container.url, token("it-admin", "--staff"))
    teacher = ExchangeClient(container.url, token("teacher"))
    student = ExchangeClient(container.url, token("student"))
    course = f"img{uuid.uuid4().hex[:6]}"
    admin.post("courses", {"course_id": course, "instructors": ["teacher"]})
    admin.request(
        "PUT",
        f"courses/{course}/members/student",
        what="add the student",
        json_body={"role": "student"},
    )
    assignment = f"courses/{course}/assignments/ps1"

    released = {"ps1.ipynb": b'{"cells": [], "nbformat": 4}\n', "data/table.csv": b"a,b\n1,2\n"}
    teacher.upload_bundle(
        f"{assignment}/release",
        [entry_from_bytes(path, data) for path, data in released.items()],
        fields={"force": "false"},
    )

    manifest = student.get(f"{assignment}/release/files")
    fetched = tmp_path / "fetched"
    student.download_bundle(manifest["files"], fetched)
    for path, data in released.items():
        assert (fetched / path).read_bytes() == data

    answer = b'{"cells": [{"source": "42"}], "nbformat": 4}\n'
    submission = student.upload_bundle(
        f"{assignment}/submissions",
        [
            entry_from_bytes("ps1.ipynb", answer),
            entry_from_bytes("data/table.csv", released["data/table.csv"]),
        ],
        known_shas={entry["sha256"] for entry in manifest["files"]},
    )
    assert submission["timestamp"]

    collected = teacher.post(f"{assignment}/collect", {"latest": True}, idempotent=True)
    assert [item["student"] for item in collected] == ["student"]
    files = teacher.get(f"submissions/{collected[0]['id']}")["files"]
    into = tmp_path / "collected"
    teacher.download_bundle(files, into)
    assert (into / "ps1.ipynb").read_bytes() == answer
    assert hashlib.sha256((into / "data" / "table.csv").read_bytes()).hexdigest() == (
        hashlib.sha256(released["data/table.csv"]).hexdigest()
    )
    for client in (admin, teacher, student):
        client.close()


def test_check_deploy_finds_no_errors_with_the_charts_environment(container):
    result = container.manage("check", "--deploy", check=False)
    ARTIFACTS.mkdir(exist_ok=True)
    report = ARTIFACTS / f"image-check-deploy-{container.database}.txt"
    report.write_text(result.stdout + result.stderr)
    # Errors fail the run; warnings are printed (and kept in test-artifacts/) to be read.
    assert result.returncode == 0, result.stdout + result.stderr
    print(result.stdout + result.stderr)
