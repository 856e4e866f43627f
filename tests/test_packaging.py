"""The plugin's wheel and sdist, built as `make dist` builds them, and what they hold.

The wheel is the nbgrader plugin alone (``nbgrader_exchange``, its license and metadata):
no tests package, no server. Installed on its own, it reports the project's version from
its metadata.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
import tomllib

from tests.harness import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
VERSION = PROJECT["version"]
# Every module of the plugin (client, files, transfer, errors, the roles...) must ship.
PLUGIN_MODULES = sorted(
    f"nbgrader_exchange/{path.name}" for path in (REPO / "nbgrader_exchange").glob("*.py")
)

# Building needs no database: once, in the SQLite pass of the suite.
pytestmark = pytest.mark.sqlite_only


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """The wheel and the sdist from ``python -m build`` (an isolated PEP 517 build)."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def test_wheel_holds_only_the_plugin_package(built):
    names = zipfile.ZipFile(built["wheel"]).namelist()
    dist_info = f"nbgrader_exchange-{VERSION}.dist-info/"
    assert built["wheel"].name == f"nbgrader_exchange-{VERSION}-py3-none-any.whl"
    strays = [n for n in names if not n.startswith(("nbgrader_exchange/", dist_info))]
    assert not strays, f"the wheel holds more than the plugin: {strays}"
    assert not [n for n in names if "tests" in n.split("/") or "conftest" in n]
    packages = {n.split("/")[0] for n in names if n.endswith(".py")}
    assert packages == {"nbgrader_exchange"}
    assert [m for m in PLUGIN_MODULES if m not in names] == []
    assert f"{dist_info}licenses/LICENSE" in names


def test_wheel_metadata_carries_version_license_and_plugin_dependencies(built):
    with zipfile.ZipFile(built["wheel"]) as wheel:
        metadata = wheel.read(f"nbgrader_exchange-{VERSION}.dist-info/METADATA").decode()
    headers = [line for line in metadata.split("\n\n")[0].splitlines()]
    assert f"Version: {VERSION}" in headers
    assert "License-Expression: BSD-3-Clause" in headers
    requires = [line.split(": ", 1)[1] for line in headers if line.startswith("Requires-Dist")]
    # The plugin runs in users' images: nbgrader and requests, never Django.
    assert sorted(r.split(">")[0].split("<")[0] for r in requires) == ["nbgrader", "requests"]


def test_sdist_holds_the_plugin_license_and_no_tests(built):
    with tarfile.open(built["sdist"]) as sdist:
        names = [name.split("/", 1)[1] for name in sdist.getnames() if "/" in name]
    assert "LICENSE" in names and "pyproject.toml" in names
    assert [m for m in PLUGIN_MODULES if m not in names] == []
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n]
    assert not [
        n for n in names if n.split("/")[0] in {"courses", "hub", "api", "web", "exchange_site"}
    ]


def test_installed_wheel_reports_the_version_from_its_metadata(built, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(target),
            str(built["wheel"]),
        ],
        check=True,
        capture_output=True,
    )
    # From / with only the installed copy on the path: not the checkout's pyproject.toml.
    code = "import nbgrader_exchange as p; print(p.__file__); print(p.__version__)"
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd="/", env=env, capture_output=True, text=True, check=True
    )
    location, version = result.stdout.split()
    assert Path(location).is_relative_to(target)
    assert version == VERSION


def test_chart_package_carries_the_version(tmp_path):
    from scripts.package_chart import main

    assert main(["--version", VERSION, str(tmp_path)]) == 0
    (archive,) = tmp_path.glob("*.tgz")
    assert archive.name == f"nbgrader-exchange-{VERSION}.tgz"
    with tarfile.open(archive) as chart:
        names = chart.getnames()
        metadata = chart.extractfile("nbgrader-exchange/Chart.yaml").read().decode()
    assert "nbgrader-exchange/templates/deployment.yaml" in names
    assert f"appVersion: {VERSION}" in metadata or f'appVersion: "{VERSION}"' in metadata


def test_chart_package_refuses_a_version_the_chart_does_not_carry(tmp_path, capsys):
    from scripts.package_chart import main

    assert main(["--version", "99.0.0", str(tmp_path)]) == 1
    assert "make them equal before packaging" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
