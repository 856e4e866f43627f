"""Numbered screenshots of a browser test's steps, for people to look at afterwards."""

from __future__ import annotations

import re
import shutil
from pathlib import Path


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
