"""Fixtures for the JupyterLab browser tests: screenshots, the users' servers (Chromium is
the session's shared one, in tests/conftest.py)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "lab-screenshots"
LOGS = ARTIFACTS / "lab-logs"


class Screenshots:
    """Numbered full-page screenshots of each step, in one folder per scenario."""

    def __init__(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self.folder = folder
        self.count = 0

    def take(self, page, step: str) -> Path:
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", step.lower()).strip("-")
        path = self.folder / f"{self.count:02d}-{slug}.png"
        page.screenshot(path=str(path))
        return path


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
