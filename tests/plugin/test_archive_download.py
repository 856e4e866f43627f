"""Small files in one archive request, large files one by one, per-file downloads from a
server that offers no archive, and archives that break off or hold the wrong bytes."""

from __future__ import annotations

import base64
import hashlib
import io
import json
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


# --- bytes after the JSON (``Accept: application/vnd.nbgrader-exchange.inline``) ---------------

INLINE = {"Content-Type": archive_download.INLINE_BYTES_TYPE}


def _after_json(files: dict[str, bytes]) -> bytes:
    """The answer of a server that sends the files' bytes after the JSON."""
    entries, tail = [], b""
    for name, data in files.items():
        entries.append({**_inline(name, data), "content_at": len(tail)})
        del entries[-1]["content"]
        tail += data
    answer = [{"submission_id": 1, "timestamp": "2026-12-01 10:00:00 UTC", "files": entries}]
    return json.dumps(answer).encode() + b"\n" + tail


def test_files_after_the_json_are_written_from_one_request(scripted, tmp_path):
    files = {"feedback/a.html": b"<p>a</p>\n" * 50, "feedback/b.html": b"<p>b</p>"}
    body = _after_json(files)
    server = scripted((200, body, INLINE))
    client = ExchangeClient(server.url, "nbx_token", retries=0)
    [feedback] = client.get_with_files("feedback?inline=true", what="fetch feedback")
    stats = DownloadStats()
    client.download_bundle(feedback["files"], tmp_path, what="fetch feedback", stats=stats)
    assert {p: (tmp_path / p).read_bytes() for p in files} == files
    [request] = server.requests
    assert request.headers["Accept"].startswith(archive_download.INLINE_BYTES_TYPE + ",")
    assert stats.downloaded_files == 2


def test_a_server_answering_json_still_gives_the_files(scripted, tmp_path):
    # An older service knows no other form: base64 in the JSON, as before.
    data = b"<p>a</p>"
    server = scripted((200, [{"files": [_inline("a.html", data)]}]))
    client = ExchangeClient(server.url, "nbx_token", retries=0)
    [feedback] = client.get_with_files("feedback?inline=true", what="fetch feedback")
    client.download_bundle(feedback["files"], tmp_path, what="fetch feedback")
    assert (tmp_path / "a.html").read_bytes() == data


@pytest.mark.parametrize(
    "body",
    [b'[{"files": []}]', b'[{"files": \n', b"\xff\xfe\n"],
    ids=["no newline", "JSON cut", "not JSON"],
)
def test_an_answer_whose_json_does_not_end_before_the_bytes_is_one_sentence(scripted, body):
    client = ExchangeClient(scripted((200, body, INLINE)).url, "nbx_token", retries=0)
    with pytest.raises(ServiceError, match=r"Could not fetch feedback: the answer .* is damaged"):
        client.get_with_files("feedback?inline=true", what="fetch feedback")


@pytest.mark.parametrize(
    "at",
    [1, 40, -8, True, "0", 2.5],
    ids=["one byte on", "past the end", "negative", "a boolean", "a string", "a fraction"],
)
def test_bytes_not_where_the_entry_says_are_damaged_and_leave_nothing(scripted, tmp_path, at):
    data = b"<p>a</p>"
    body = _after_json({"feedback/a.html": data})
    body = body.replace(b'"content_at": 0', b'"content_at": ' + json.dumps(at).encode())
    client = ExchangeClient(scripted((200, body, INLINE)).url, "nbx_token", retries=0)
    [feedback] = client.get_with_files("feedback?inline=true", what="fetch feedback")
    with pytest.raises(ServiceError, match=r"feedback/a.html.*is damaged"):
        client.download_bundle(feedback["files"], tmp_path, what="fetch feedback")
    assert list(tmp_path.rglob("*")) in ([], [tmp_path / "feedback"])


def test_other_bytes_after_the_json_are_damaged(scripted, tmp_path):
    body = _after_json({"a.html": b"<p>a</p>"})
    client = ExchangeClient(scripted((200, body[:-2] + b"!>", INLINE)).url, "nbx_token", retries=0)
    [feedback] = client.get_with_files("feedback?inline=true", what="fetch feedback")
    with pytest.raises(ServiceError, match=r"a.html.*is damaged"):
        client.download_bundle(feedback["files"], tmp_path, what="fetch feedback")
    assert list(tmp_path.iterdir()) == []
