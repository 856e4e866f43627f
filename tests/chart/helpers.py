"""Rendering the Helm chart in-process (Helm's Go SDK) and reading what settings.py reads."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.harness import REPO

CHART = REPO / "charts" / "nbgrader-exchange"
VALUES_DIR = Path(__file__).resolve().parent / "values"
SETTINGS = REPO / "exchange_site" / "settings.py"
RELEASE = "nbgrader-exchange"
NAMESPACE = "jhub"

# settings.py's helpers that read one environment variable, named by their first argument.
_ENV_READERS = {
    "env_str",
    "env_secret",
    "env_bool",
    "env_int",
    "env_list",
    "env_choice",
    "env_path",
}


def values_file(name: str) -> dict[str, Any]:
    """The values in tests/chart/values/<name>.yaml."""
    return yaml.safe_load((VALUES_DIR / f"{name}.yaml").read_text()) or {}


def render(values: dict[str, Any] | None = None, *, upgrade: bool = False) -> dict[str, str]:
    """Every template of the chart rendered offline: {template path: text}."""
    with helm.Chart.load(CHART) as chart:
        return chart.render(
            values or {},
            name=RELEASE,
            namespace=NAMESPACE,
            is_install=not upgrade,
            is_upgrade=upgrade,
        )


def manifests(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The Kubernetes objects the chart renders (NOTES.txt left out)."""
    objects = []
    for path, text in sorted(render(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(text):
            if document:
                objects.append(document)
    return objects


def notes(values: dict[str, Any] | None = None) -> str:
    """What `helm install` prints after installing."""
    return render(values)[f"{CHART.name}/templates/NOTES.txt"]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def pod_containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    """Containers and init containers of a Deployment's or Job's pod."""
    spec = obj["spec"]["template"]["spec"]
    return spec.get("initContainers", []) + spec["containers"]


def settings_env_names() -> set[str]:
    """Every environment variable exchange_site/settings.py reads, found in its source.

    ``os.environ.get("X")``, ``os.environ["X"]``, ``os.getenv("X")`` and the
    ``env_*("X")`` helpers; ``env_secret`` also reads ``X_FILE``.
    """
    names: set[str] = set()
    for node in ast.walk(ast.parse(SETTINGS.read_text())):
        if isinstance(node, ast.Subscript) and _is_os_environ(node.value):
            if isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                names.add(node.slice.value)
        if not isinstance(node, ast.Call) or not node.args:
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in _ENV_READERS:
            names.add(first.value)
            if func.id == "env_secret":
                names.add(f"{first.value}_FILE")
        elif isinstance(func, ast.Attribute) and (
            (func.attr == "get" and _is_os_environ(func.value))
            or (func.attr == "getenv" and isinstance(func.value, ast.Name))
        ):
            names.add(first.value)
    return names


def _is_os_environ(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


VALUES_FILES = sorted(path.stem for path in VALUES_DIR.glob("*.yaml"))
REPLICATED = "replicated-postgresql-s3"


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def render_error(values: dict[str, Any]) -> str:
    with pytest.raises(helm.HelmError) as caught:
        render(values)
    return str(caught.value)


def decoded(value: str) -> str:
    """A Secret's base64 data value as text."""
    import base64

    return base64.b64decode(value).decode()
