"""Uploads whose archive is read from the request body as it arrives (the plugin's form:
fields, manifest, ``archive_last=true``, then the archive): nothing spooled first, and an
upload that fails half-way (the client goes away, bytes that do not match, a bomb, a file
not in the manifest) records nothing and leaves no blob nor temporary file behind. Forms
without the promise (older clients) take the spooled path and still work."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest

from api.views.uploads import UPLOAD_OVERHEAD
from courses import blobstore
from nbgrader_exchange.transfer import MultipartBody
from tests.harness.uploads import manifest_of, recorded_rows, tar_gz

SUBMIT = "/api/v1/courses/phys101/assignments/ps1/submissions"
# Over FILE_UPLOAD_MAX_MEMORY_SIZE (2 MiB): Django's parser would spool it to disk.
BIG = {"data.bin": os.urandom(3 * 1024 * 1024), "ps1.ipynb": b'{"cells": ["sam v3"]}'}

pytestmark = pytest.mark.storage


@pytest.fixture
def sam(people, released, client_for, backend):
    return client_for(people["sam"])


@pytest.fixture
def spool_dir(settings, tmp_path) -> Path:
    """Where Django's parser would write a spooled file part."""
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "spool")
    (tmp_path / "spool").mkdir()
    return tmp_path / "spool"


def _plugin_body(manifest: list[dict], archive: bytes) -> tuple[bytes, str]:
    """The body the plugin sends (its own MultipartBody)."""
    body = MultipartBody({"manifest": json.dumps(manifest)}, io.BytesIO(archive), None)
    return b"".join(body), body.content_type


def _form(parts: list[tuple[str, bytes, str | None]]) -> tuple[bytes, str]:
    """A multipart body with its parts in the order given: (name, value, filename)."""
    boundary = "f0rmb0undary"
    out = io.BytesIO()
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out.write(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode())
        out.write(value + b"\r\n")
    out.write(f"--{boundary}--\r\n".encode())
    return out.getvalue(), f"multipart/form-data; boundary={boundary}"


def _post(client, body: bytes, content_type: str, **extra):
    return client.generic("POST", SUBMIT, body, content_type=content_type, **extra)


def _temp_files() -> list[str]:
    """Files an upload left in the staging directory."""
    directory = blobstore.staging_dir()
    return sorted(p.name for p in directory.iterdir() if p.is_file()) if directory.is_dir() else []


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _spied_stage(monkeypatch, spool_dir: Path) -> list[list[str]]:
    """What the spool directory holds while each member is written to the blob store."""
    seen: list[list[str]] = []
    stage_checked = blobstore.stage_checked

    def spy(stream, **kwargs):
        seen.append(sorted(p.name for p in spool_dir.iterdir() if p.is_file()))
        return stage_checked(stream, **kwargs)

    monkeypatch.setattr(blobstore, "stage_checked", spy)
    return seen


def test_plugin_upload_is_stored_without_spooling_the_body(sam, spool_dir, monkeypatch):
    seen = _spied_stage(monkeypatch, spool_dir)
    body, content_type = _plugin_body(manifest_of(BIG), tar_gz(BIG))
    response = _post(sam, body, content_type)
    assert response.status_code == 201, response.content
    assert seen == [[], []]  # both members stored while no spooled copy of the body existed
    for data in BIG.values():
        with blobstore.open_blob(_sha(data)) as handle:
            assert handle.read() == data
    assert _temp_files() == []


def test_archive_before_the_manifest_is_spooled_and_accepted(sam, spool_dir, monkeypatch):
    """An older client's order: the archive first. The server spools it, as before."""
    seen = _spied_stage(monkeypatch, spool_dir)
    body, content_type = _form(
        [
            ("archive", tar_gz(BIG), "bundle.tar.gz"),
            ("manifest", json.dumps(manifest_of(BIG)).encode(), None),
        ]
    )
    response = _post(sam, body, content_type)
    assert response.status_code == 201, response.content
    assert [len(files) for files in seen] == [1, 1]  # the spooled archive
    with blobstore.open_blob(_sha(BIG["data.bin"])) as handle:
        assert handle.read() == BIG["data.bin"]
    assert _temp_files() == []


def test_small_archive_without_the_promise_stays_in_memory(sam, spool_dir, monkeypatch):
    seen = _spied_stage(monkeypatch, spool_dir)
    files = {"ps1.ipynb": b'{"cells": ["small"]}'}
    body, content_type = _form(
        [
            ("manifest", json.dumps(manifest_of(files)).encode(), None),
            ("archive", tar_gz(files), "bundle.tar.gz"),
        ]
    )
    assert _post(sam, body, content_type).status_code == 201
    assert seen == [[]]


def test_a_field_after_a_promised_last_archive_is_refused(sam):
    before = recorded_rows()
    files = {"ps1.ipynb": b'{"cells": ["late"]}'}
    body, content_type = _form(
        [
            ("manifest", json.dumps(manifest_of(files)).encode(), None),
            ("archive_last", b"true", None),
            ("archive", tar_gz(files), "bundle.tar.gz"),
            ("scores", b"[]", None),
        ]
    )
    response = _post(sam, body, content_type)
    assert response.status_code == 400, response.content
    assert "'scores' comes after the archive" in response.json()["detail"]
    assert recorded_rows() == before


def _refused_leaving_nothing(sam, body: bytes, content_type: str, status: int, code: str, **extra):
    before = recorded_rows()
    response = _post(sam, body, content_type, **extra)
    assert response.status_code == status, response.content
    assert response.json()["error"] == code
    assert recorded_rows() == before
    assert _temp_files() == []
    return response.json()["detail"]


def test_client_going_away_mid_body_records_nothing_and_leaves_no_file(sam):
    files = {"data.bin": os.urandom(3 * 1024 * 1024)}
    body, content_type = _plugin_body(manifest_of(files), tar_gz(files))
    cut = body[: len(body) // 2]
    detail = _refused_leaving_nothing(
        sam,
        cut,
        content_type,
        400,
        "bad_archive",
        CONTENT_LENGTH=str(len(body)),
        **{"wsgi.input": io.BytesIO(cut)},
    )
    assert "data.bin" in detail
    assert not blobstore.exists(_sha(files["data.bin"]))


def test_bytes_that_do_not_match_the_manifest_leave_no_blob(sam):
    files = {"data.bin": os.urandom(3 * 1024 * 1024)}
    manifest = manifest_of(files)
    manifest[0]["sha256"] = _sha(b"other bytes")
    body, content_type = _plugin_body(manifest, tar_gz(files))
    detail = _refused_leaving_nothing(sam, body, content_type, 400, "bad_archive")
    assert "does not match the manifest" in detail
    assert not blobstore.exists(_sha(files["data.bin"]))


def test_member_not_in_the_manifest_leaves_no_blob(sam):
    listed = {"ps1.ipynb": b'{"cells": ["listed"]}'}
    extra = {"extra.bin": os.urandom(1024 * 1024)}
    body, content_type = _plugin_body(manifest_of(listed), tar_gz(extra))
    detail = _refused_leaving_nothing(sam, body, content_type, 400, "bad_archive")
    assert "extra.bin" in detail
    assert not blobstore.exists(_sha(extra["extra.bin"]))


def test_gzip_bomb_stops_at_the_limit_and_leaves_nothing(sam, settings):
    """64 MiB of zeros in a 64 KiB archive, listed in the manifest with a small size."""
    settings.EXCHANGE_MAX_FILE_SIZE = 1024 * 1024
    bomb = {"zeros.bin": bytes(64 * 1024 * 1024)}
    archive = tar_gz(bomb)
    assert len(archive) < 1024 * 1024
    manifest = [{"path": "zeros.bin", "size": 1000, "sha256": _sha(b"x")}]
    detail = _refused_leaving_nothing(sam, *_plugin_body(manifest, archive), 413, "too_large")
    assert "zeros.bin" in detail


def test_upload_announcing_more_than_the_limit_is_413_before_reading(sam, settings):
    settings.EXCHANGE_MAX_BUNDLE_SIZE = 1024**3
    files = {"ps1.ipynb": b"{}"}
    body, content_type = _plugin_body(manifest_of(files), tar_gz(files))
    # The body is never read: a stream that fails on reading proves it.
    unreadable = io.BytesIO()
    unreadable.read = None  # type: ignore[method-assign]
    _refused_leaving_nothing(
        sam,
        body,
        content_type,
        413,
        "too_large",
        CONTENT_LENGTH=str(1024**3 + UPLOAD_OVERHEAD + 1),
        **{"wsgi.input": unreadable},
    )


def test_a_malformed_form_is_400_and_records_nothing(sam):
    before = recorded_rows()
    response = _post(sam, b"--x\r\n\r\n", "multipart/form-data; boundary=")
    assert response.status_code == 400, response.content
    assert recorded_rows() == before


def test_an_empty_form_says_what_is_missing(sam):
    response = _post(sam, b"", "multipart/form-data; boundary=abc")
    assert response.status_code == 400
    assert "manifest" in response.json()["detail"]


def test_too_many_or_too_large_fields_are_refused(sam, settings):
    before = recorded_rows()
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 3
    body, content_type = _form([(f"f{i}", b"x", None) for i in range(5)])
    assert _post(sam, body, content_type).status_code == 400
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    body, content_type = _form([("manifest", b"[" + b" " * 20 + b"]", None)])
    response = _post(sam, body, content_type)
    assert response.status_code == 413, response.content
    assert response.json()["error"] == "too_large"
    assert recorded_rows() == before


def test_a_part_without_a_name_is_skipped(sam):
    files = {"ps1.ipynb": b'{"cells": ["unnamed part"]}'}
    body, content_type = _plugin_body(manifest_of(files), tar_gz(files))
    boundary = content_type.split("boundary=")[1].encode()
    stray = b"--" + boundary + b"\r\nContent-Type: text/plain\r\n\r\nstray\r\n"
    response = _post(sam, stray + body, content_type)
    assert response.status_code == 201, response.content


def test_the_live_archive_is_read_in_pieces_and_drained_on_close(sam, monkeypatch):
    """A refused upload stops reading the archive; closing it reads the rest of the body."""
    from api import upload_parser

    archives = []
    real = upload_parser.LiveArchive

    class Kept(real):
        def __init__(self, *args):
            super().__init__(*args)
            archives.append(self)

    monkeypatch.setattr(upload_parser, "LiveArchive", Kept)
    files = {"data.bin": os.urandom(1024 * 1024)}
    manifest = manifest_of(files)
    manifest[0]["sha256"] = _sha(b"other")
    body, content_type = _plugin_body(manifest, tar_gz(files))
    assert _post(sam, body, content_type).status_code == 400
    (archive,) = archives
    with pytest.raises(ValueError, match="needs a size"):
        archive.read(-1)
    assert archive.read(10) == b""  # closed at the end of the request, the body read
