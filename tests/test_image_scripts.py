"""scripts/image/: what they say where the image cannot be built (no podman here).

The builds themselves are tested by `make test-image` (tests/image), which needs podman.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import tomllib

from tests.harness import REPO


def test_without_podman_the_wrapper_says_so_in_one_sentence(tmp_path):
    # A PATH with a shell and the usual tools but no podman.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "env"):
        for directory in ("/usr/bin", "/bin"):
            if (Path(directory) / tool).exists():
                (bin_dir / tool).symlink_to(Path(directory) / tool)
                break
    result = subprocess.run(
        [str(bin_dir / "bash"), str(REPO / "scripts" / "image" / "podman"), "info"],
        env={**os.environ, "PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "podman is not installed: install Debian's podman package (apt-get install podman) "
        "to build and run the server image."
    ]


def test_make_image_tags_with_the_pyproject_version():
    result = subprocess.run(
        ["make", "-n", "image", "IMAGE_BASE=python:3.11-slim"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert (
        f"scripts/image/build localhost/nbgrader-exchange:{version} {version} python:3.11-slim"
        in result.stdout
    )
