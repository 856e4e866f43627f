"""Fixtures for the JupyterLab browser tests: screenshots, the users' servers (Chromium is
the session's shared one, in tests/conftest.py)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import REPO

from .screenshots import Screenshots

ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "lab-screenshots"
LOGS = ARTIFACTS / "lab-logs"


@pytest.fixture
def screenshots(request) -> Iterator[Screenshots]:
    name = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")
    yield Screenshots(SCREENSHOTS / name)


@pytest.fixture
def lab_log_dir(request) -> Path:
    name = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")
    folder = LOGS / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
