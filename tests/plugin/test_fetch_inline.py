"""``nbgrader fetch_assignment`` takes the release's small files with the manifest
(``?inline=true``): the notebooks in one request, larger files by URL; ``--replace`` asks
for the missing files only, by URL (the real plugin against a live server)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from nbgrader_exchange import exchange as exchange_module
from nbgrader_exchange.client import ExchangeClient
from nbgrader_exchange.files import entry_from_bytes

from .support import Actor, plugin_config
from .test_archive_download import Recording

COURSE = "inline101"
INES, SAM = "inline-ines", "inline-sam"
# Over the service's inline limit (api.downloads.INLINE_FILE_BYTES, 256 KiB).
LARGE = 300 * 1024


@pytest.fixture(scope="module")
def release(service) -> dict[str, Any]:
    tokens = service.tokens(INES, SAM)
    service.create_course(COURSE, INES, [SAM])
    files = {f"ps{i}.ipynb": os.urandom(40_000) for i in range(3)}
    files["data/big.bin"] = os.urandom(LARGE)
    ines = ExchangeClient(service.url, tokens[INES])
    ines.upload_bundle(
        f"courses/{COURSE}/assignments/ps1/release",
        [entry_from_bytes(path, data) for path, data in files.items()],
        what="release",
    )
    return {"files": files, "token": tokens[SAM], "url": service.url}


def _check(root: Path, files: dict[str, bytes]) -> None:
    got = {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert {p: hashlib.sha256(d).hexdigest() for p, d in got.items()} == {
        p: hashlib.sha256(d).hexdigest() for p, d in files.items()
    }


def test_a_first_fetch_takes_the_notebooks_with_the_manifest(release, tmp_path, monkeypatch):
    made: list[Recording] = []  # the clients the plugin makes, each noting its requests
    monkeypatch.setattr(
        exchange_module,
        "ExchangeClient",
        lambda *a, **k: made.append(Recording(*a, **k)) or made[-1],
    )

    def sent() -> list[tuple[str, str]]:
        return [request for client in made for request in client.sent]

    sam = Actor(SAM, tmp_path / SAM, plugin_config(release["url"], release["token"], tmp_path))
    sam.work.mkdir()
    sam.run("FetchAssignment", COURSE, "ps1")
    _check(sam.work / "ps1", release["files"])
    [(method, manifest), *downloads] = sent()
    assert (method, manifest.split("/api/v1/")[-1]) == (
        "GET",
        f"courses/{COURSE}/assignments/ps1/release/files?inline=true",
    )
    # One more request, for the file over the limit: none for the notebooks.
    assert len(downloads) == 1

    # --replace: the manifest without bytes, and only the missing notebook asked for.
    (sam.work / "ps1" / "ps1.ipynb").unlink()
    made.clear()
    sam.run("FetchAssignment", COURSE, "ps1", replace_missing_files=True)
    _check(sam.work / "ps1", release["files"])
    assert not any("?inline" in url for _, url in sent())
    assert len(sent()) == 2
