"""One version everywhere: pyproject.toml's, carried by the plugin, the server, the chart.

The image's tag and label come from the same line (`make image` passes it; tests/image checks
the built image). Release steps: change ``version`` in pyproject.toml, the chart's ``version``
and ``appVersion`` in Chart.yaml, and add the section to CHANGELOG.md.
"""

from __future__ import annotations

import re

import pytest
import tomllib
import yaml

import nbgrader_exchange
from exchange_site.version import read_version
from nbgrader_exchange import _version
from tests.chart.helpers import CHART, manifests, one
from tests.harness import REPO

VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_plugin_server_and_chart_carry_pyproject_version():
    from exchange_site.version import VERSION as server_version

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert nbgrader_exchange.__version__ == VERSION
    assert server_version == VERSION
    assert chart["version"] == VERSION, "Chart.yaml's version differs from pyproject.toml's"
    assert chart["appVersion"] == VERSION, "Chart.yaml's appVersion differs from pyproject.toml's"


def test_chart_runs_the_image_tagged_with_the_version():
    deployment = one(manifests({}), "Deployment")
    images = {c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]}
    assert images == {f"nbgrader-exchange:{VERSION}"}


def test_changelog_has_a_section_for_the_version():
    changelog = (REPO / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[?([^\]\s]+)\]?", changelog, re.MULTILINE)
    assert headings[0] == "Unreleased"
    assert VERSION in headings


# Where the docs show a version: an image reference, a values `tag:`, /healthz's answer.
DOC_VERSIONS = re.compile(
    r'(nbgrader-exchange:|nbgrader-exchange-image-|tag: "|"version": ")(\d+\.\d+\.\d+)'
)


def test_docs_show_the_current_version():
    seen = 0
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for match in DOC_VERSIONS.finditer(path.read_text()):
            prefix, found = (
                (match.group(1), match.group(2)) if match.group(1) else match.group(3, 4)
            )
            assert found == VERSION, f"{path.name} shows {prefix}{found}, not {VERSION}"
            seen += 1
    assert seen, "no version found in the docs: the pattern no longer matches them"


def test_server_reads_the_version_from_a_pyproject(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "nbgrader-exchange"\nversion = "9.8.7"\n')
    assert read_version(pyproject) == "9.8.7"


def test_plugin_reads_the_checkout_pyproject_beside_the_package(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "nbgrader-exchange"\nversion = "2.0.1"\n'
    )
    assert _version(tmp_path / "nbgrader_exchange") == "2.0.1"


@pytest.mark.parametrize(
    "pyproject",
    [
        None,
        '[project]\nname = "someone-else"\nversion = "5.0.0"\n',
        '[project]\nname = "nbgrader-exchange"\ndynamic = ["version"]\n',
    ],
    ids=["installed", "beside-another-project", "beside-a-pyproject-without-version"],
)
def test_plugin_reads_installed_metadata_otherwise(tmp_path, monkeypatch, pyproject):
    # An installed copy: a real dist-info on sys.path, as pip leaves it.
    site = tmp_path / "site"
    dist_info = site / "nbgrader_exchange-3.1.4.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.4\nName: nbgrader-exchange\nVersion: 3.1.4\n"
    )
    monkeypatch.syspath_prepend(str(site))
    if pyproject is not None:
        (site / "pyproject.toml").write_text(pyproject)
    assert _version(site / "nbgrader_exchange") == "3.1.4"
