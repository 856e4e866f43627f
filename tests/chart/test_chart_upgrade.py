"""Secrets the chart generates are made once and kept: on upgrade, `lookup` reads them back.

Helm's server-side dry run (the same rendering as `helm upgrade`, lookup included) against a
fake Kubernetes API on 127.0.0.1 that holds the release's live Secret.
"""

from __future__ import annotations

import base64
from typing import Any

import helm_python as helm
import helm_python.config
import pytest
import yaml

from .fake_kube_api import fake_kube_api
from .helpers import CHART, NAMESPACE, RELEASE, values_file

LIVE_KEY = "kept-across-upgrades-" + "k" * 43
LIVE_TOKEN = "0123456789abcdef" * 4


@pytest.fixture
def server_side_render(monkeypatch):
    """Render the chart as an install against the fake API would, lookup and all."""
    original = helm_python.config._opts

    # The fake API serves no OpenAPI documents to validate against; the chart's objects are
    # validated against the Kubernetes schemas in test_chart.py instead.
    def install_options(**pairs: Any) -> str | None:
        if "dry_run" in pairs:
            pairs["disable_openapi_validation"] = True
        return original(**pairs)

    monkeypatch.setattr(helm_python.config, "_opts", install_options)

    def render(values: dict[str, Any], live: dict[str, str] | None) -> list[dict[str, Any]]:
        with fake_kube_api() as api:
            if live is not None:
                api.objects[f"/api/v1/namespaces/{NAMESPACE}/secrets/{RELEASE}"] = _secret(live)
            with helm.Config(
                kubeconfig_content=api.kubeconfig(NAMESPACE),
                namespace=NAMESPACE,
                storage_driver="memory",
            ) as config:
                release = config.install(
                    str(CHART), RELEASE, values, namespace=NAMESPACE, dry_run="server"
                )
            assert f"/api/v1/namespaces/{NAMESPACE}/secrets/{RELEASE}" in api.requests
        return [obj for obj in yaml.safe_load_all(release["manifest"]) if obj]

    return render


def _secret(data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": RELEASE,
            "namespace": NAMESPACE,
            # Owned by this release, as after a first install.
            "labels": {"app.kubernetes.io/managed-by": "Helm"},
            "annotations": {
                "meta.helm.sh/release-name": RELEASE,
                "meta.helm.sh/release-namespace": NAMESPACE,
            },
        },
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }


def _secret_data(objects: list[dict[str, Any]], name: str) -> dict[str, str]:
    secret = next(o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == name)
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


def test_generated_secret_key_and_hub_token_survive_an_upgrade(server_side_render):
    live = {"SECRET_KEY": LIVE_KEY, "JUPYTERHUB_API_TOKEN": LIVE_TOKEN}
    data = _secret_data(server_side_render({}, live), RELEASE)
    assert data == live


def test_a_first_install_generates_them(server_side_render):
    data = _secret_data(server_side_render({}, None), RELEASE)
    assert len(data["SECRET_KEY"]) == 64 and data["SECRET_KEY"] != LIVE_KEY
    assert len(data["JUPYTERHUB_API_TOKEN"]) == 64


def test_kept_secrets_sit_beside_the_database_url_given_as_a_value(server_side_render):
    values = values_file("replicated-postgresql-s3")
    live = {
        "SECRET_KEY": LIVE_KEY,
        "JUPYTERHUB_API_TOKEN": LIVE_TOKEN,
        "DATABASE_URL": "postgresql://old@db/exchange",
    }
    objects = server_side_render(values, live)
    server = _secret_data(objects, RELEASE)
    assert server["SECRET_KEY"] == LIVE_KEY
    assert server["JUPYTERHUB_API_TOKEN"] == LIVE_TOKEN
    # Values given in values.yaml win over what the live Secret holds.
    assert server["DATABASE_URL"] == values["database"]["url"]


def test_values_replace_the_kept_secrets(server_side_render):
    """Rotation: a key given as a value replaces the live one."""
    live = {"SECRET_KEY": LIVE_KEY, "JUPYTERHUB_API_TOKEN": LIVE_TOKEN}
    data = _secret_data(server_side_render({"secretKey": "rotated" * 8}, live), RELEASE)
    assert data == {"SECRET_KEY": "rotated" * 8, "JUPYTERHUB_API_TOKEN": LIVE_TOKEN}
