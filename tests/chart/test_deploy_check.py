"""Django's deployment checklist (`manage.py check --deploy`) against the environment the
chart gives the server: clean when browsers reach the service over HTTPS, and naming the
cookie and HSTS warnings when the hub is plain HTTP (where Secure cookies cannot work)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.harness import REPO

from .helpers import by_kind, manifests, one, values_file

# Values that stand for HTTPS deployments: the hub's public URL is https://, an ingress with
# TLS, and HTTPS said outright over the default values.
HTTPS_VALUES = {
    "replicated-postgresql-s3": values_file("replicated-postgresql-s3"),
    "ingress-with-tls": values_file("ingress"),
    "https-enabled": {"https": {"enabled": True}},
}


def server_environment(values: dict[str, Any], data_dir: Path) -> dict[str, str]:
    """The server container's environment, secrets read from the rendered Secret, the data
    volume at ``data_dir``."""
    objects = manifests(values)
    secrets: dict[tuple[str, str], str] = {}
    for secret in by_kind(objects, "Secret"):
        for key, value in (secret.get("data") or {}).items():
            secrets[(secret["metadata"]["name"], key)] = base64.b64decode(value).decode()
    server = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for item in server["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secrets[(ref["name"], ref["key"])]
    assert env["EXCHANGE_DATA_DIR"] == "/data"
    env["EXCHANGE_DATA_DIR"] = str(data_dir)
    return env


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`manage.py check --deploy --fail-level WARNING` with exactly ``env`` (and PATH)."""
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("name", sorted(HTTPS_VALUES))
def test_check_deploy_is_clean_with_the_charts_https_environment(name, tmp_path):
    env = server_environment(HTTPS_VALUES[name], tmp_path)
    assert env["EXCHANGE_HTTPS"] == "true"
    result = check_deploy(env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_names_the_cookie_and_hsts_warnings_for_a_plain_http_hub(tmp_path):
    """The default values know nothing of TLS: a hub on plain HTTP (a demo, a test cluster)
    must not get Secure cookies, and Django's checklist says what that leaves open."""
    env = server_environment({}, tmp_path)
    assert env["EXCHANGE_HTTPS"] == "false"
    result = check_deploy(env)
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr + result.stdout


def test_https_can_be_turned_off_over_an_https_public_url():
    values = values_file("replicated-postgresql-s3")
    values["https"] = {"enabled": False}
    server = one(manifests(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    names = {item["name"]: item.get("value") for item in server["env"]}
    assert names["EXCHANGE_HTTPS"] == "false"
    assert "EXCHANGE_HSTS_SECONDS" not in names
