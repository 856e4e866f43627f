"""The release's version, read from pyproject.toml: the one place it is written.

The plugin, the server, the image's tag and label, and the chart's ``version`` and
``appVersion`` all carry it (tests/test_version.py checks they agree); the server image
copies pyproject.toml for this alone.
"""

from __future__ import annotations

from pathlib import Path

import tomllib

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def read_version(pyproject: Path = PYPROJECT) -> str:
    """``[project] version`` of the given pyproject.toml."""
    with pyproject.open("rb") as file:
        return tomllib.load(file)["project"]["version"]


VERSION = read_version()
