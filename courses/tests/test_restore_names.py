"""Restore checks every name a backup gives before it writes a file: a hostile manifest
cannot make it write outside its temporary folder."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from courses import backup


def hostile_archive(path: Path, manifest_edit, members: dict[str, bytes]) -> Path:
    manifest = {
        "format": backup.FORMAT,
        "version": backup.VERSION,
        "migrations": {},
        "tables": [],
        "blobs": {"count": 0, "bytes": 0, "sha256": []},
    }
    manifest_edit(manifest)
    entries = {backup.MANIFEST: json.dumps(manifest).encode(), **members}
    with tarfile.open(path, "w") as archive:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def test_a_table_name_that_climbs_out_of_the_temporary_folder_writes_nothing(db, tmp_path):
    target = tmp_path / "outside" / "pwned"
    target.parent.mkdir()
    payload = b'{"model": "courses.course", "pk": 1, "fields": {}}\n'
    climbing = "../" * 40 + str(target).lstrip("/")
    table = {
        "model": climbing,
        "file": "db/courses.course.jsonl",
        "rows": 1,
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    archive = hostile_archive(
        tmp_path / "hostile.tar",
        lambda m: m["tables"].append(table),
        {"db/courses.course.jsonl": payload},
    )
    with pytest.raises(backup.BackupError) as refused:
        backup.restore(source=archive)
    assert list(target.parent.iterdir()) == []  # no pwned.jsonl next to the target
    assert "not a model name" in refused.value.detail


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.update(tables="x"), "lacks its list of tables"),
        (lambda m: m["blobs"].update(sha256={}), "lacks its list of tables"),
        (lambda m: m.update(migrations={"courses": "0001"}), "lacks its list"),
        (lambda m: m["tables"].append("courses.course"), "without a model name"),
        (lambda m: m["tables"].append({"model": "Courses/Course"}), "not a model name"),
        (
            lambda m: m["tables"].append(
                {"model": "courses.course", "file": "../../x", "rows": 0, "sha256": "0" * 64}
            ),
            "it must be db/courses.course.jsonl",
        ),
        (
            lambda m: m["tables"].extend(
                [
                    {
                        "model": "courses.course",
                        "file": "db/courses.course.jsonl",
                        "rows": 0,
                        "sha256": "0" * 64,
                    }
                ]
                * 2
            ),
            "twice",
        ),
        (
            lambda m: m["tables"].append(
                {
                    "model": "courses.course",
                    "file": "db/courses.course.jsonl",
                    "rows": 0,
                    "sha256": "../x",
                }
            ),
            "no valid SHA-256",
        ),
        (
            lambda m: m["tables"].append(
                {
                    "model": "courses.course",
                    "file": "db/courses.course.jsonl",
                    "rows": True,
                    "sha256": "0" * 64,
                }
            ),
            "no valid row count",
        ),
        (lambda m: m["blobs"]["sha256"].append("../../../etc/passwd"), "not SHA-256 hashes"),
        (lambda m: m["blobs"]["sha256"].append(7), "not SHA-256 hashes"),
    ],
)
def test_every_name_and_number_in_the_manifest_is_checked(db, tmp_path, edit, message):
    archive = hostile_archive(tmp_path / "bad.tar", edit, {})
    with pytest.raises(backup.BackupError, match=message):
        backup.restore(source=archive)


def test_a_manifest_that_is_not_an_object_is_refused(db, tmp_path):
    path = tmp_path / "list.tar"
    data = b"[1, 2]"
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo(backup.MANIFEST)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    with pytest.raises(backup.BackupError, match="not an exchange backup"):
        backup.restore(source=path)
