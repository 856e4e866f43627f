"""Small files in one archive request, large files one by one, per-file downloads from a
server that offers no archive, and archives that break off or hold the wrong bytes."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import tarfile
from typing import Any

import pytest

from nbgrader_exchange import archive_download
from nbgrader_exchange.client import ExchangeClient, ServiceError
from nbgrader_exchange.files import entry_from_bytes
from nbgrader_exchange.transfer import BlobCache, DownloadStats

COURSE = "archive101"
INES, SAM = "archive-ines", "archive-sam"


class Recording(ExchangeClient):
    """The real client, noting the method and URL of every request it sends."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, str]] = []

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self.sent.append((method, path))
        return super().request(method, path, **kwargs)


@pytest.fixture(scope="module")
def released(service) -> dict[str, Any]:
    tokens = service.tokens(INES, SAM)
    service.create_course(COURSE, INES, [SAM])
    ines = ExchangeClient(service.url, tokens[INES])
    small = [entry_from_bytes(f"ps{i}.ipynb", os.urandom(50_000)) for i in range(3)]
    large = entry_from_bytes("data/big.bin", os.urandom(archive_download.ARCHIVE_FILE_LIMIT + 1))
    url = f"courses/{COURSE}/assignments/ps1/release"
    ines.upload_bundle(url, [*small, large], what="release", fields={"force": "true"})
    sam = Recording(service.url, tokens[SAM])
    manifest = sam.get(f"{url}/files", what="fetch")
    return {"sam": sam, "files": manifest["files"], "bytes": {e.path: e for e in [*small, large]}}


def _check(tmp_path, files) -> None:
    for entry in files:
        data = (tmp_path / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]


def test_small_files_come_in_one_archive_and_large_ones_alone(released, tmp_path):
    sam, files = released["sam"], released["files"]
    sam.sent.clear()
    stats = DownloadStats()
    sam.download_bundle(files, tmp_path, what="fetch", stats=stats)
    _check(tmp_path, files)
    assert (stats.files, stats.downloaded_files) == (4, 4)
    posts = [url for method, url in sam.sent if method == "POST"]
    gets = [url for method, url in sam.sent if method == "GET"]
    assert posts == [files[0]["archive_url"]]
    assert gets == [next(f["url"] for f in files if f["path"] == "data/big.bin")]


def test_a_server_without_archives_gets_one_request_per_file(released, tmp_path):
    """An older service (or large files on S3): the entries have no archive_url."""
    sam = released["sam"]
    files = [
        {k: v for k, v in e.items() if k not in ("archive_url", "token")} for e in released["files"]
    ]
    sam.sent.clear()
    sam.download_bundle(files, tmp_path, what="fetch")
    _check(tmp_path, files)
    assert sorted(m for m, _ in sam.sent) == ["GET"] * 4


def test_files_already_in_the_cache_are_not_asked_for(released, tmp_path):
    sam, files = released["sam"], released["files"]
    cache = BlobCache()
    sam.download_bundle(files, tmp_path / "one", what="fetch", cache=cache)
    sam.sent.clear()
    sam.download_bundle(files, tmp_path / "two", what="fetch", cache=cache)
    _check(tmp_path / "two", files)
    assert sam.sent == []


# --- archives that break off or lie (a scripted server) --------------------------------------


def _tar(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _entries(url: str) -> list[dict[str, Any]]:
    return [
        {
            "path": name,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "url": f"{url}/files/{name}",
            "token": f"token-{name}",
            "archive_url": f"{url}/files/archive",
        }
        for name, data in (("a.txt", b"alpha"), ("b.txt", b"bravo"))
    ]


def _quick(url: str) -> ExchangeClient:
    return ExchangeClient(url, "nbx_token", retries=2, backoff=0.01)


def test_a_cut_or_damaged_archive_is_asked_for_again(scripted, tmp_path):
    good = {"a.txt": b"alpha", "b.txt": b"bravo"}
    server = scripted(
        ("cut", _tar(good)[:600]),
        (200, _tar({_sha(b"alpha"): b"alphx", _sha(b"bravo"): b"bravo"})),
        # A member nobody asked for is left alone.
        (200, _tar({"extra": b"?", **{_sha(v): v for v in good.values()}})),
    )
    entries = _entries(server.url)
    _quick(server.url).download_bundle(entries, tmp_path, what="fetch ps1")
    assert (tmp_path / "a.txt").read_bytes() == b"alpha"
    assert (tmp_path / "b.txt").read_bytes() == b"bravo"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]
    assert [r.path for r in server.requests] == ["/files/archive"] * 3
    assert b"token-a.txt" in server.requests[0].body


def test_an_archive_that_stays_damaged_is_one_sentence_and_leaves_nothing(scripted, tmp_path):
    wrong = _tar({_sha(b"alpha"): b"alphx", _sha(b"bravo"): b"bravx"})
    server = scripted((200, wrong), (200, wrong), (200, wrong))
    with pytest.raises(ServiceError, match="broke off or was damaged"):
        _quick(server.url).download_bundle(_entries(server.url), tmp_path, what="fetch ps1")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_a_server_refusing_the_archive_is_its_sentence(scripted, tmp_path):
    server = scripted((404, {"error": "not_found", "detail": "This download link is not valid."}))
    with pytest.raises(ServiceError, match="This download link is not valid"):
        _quick(server.url).download_bundle(_entries(server.url), tmp_path, what="fetch ps1")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_batches_stay_under_their_caps_and_large_files_go_alone(tmp_path, monkeypatch):
    limit = archive_download.ARCHIVE_FILE_LIMIT
    monkeypatch.setattr(archive_download, "ARCHIVE_BATCH_FILES", 5)
    monkeypatch.setattr(archive_download, "ARCHIVE_BATCH_BYTES", 2 * limit)

    def entry(name: str, size: int, archive: bool = True) -> dict[str, Any]:
        extra = {"token": f"t-{name}", "archive_url": "http://x/files/archive"} if archive else {}
        return {"path": name, "size": size, "sha256": name, "url": f"http://x/{name}", **extra}

    items = [(entry(f"s{i}", 10), tmp_path / f"s{i}") for i in range(7)]
    items += [(entry("big", limit + 1), tmp_path / "big"), (entry("old", 10, False), tmp_path)]
    items += [(entry(f"m{i}", limit), tmp_path / f"m{i}") for i in range(9)]
    batches, single = archive_download.split(items)
    assert [e["path"] for e, _ in single] == ["big", "old"]
    assert sorted(len(b) for b in batches) == [2, 2, 2, 2, 3, 5]
    for batch in batches:
        assert len(batch) <= 5
        assert sum(e["size"] for e, _ in batch) <= archive_download.ARCHIVE_BATCH_BYTES
    assert sorted(e["path"] for b in batches for e, _ in b) == sorted(
        [f"s{i}" for i in range(7)] + [f"m{i}" for i in range(9)]
    )


# --- bytes in the manifest itself (``?inline=true``) ------------------------------------------


def _inline(name: str, data: bytes) -> dict[str, Any]:
    return {
        "path": name,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "content": base64.b64encode(data).decode(),
    }


def test_files_that_came_inline_are_written_without_a_request(tmp_path):
    # No server listens there: any request would fail.
    client = Recording("http://127.0.0.1:9", "nbx_token", retries=0)
    files = [_inline("feedback/a.html", b"<p>a</p>"), _inline("feedback/b.html", b"<p>b</p>")]
    stats = DownloadStats()
    client.download_bundle(files, tmp_path, what="fetch feedback", stats=stats)
    _check(tmp_path, files)
    assert client.sent == [] and stats.downloaded_files == 2


@pytest.mark.parametrize(
    "content",
    [base64.b64encode(b"<p>other</p>").decode(), "not base64 \xff"],
    ids=["other bytes", "not base64"],
)
def test_damaged_inline_bytes_are_one_sentence_and_leave_nothing(tmp_path, content):
    client = ExchangeClient("http://127.0.0.1:9", "nbx_token", retries=0)
    entry = {**_inline("feedback/a.html", b"<p>a</p>"), "content": content}
    with pytest.raises(ServiceError, match=r"feedback/a.html.*is damaged"):
        client.download_bundle([entry], tmp_path, what="fetch feedback")
    assert list(tmp_path.rglob("*")) in ([], [tmp_path / "feedback"])
