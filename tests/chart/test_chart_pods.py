"""The chart's pods (non-root, read-only root, probes on real health views, Zero to
JupyterHub's labels, scheduling, ingress, network policy), the NOTES an admin pastes into the
Zero to JupyterHub config, and values.yaml documenting every key."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from django.urls import resolve

from .helpers import (
    CHART,
    NAMESPACE,
    RELEASE,
    REPLICATED,
    VALUES_FILES,
    by_kind,
    env_of,
    manifests,
    notes,
    one,
    pod_containers,
    values_file,
)

# --- Pods: probes, security, Zero to JupyterHub labels -------------------------------------


@pytest.mark.parametrize("name", VALUES_FILES)
def test_pods_run_non_root_on_a_read_only_root_with_tmp_and_data_volumes(name):
    for workload in by_kind(manifests(values_file(name)), "Deployment") + by_kind(
        manifests(values_file(name)), "Job"
    ):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        volumes = {v["name"] for v in pod["volumes"]}
        for container in pod_containers(workload):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts == {"/tmp": "tmp", "/data": "data"}
            assert volumes >= set(mounts.values())
            assert env_of(container)["EXCHANGE_DATA_DIR"]["value"] == "/data"


def test_probes_ask_real_health_views_with_an_allowed_host():
    server = one(manifests({}), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    allowed = env_of(server)["ALLOWED_HOSTS"]["value"].split(",")
    paths = {}
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"]:
        get = server[probe]["httpGet"]
        paths[probe] = get["path"]
        assert get["port"] == "http"
        host = {h["name"]: h["value"] for h in get["httpHeaders"]}["Host"]
        assert host in allowed
    assert paths == {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    assert resolve("/healthz").url_name == "healthz"
    assert resolve("/readyz").url_name == "readyz"


def test_pods_carry_the_zero_to_jupyterhub_hub_access_label():
    for name in VALUES_FILES:
        labels = one(manifests(values_file(name)), "Deployment")["spec"]["template"]["metadata"][
            "labels"
        ]
        assert labels["hub.jupyter.org/network-access-hub"] == "true"


def test_scheduling_values_reach_the_pods():
    pod = one(manifests(values_file(REPLICATED)), "Deployment")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"hub.jupyter.org/node-purpose": "core"}
    assert pod["tolerations"][0]["key"] == "hub.jupyter.org/dedicated"
    # Several replicas and no affinity given: spread over nodes.
    assert "podAntiAffinity" in pod["affinity"]
    pod = one(manifests(values_file("ingress")), "Deployment")["spec"]["template"]["spec"]
    assert "nodeAffinity" in pod["affinity"]
    assert (
        one(manifests(values_file("ingress")), "PersistentVolumeClaim")["spec"]["storageClassName"]
        == "fast-ssd"
    )


def test_ingress_hosts_are_allowed_and_trusted():
    objects = manifests(values_file("ingress"))
    ingress = one(objects, "Ingress")
    assert ingress["spec"]["rules"][0]["host"] == "exchange.example.edu"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": RELEASE, "port": {"name": "http"}}
    env = env_of(one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0])
    hosts = env["ALLOWED_HOSTS"]["value"].split(",")
    assert {"exchange.example.edu", "exchange-internal.example.edu"} <= set(hosts)
    assert env["CSRF_TRUSTED_ORIGINS"]["value"].split(",") == [
        "https://exchange.example.edu",
        "https://exchange-internal.example.edu",
    ]


def test_network_policy_admits_the_hub_its_proxy_and_users_servers():
    policy = one(manifests(values_file(REPLICATED)), "NetworkPolicy")
    peers = policy["spec"]["ingress"][0]["from"]
    components = peers[0]["podSelector"]["matchExpressions"][0]["values"]
    assert {"hub", "proxy", "singleuser-server"} <= set(components)
    assert peers[1]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }


# --- NOTES.txt: what to paste into the Zero to JupyterHub config --------------------------


def _pasteable_snippet(text: str) -> dict[str, Any]:
    start = text.index("\nhub:\n")
    end = text.index("\nThe users' image")
    return yaml.safe_load(text[start:end])


def test_notes_print_a_valid_zero_to_jupyterhub_config_snippet():
    snippet = _pasteable_snippet(notes({}))
    url = f"http://{RELEASE}.{NAMESPACE}.svc.cluster.local:8000"
    service = snippet["hub"]["services"]["nbgrader-exchange"]
    assert service["url"] == url
    assert "apiToken" in service
    scope = "access:services!service=nbgrader-exchange"
    assert scope in snippet["hub"]["loadRoles"]["user"]["scopes"]
    assert scope in snippet["hub"]["loadRoles"]["server"]["scopes"]
    # The OAuth client JupyterHub registers matches what the exchange is told.
    server = one(manifests({}), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in server["env"]}
    assert service["oauth_client_id"] == env["JUPYTERHUB_CLIENT_ID"]
    assert service["oauth_redirect_uri"] == env["JUPYTERHUB_OAUTH_CALLBACK_URL"]
    assert snippet["singleuser"]["extraEnv"]["NBGRADER_EXCHANGE_URL"] == f"{url}/"
    config = snippet["singleuser"]["extraFiles"]["nbgrader-exchange-config"]
    assert config["mountPath"] == "/etc/jupyter/nbgrader_config.py"
    assert "from nbgrader_exchange import" in config["stringData"]
    egress = snippet["singleuser"]["networkPolicy"]["egress"][0]
    labels = one(manifests({}), "Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = egress["to"][0]["podSelector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert egress["ports"] == [{"port": 8000, "protocol": "TCP"}]
    # The command that prints the token names the Secret that holds it.
    assert f"get secret {RELEASE} -o jsonpath='{{.data.JUPYTERHUB_API_TOKEN}}'" in notes({})


def test_notes_follow_the_service_name_and_the_hub_secret():
    text = notes(
        {
            "hub": {
                "serviceName": "exchange",
                "apiTokenSecret": {"name": "hub", "key": "hub.services.exchange.apiToken"},
            }
        }
    )
    snippet = _pasteable_snippet(text)
    assert "apiToken" not in snippet["hub"]["services"]["exchange"]
    assert "access:services!service=exchange" in snippet["hub"]["loadRoles"]["user"]["scopes"]
    assert "Secret hub, key hub.services.exchange.apiToken" in text


def test_notes_ask_for_the_public_hub_url_until_it_is_set():
    assert "hub.publicUrl is not set" in notes({})
    assert "hub.publicUrl is not set" not in notes(
        {"hub": {"publicUrl": "https://hub.example.edu"}}
    )


def test_notes_warn_about_an_emptydir_database():
    assert "are lost when the pod goes" in notes({"persistence": {"enabled": False}})
    assert "are lost" not in notes({})


# --- values.yaml documents every key ------------------------------------------------------

# Kubernetes objects passed through as they are: their fields are Kubernetes', not ours.
_PASSTHROUGH = {"podSecurityContext", "securityContext", "resources"}


def test_every_value_is_commented():
    lines = (CHART / "values.yaml").read_text().splitlines()
    parents: list[tuple[int, str]] = []
    uncommented = []
    for number, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z][\w.-]*):(.*)$", line)
        if not match:
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3).strip()
        while parents and parents[-1][0] >= indent:
            parents.pop()
        inside_passthrough = any(name in _PASSTHROUGH for _, name in parents)
        parents.append((indent, key))
        is_group = (
            rest == ""
            and number + 1 < len(lines)
            and not lines[number + 1].lstrip().startswith("- ")
        )
        if inside_passthrough or (is_group and key not in _PASSTHROUGH):
            continue
        previous = lines[number - 1].strip() if number else ""
        if not previous.startswith("#"):
            uncommented.append(key)
    assert not uncommented, f"values.yaml keys without a comment: {uncommented}"


def test_chart_app_version_is_the_project_version():
    """The image tag defaults to appVersion: it must name the release being packaged."""
    import tomllib

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((CHART.parents[1] / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
