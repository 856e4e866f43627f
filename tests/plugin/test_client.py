"""The HTTP client on its own: retries, errors, downloads that check every byte, dedup both
ways, progress. Against the live server; a small scripted HTTP server injects failures."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from nbgrader_exchange import transfer
from nbgrader_exchange.client import ExchangeClient, ServiceError
from nbgrader_exchange.files import entry_from_bytes, local_path, scan_directory
from nbgrader_exchange.transfer import BlobCache, DownloadStats, MultipartBody, Progress
from tests.harness import REPO
from tests.harness.ports import free_port

COURSE = "client101"
INES, SAM = "client-ines", "client-sam"


def quick_client(url: str, **kwargs: Any) -> ExchangeClient:
    return ExchangeClient(url, "nbx_token", retries=2, backoff=0.01, **kwargs)


# --- retries and errors ----------------------------------------------------------------------


def test_a_safe_request_is_retried_on_503_then_succeeds(scripted):
    server = scripted((503, {}), (502, b"bad gateway"), (200, {"username": "sam"}))
    client = quick_client(server.url)
    assert client.get("me", what="ask who I am") == {"username": "sam"}
    assert len(server.requests) == 3
    assert server.requests[0].headers["Authorization"] == "token nbx_token"


def test_a_post_that_reached_the_server_is_not_repeated(scripted):
    server = scripted((503, {"error": "unavailable", "detail": "Database down."}))
    client = quick_client(server.url)
    with pytest.raises(ServiceError) as caught:
        client.post("courses/x/assignments/y/submissions", {}, what="submit y")
    assert len(server.requests) == 1
    assert str(caught.value) == (
        f"Could not submit y: the exchange server at {server.url} is unavailable (HTTP 503); "
        "try again in a moment: Database down."
    )
    assert caught.value.status == 503


@pytest.mark.parametrize(
    ("answer", "sentence"),
    [
        ((429, b"", {"Retry-After": "30"}), "said: too many requests; try again in 30 seconds."),
        (
            (429, {"error": "rate_limited", "detail": "Slow down."}, {"Retry-After": "7"}),
            "said: Slow down; try again in 7 seconds.",
        ),
        ((429, b""), "said: too many requests."),
    ],
    ids=["proxy-without-body", "detail-without-the-wait", "no-retry-after"],
)
def test_a_429_is_one_sentence_with_the_wait_and_never_retried(scripted, answer, sentence):
    """From a proxy or an older server too; even a safe request is not repeated."""
    server = scripted(answer, (200, {}))
    with pytest.raises(ServiceError) as caught:
        quick_client(server.url).get("courses", what="list courses")
    assert str(caught.value) == (
        f"Could not list courses now: the exchange server at {server.url} {sentence}"
    )
    assert caught.value.status == 429
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        (("cut", b'{"user'), "could not be reached (ChunkedEncodingError)"),
        (("stall", b'{"user'), "is not reachable (the connection failed)"),
        ((200, b"not gzip", {"Content-Encoding": "gzip"}), "(ContentDecodingError)"),
    ],
    ids=["cut-off", "stalled", "undecodable"],
)
def test_a_json_answer_that_breaks_while_read_is_retried_then_one_sentence(
    scripted, broken, reason
):
    server = scripted(broken, (200, {"username": "sam"}))
    client = ExchangeClient(server.url, "nbx_token", retries=2, backoff=0.01, timeout=0.3)
    assert client.get("me", what="ask who I am") == {"username": "sam"}
    assert len(server.requests) == 2
    server = scripted(broken, broken)
    client = ExchangeClient(server.url, "nbx_token", retries=1, backoff=0.01, timeout=0.3)
    with pytest.raises(ServiceError) as caught:
        client.get("me", what="ask who I am")
    assert f"Could not ask who I am: the exchange server at {server.url} " in str(caught.value)
    assert reason in str(caught.value)


def test_retries_give_up_with_the_last_answer(scripted):
    server = scripted((504, b""), (504, b""), (504, b""))
    with pytest.raises(ServiceError, match="unavailable \\(HTTP 504\\)"):
        quick_client(server.url).get("courses", what="list courses")
    assert len(server.requests) == 3


def test_a_request_that_never_left_is_retried_whatever_its_method():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceError) as caught:
        quick_client(url).post("x", {}, what="submit ps1")
    assert str(caught.value).startswith(
        f"Could not submit ps1: the exchange server at {url} is not reachable (connection refused)."
    )


def test_an_error_without_json_names_the_status(scripted):
    server = scripted((500, b"<html>oops</html>"))
    with pytest.raises(ServiceError) as caught:
        quick_client(server.url).post("x", {}, what="collect ps1")
    assert str(caught.value) == (
        f"Could not collect ps1: the exchange server at {server.url} answered 500."
    )


def test_a_page_that_is_not_the_service_is_a_clear_error(scripted):
    server = scripted((200, b"<html>JupyterHub</html>"))
    with pytest.raises(ServiceError, match="not the exchange service's JSON"):
        quick_client(server.url).get("courses", what="list courses")


def test_no_url_is_a_clear_error():
    with pytest.raises(ServiceError, match="No exchange server is configured"):
        ExchangeClient("", "token")


def test_a_url_may_already_name_the_api(scripted):
    server = scripted((200, []))
    client = quick_client(server.url + "/api/v1/")
    assert client.get("courses", what="list") == []
    assert server.requests[0].path == "/api/v1/courses"


def test_a_damaged_download_is_refused_and_leaves_nothing(scripted, tmp_path):
    server = scripted((200, b"not what was promised"))
    client = quick_client(server.url)
    entry = {"path": "a/b.txt", "size": 5, "sha256": "0" * 64, "url": f"{server.url}/f/1"}
    with pytest.raises(ServiceError, match="is damaged"):
        client.download_bundle([entry], tmp_path, what="fetch ps1")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def hello_at(url: str) -> dict[str, Any]:
    """The manifest entry of a file ``h.txt`` holding ``hello``, to download from ``url``."""
    return {"path": "h.txt", "size": 5, "sha256": hashlib.sha256(b"hello").hexdigest(), "url": url}


def test_the_token_is_never_sent_to_another_host(scripted, tmp_path):
    storage = scripted((200, b"hello"))
    api = scripted()
    client = ExchangeClient(api.url, "nbx_secret")
    entry = hello_at(storage.url + "/bucket/blob")
    client.download_bundle([entry], tmp_path, what="fetch")
    assert (tmp_path / "h.txt").read_bytes() == b"hello"
    assert "Authorization" not in storage.requests[0].headers


def test_a_netrc_entry_never_replaces_the_token_nor_goes_to_storage(
    scripted, tmp_path, monkeypatch
):
    """A student's ``~/.netrc`` naming the exchange's host (and a default entry) changes
    nothing: the API gets the token, the store and a redirect's target get no credentials."""
    netrc = tmp_path / "netrc"
    netrc.write_text(
        "machine 127.0.0.1 login alice password secret\ndefault login bob password x\n"
    )
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    storage = scripted((200, b"hello"), (200, {"moved": True}))
    api = scripted((200, {"username": "sam"}), (302, b"", {"Location": storage.url + "/moved"}))
    client = ExchangeClient(api.url, "nbx_secret")
    assert client.get("me", what="ask who I am") == {"username": "sam"}
    client.download_bundle([hello_at(storage.url + "/bucket/blob")], tmp_path / "f", what="fetch")
    assert client.get("elsewhere", what="follow a redirect") == {"moved": True}
    assert api.requests[0].headers["Authorization"] == "token nbx_secret"
    assert [r.headers.get("Authorization") for r in storage.requests] == [None, None]
    assert (tmp_path / "f" / "h.txt").read_bytes() == b"hello"


def test_the_environments_proxy_is_used_for_every_request_and_no_proxy_respected(
    scripted, tmp_path, monkeypatch
):
    """The proxy settings are read once per origin (not on every request), and still
    decide every request: the API through the proxy, the storage host named in NO_PROXY
    directly."""
    proxy = scripted((200, {"username": "sam"}), (200, {"username": "sam"}))
    storage = scripted((200, b"hello"))
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client = ExchangeClient("http://exchange.example", "nbx_secret")
    for _ in range(2):
        assert client.get("me", what="ask who I am") == {"username": "sam"}
    assert [r.path for r in proxy.requests] == ["http://exchange.example/api/v1/me"] * 2
    entry = hello_at(storage.url + "/bucket/blob")
    client.download_bundle([entry], tmp_path, what="fetch")
    assert [r.path for r in storage.requests] == ["/bucket/blob"]
    assert len(proxy.requests) == 2


def test_a_download_that_breaks_off_is_retried(scripted, tmp_path):
    server = scripted(("cut", b"hel"), (200, b"hello"))
    entry = hello_at(f"{server.url}/f")
    with quick_client(server.url) as client:
        client.download_bundle([entry], tmp_path)
    assert (tmp_path / "h.txt").read_bytes() == b"hello"
    assert len(server.requests) == 2


def test_a_download_that_keeps_breaking_off_is_one_sentence(scripted, tmp_path):
    server = scripted(("cut", b"h"), ("cut", b"h"), ("cut", b"h"))
    entry = {"path": "h.txt", "size": 5, "sha256": "0" * 64, "url": f"{server.url}/f"}
    with pytest.raises(ServiceError, match=r"the download of 'h\.txt' from the exchange server"):
        quick_client(server.url).download_bundle([entry], tmp_path, what="fetch ps1")
    assert list(tmp_path.iterdir()) == []


def test_reasons_read_as_plain_words():
    import requests

    from nbgrader_exchange.errors import failure_reason, never_sent

    assert never_sent(requests.ConnectTimeout())
    assert not never_sent(requests.ReadTimeout())
    assert failure_reason(requests.ConnectTimeout()).endswith("(connection timed out)")
    assert failure_reason(requests.ReadTimeout()) == "did not answer in time"
    assert failure_reason(requests.ConnectionError("Name or service not known")) == (
        "is not reachable (unknown host name)"
    )
    assert failure_reason(requests.ConnectionError("reset by peer")) == (
        "is not reachable (the connection failed)"
    )
    assert failure_reason(requests.TooManyRedirects()) == "could not be reached (TooManyRedirects)"


def test_blob_cache_offers_local_files_and_follows_moves(tmp_path):
    cache = BlobCache()
    cache.add_directory(tmp_path / "missing")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.txt").write_text("x")
    cache.add_directory(tmp_path / "a")
    sha = hashlib.sha256(b"x").hexdigest()
    assert cache.get(sha) == tmp_path / "a" / "x.txt"
    (tmp_path / "a").rename(tmp_path / "b")
    assert sha not in cache
    cache.moved(tmp_path / "a", tmp_path / "b", [tmp_path / "a" / "x.txt"])
    assert cache.get(sha) == tmp_path / "b" / "x.txt"


def test_a_collect_reuses_the_files_it_moved_into_place(clients, tmp_path):
    """As ``nbgrader collect`` does for each student (``download_into_place``): download
    into a staging directory, rename it into place, tell the cache. A file that the next
    student also handed in is copied from the first student's collected copy, not downloaded
    again, and what the cache held elsewhere stays where it was. (``bench.collect_cache``
    times the bookkeeping for 2000 students.)"""
    ines = clients[INES]
    shared = os.urandom(20_000)
    files = [entry_from_bytes("ps1.ipynb", b"{}"), entry_from_bytes("data/shared.bin", shared)]
    url = f"courses/{COURSE}/assignments/moves/release"
    ines.upload_bundle(url, files, what="release", fields={"force": "true"})
    manifest = ines.get(f"{url}/files", what="files")["files"]
    cache, stats = BlobCache(), DownloadStats()
    elsewhere = tmp_path / "release" / "other.txt"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"not moved")
    cache.add(hashlib.sha256(b"not moved").hexdigest(), elsewhere)

    dest = tmp_path / "s1" / "ps1"
    dest.parent.mkdir()
    ines.download_into_place(
        manifest, dest, what="collect", cache=cache, stats=stats, also={"timestamp.txt": "t"}
    )
    assert sorted(p.name for p in dest.parent.iterdir()) == ["ps1"]  # no staging left
    assert (dest / "timestamp.txt").read_text() == "t"
    assert cache.get(hashlib.sha256(shared).hexdigest()) == dest / "data" / "shared.bin"
    assert cache.get(hashlib.sha256(b"not moved").hexdigest()) == elsewhere

    ines.download_bundle(
        manifest, tmp_path / "s2" / "ps1", what="collect", cache=cache, stats=stats
    )
    assert (stats.downloaded_files, stats.reused_files) == (2, 2)
    assert (tmp_path / "s2" / "ps1" / "data" / "shared.bin").read_bytes() == shared


def test_unsafe_paths_from_a_server_are_refused(tmp_path):
    for bad in ("../escape", "/etc/passwd", "a/../../b", ""):
        with pytest.raises(ServiceError, match="unsafe file path"):
            local_path(tmp_path, bad)
    assert local_path(tmp_path, "a/b.txt") == tmp_path / "a" / "b.txt"


# --- local files -----------------------------------------------------------------------------


def test_a_path_that_starts_over_on_another_drive_is_refused_on_windows(monkeypatch):
    from pathlib import PureWindowsPath

    from nbgrader_exchange import files

    monkeypatch.setattr(files, "Path", PureWindowsPath)  # the plugin as Windows joins paths
    root = PureWindowsPath("C:/Users/ines/course/submitted/sam/ps1")
    assert files.local_path(root, "data/a.csv") == root / "data" / "a.csv"
    with pytest.raises(ServiceError, match="unsafe file path 'data/D:x'"):
        files.local_path(root, "data/D:x")


def test_scan_directory_follows_nbgraders_rules(tmp_path):
    (tmp_path / "sub" / "__pycache__").mkdir(parents=True)
    (tmp_path / "sub" / "__pycache__" / "x.pyc").write_bytes(b"x")
    (tmp_path / "sub" / "keep.py").write_text("print(1)\n")
    (tmp_path / "notes.md").write_text("notes")
    (tmp_path / "big.ipynb").write_bytes(b"{" * 3000)
    (tmp_path / "a.ipynb").write_text("{}")
    (tmp_path / "stale.pyc").write_bytes(b"x")
    os.symlink("/nonexistent", tmp_path / "dangling.ipynb")
    skipped: list[tuple[str, str]] = []
    files = scan_directory(
        tmp_path,
        exclude=["__pycache__", "*.pyc"],
        include=["*.ipynb", "*.py"],
        max_file_size=2000,
        on_skip=lambda path, reason: skipped.append((path, reason)),
    )
    assert [f.path for f in files] == ["a.ipynb", "sub/keep.py"]
    assert files[1].sha256 == hashlib.sha256(b"print(1)\n").hexdigest()
    assert sorted(skipped) == [
        ("big.ipynb", "too large"),
        ("dangling.ipynb", "not a regular file"),
        ("notes.md", "not included"),
        ("stale.pyc", "excluded"),
        ("sub/__pycache__", "excluded"),
    ]


def test_multipart_body_streams_and_rewinds(tmp_path):
    body = MultipartBody({"manifest": "[]"}, None, None)
    first = b"".join(body)
    body.reset()
    assert b"".join(body) == first
    assert len(first) == len(body)
    assert body.content_type.startswith("multipart/form-data; boundary=")


def test_progress_is_reported_only_for_large_transfers():
    lines: list[str] = []
    Progress("Uploaded", 1000, lines.append, threshold=10_000).add(1000)
    assert lines == []
    progress = Progress("Uploaded", 20_000_000, lines.append, threshold=10_000)
    for _ in range(20):
        progress.add(1_000_000)
    assert lines[0] == "Uploaded 2.0 of 20.0 MB (10%)"
    assert lines[-1] == "Uploaded 20.0 of 20.0 MB (100%)"
    assert len(lines) == 10


# --- against the live server -----------------------------------------------------------------


@pytest.fixture(scope="module")
def clients(service) -> dict[str, ExchangeClient]:
    tokens = service.tokens(INES, SAM)
    service.create_course(COURSE, INES, [SAM])
    return {
        name: ExchangeClient(service.url, tokens[name], progress_threshold=1_000_000)
        for name in (INES, SAM)
    }


def test_upload_and_download_a_large_bundle_with_progress_and_dedup(clients, tmp_path):
    lines: list[str] = []
    ines, sam = clients[INES], clients[SAM]
    ines.report = sam.report = lines.append
    data = os.urandom(1_500_000)
    files = [
        entry_from_bytes("ps1.ipynb", b"{}"),
        entry_from_bytes("data/big.bin", data),
        entry_from_bytes("data/copy.bin", data),
    ]
    url = f"courses/{COURSE}/assignments/big/release"
    released = ines.upload_bundle(url, files, what="release big", fields={"force": "true"})
    assert released["file_count"] == 3
    assert any(line.startswith("Uploaded") and line.endswith("(100%)") for line in lines)

    manifest = sam.get(f"{url}/files", what="fetch big")
    stats = DownloadStats()
    cache = BlobCache()
    sam.download_bundle(manifest["files"], tmp_path / "one", what="fetch", cache=cache, stats=stats)
    sam.download_bundle(manifest["files"], tmp_path / "two", what="fetch", cache=cache, stats=stats)
    # Three files twice over; the two distinct contents are downloaded once each.
    assert (stats.files, stats.downloaded_files, stats.reused_files) == (6, 2, 4)
    assert (tmp_path / "two" / "data" / "copy.bin").read_bytes() == data
    assert any(line.startswith("Downloaded") for line in lines)

    # A submission that hands the release back unchanged sends only the new notebook.
    answer = entry_from_bytes("ps1.ipynb", b'{"answer": 42}')
    known = {f["sha256"] for f in manifest["files"]}
    lines.clear()
    submission = sam.upload_bundle(
        f"courses/{COURSE}/assignments/big/submissions",
        [answer, *files[1:]],
        what="submit big",
        known_shas=known,
    )
    assert submission["file_count"] == 3
    assert not any(line.startswith("Uploaded") for line in lines)


def test_a_small_upload_needs_no_temporary_directory_a_large_one_spills_to_it(
    clients, tmp_path, monkeypatch
):
    """A submission's notebooks are archived in memory: a student whose temporary directory
    is gone or full still submits. An archive over ``SPOOL_IN_MEMORY`` goes to disk (it
    fails here, with the directory gone) and, with a directory, arrives whole."""
    ines = clients[INES]
    url = f"courses/{COURSE}/assignments/spooled/release"
    small = [entry_from_bytes("ps1.ipynb", os.urandom(200_000))]
    large = [entry_from_bytes("data.bin", os.urandom(300_000))]
    monkeypatch.setattr(transfer, "SPOOL_IN_MEMORY", 250_000)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "gone"))
    assert (
        ines.upload_bundle(url, small, what="release", fields={"force": "true"})["file_count"] == 1
    )
    with pytest.raises(FileNotFoundError):
        ines.upload_bundle(url, large, what="release", fields={"force": "true"})

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert (
        ines.upload_bundle(url, large, what="release", fields={"force": "true"})["file_count"] == 1
    )
    manifest = ines.get(f"{url}/files", what="files")["files"]
    ines.download_bundle(manifest, tmp_path / "back", what="fetch", cache=BlobCache())
    assert (tmp_path / "back" / "data.bin").read_bytes() == large[0].open().read()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back"]  # the spool is gone


def test_an_upload_is_resent_whole_when_the_server_lacks_a_known_file(clients):
    ines, sam = clients[INES], clients[SAM]
    url = f"courses/{COURSE}/assignments/resend"
    ines.upload_bundle(f"{url}/release", [entry_from_bytes("a.txt", b"a")], what="release")
    fresh = entry_from_bytes("ps1.ipynb", os.urandom(64))
    submission = sam.upload_bundle(
        f"{url}/submissions",
        [fresh],
        what="submit big",
        known_shas={fresh.sha256},
    )
    assert submission["file_count"] == 1


def test_the_plugin_never_imports_django():
    code = (
        "import sys, nbgrader_exchange\n"
        "from nbgrader_exchange import client, errors, files, transfer, exchange, list, submit\n"
        "from nbgrader_exchange import collect\n"
        "from nbgrader_exchange import fetch_assignment, fetch_feedback\n"
        "from nbgrader_exchange import release_assignment, release_feedback\n"
        "print('django' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(REPO), env=env, capture_output=True, text=True
    )
    assert done.stdout.strip() == "False", done.stderr
