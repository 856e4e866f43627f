"""A Kubernetes API server just real enough for Helm's server-side dry run.

It answers discovery (so Helm can map the chart's kinds) and GETs of the objects it is given,
404 for everything else, on 127.0.0.1 only. That lets a test watch the chart's `lookup` read a
live Secret, as `helm upgrade` does, without a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.harness.jsonserver import JsonServer, Request

_GROUPS = {
    "apps": [("deployments", "Deployment")],
    "batch": [("jobs", "Job")],
    "networking.k8s.io": [("ingresses", "Ingress"), ("networkpolicies", "NetworkPolicy")],
    "policy": [("poddisruptionbudgets", "PodDisruptionBudget")],
}
_CORE = [
    ("secrets", "Secret"),
    ("services", "Service"),
    ("serviceaccounts", "ServiceAccount"),
    ("persistentvolumeclaims", "PersistentVolumeClaim"),
    ("configmaps", "ConfigMap"),
    ("pods", "Pod"),
]


def _resource_list(group_version: str, kinds: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": [
            {
                "name": plural,
                "singularName": kind.lower(),
                "namespaced": True,
                "kind": kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            }
            for plural, kind in kinds
        ],
    }


def _discovery() -> dict[str, Any]:
    documents: dict[str, Any] = {
        "/version": {"major": "1", "minor": "30", "gitVersion": "v1.30.0"},
        "/api": {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}
            ],
        },
        "/apis": {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": group,
                    "versions": [{"groupVersion": f"{group}/v1", "version": "v1"}],
                    "preferredVersion": {"groupVersion": f"{group}/v1", "version": "v1"},
                }
                for group in _GROUPS
            ],
        },
        "/api/v1": _resource_list("v1", _CORE),
    }
    for group, kinds in _GROUPS.items():
        documents[f"/apis/{group}/v1"] = _resource_list(f"{group}/v1", kinds)
    return documents


class FakeKubeAPI:
    """Live objects by API path, e.g. ``/api/v1/namespaces/jhub/secrets/name``."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []
        self.port = 0

    def kubeconfig(self, namespace: str) -> str:
        return json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "fake", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}
                ],
                "users": [{"name": "test", "user": {"token": "test"}}],
                "contexts": [
                    {
                        "name": "fake",
                        "context": {"cluster": "fake", "user": "test", "namespace": namespace},
                    }
                ],
                "current-context": "fake",
            }
        )


@contextmanager
def fake_kube_api() -> Iterator[FakeKubeAPI]:
    api = FakeKubeAPI()
    documents = _discovery()

    def respond(request: Request) -> tuple[int, object]:
        path = request.route
        api.requests.append(path)
        if request.method == "GET" and path in documents:
            return 200, documents[path]
        if request.method == "GET" and path in api.objects:
            return 200, api.objects[path]
        return 404, {"kind": "Status", "apiVersion": "v1", "code": 404}

    with JsonServer(respond) as server:
        api.port = server.port
        yield api
