"""Several submissions downloaded at once, as ``nbgrader collect`` does
(``collect_submissions_at_once``): a file two of them hold is still downloaded once, and
each lands whole in its own directory."""

from __future__ import annotations

import hashlib
import os
import threading

from nbgrader_exchange.client import ExchangeClient
from nbgrader_exchange.parallel import at_most
from nbgrader_exchange.transfer import BlobCache, DownloadStats
from tests.harness.jsonserver import JsonServer, Request


def entry(path: str, data: bytes, url: str) -> dict:
    return {
        "path": path,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "url": url,
    }


def test_a_file_two_submissions_hold_is_downloaded_once_while_both_download(tmp_path):
    shared = os.urandom(300_000)  # the same data file handed in by both, not in release/
    own = {"a": b"a's notebook", "b": b"b's notebook"}
    both_asked = {"a": threading.Event(), "b": threading.Event()}

    def respond(request: Request):
        name = request.route.rsplit("/", 1)[-1]
        if name == "shared":
            # Answered only once both submissions' downloads are under way (or after 3 s):
            # the other one must wait for this download, not start its own.
            for asked in both_asked.values():
                asked.wait(3)
            return 200, shared
        both_asked[name].set()
        return 200, own[name]

    bundles = {
        student: [
            entry("ps1/data.bin", shared, "/files/shared"),
            entry("ps1/answer.ipynb", own[student], f"/files/{student}"),
        ]
        for student in own
    }
    cache, stats = BlobCache(), DownloadStats()
    with JsonServer(respond) as server, ExchangeClient(server.url, "t", workers=2) as client:

        def collect(student: str) -> None:
            (tmp_path / student).mkdir()
            client.download_into_place(
                bundles[student],
                tmp_path / student / "ps1",
                what="collect",
                cache=cache,
                stats=stats,
            )

        assert at_most(own, collect, at_once=2) is None
        asked = [r.route for r in server.requests]

    assert asked.count("/files/shared") == 1
    assert sorted(asked) == ["/files/a", "/files/b", "/files/shared"]
    for student, data in own.items():
        folder = tmp_path / student / "ps1"
        assert (folder / "ps1" / "data.bin").read_bytes() == shared
        assert (folder / "ps1" / "answer.ipynb").read_bytes() == data
        assert sorted(p.name for p in folder.iterdir()) == ["ps1"]  # no staging left over
    assert (stats.files, stats.downloaded_files, stats.reused_files) == (4, 3, 1)


def test_a_file_whose_download_elsewhere_failed_is_downloaded_here(tmp_path):
    data = os.urandom(1000)
    files = [entry("data.bin", data, "/files/data")]
    sha = files[0]["sha256"]
    cache, stats = BlobCache(), DownloadStats()
    with JsonServer(lambda request: (200, data)) as server, ExchangeClient(server.url, "t") as c:
        assert cache.claim(sha) is None  # another submission's download holds it
        waiting = threading.Thread(
            target=c.download_bundle,
            args=(files, tmp_path),
            kwargs={"cache": cache, "stats": stats},
        )
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and server.requests == []  # waits for the other one
        cache.settle(sha)  # which failed: nothing was added to the cache
        waiting.join(10)
        assert [r.route for r in server.requests] == ["/files/data"]
    assert (tmp_path / "data.bin").read_bytes() == data
    assert stats.downloaded_files == 1
