"""Files with user data are private: blobs, temporary uploads, backups, roster exports and
the SQLite database are 0600 and their directories 0700, even under a umask of 022."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db.utils import ConnectionHandler

from courses import backup, blobstore, services
from courses.filemodes import make_private_dir
from tests.harness.uploads import make_upload


def mode(path: Path | str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def open_umask():
    """The umask a container usually has: without explicit modes, files come out 0644."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def local_storage(settings, tmp_path):
    location = tmp_path / "files"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(location)},
        },
    }
    return location


def test_blobs_and_their_directories_are_private(local_storage):
    sha, _ = blobstore.store_bytes(b"a student's answer")
    blob = local_storage / "blobs" / sha[:2] / sha
    assert mode(blob) == 0o600
    assert mode(blob.parent) == mode(blob.parent.parent) == mode(local_storage) == 0o700
    assert mode(local_storage / "tmp") == 0o700


def test_temporary_upload_files_are_private(local_storage):
    staged = blobstore.stage(io.BytesIO(b"bytes in flight"))
    try:
        assert mode(staged.temp_path) == 0o600
    finally:
        blobstore.discard(staged)


def test_files_saved_through_djangos_storage_are_private(local_storage, settings):
    assert (settings.FILE_UPLOAD_PERMISSIONS, settings.FILE_UPLOAD_DIRECTORY_PERMISSIONS) == (
        0o600,
        0o700,
    )
    name = blobstore.get_storage().save("some/dir/file.txt", ContentFile(b"x"))
    assert mode(local_storage / name) == 0o600
    assert mode(local_storage / "some" / "dir") == 0o700


def test_a_private_dir_made_twice_at_once_is_fine(tmp_path):
    make_private_dir(tmp_path / "a" / "b")
    make_private_dir(tmp_path / "a" / "b")
    assert mode(tmp_path / "a") == mode(tmp_path / "a" / "b") == 0o700


def test_a_directory_another_upload_makes_meanwhile_is_fine(tmp_path, monkeypatch):
    target = tmp_path / "made-meanwhile"
    target.mkdir(mode=0o700)
    real_exists = Path.exists
    monkeypatch.setattr(Path, "exists", lambda self: self != target and real_exists(self))
    make_private_dir(target)
    assert mode(target) == 0o700


@pytest.mark.parametrize("name", ["b.tar", "b.tar.gz"])
def test_backups_are_private(released, tmp_path, name):
    target = tmp_path / name
    backup.backup(out=target)
    assert mode(target) == 0o600


def test_exported_roster_files_are_private(course, people, tmp_path):
    target = tmp_path / "students.csv"
    target.write_text("old")
    target.chmod(0o644)
    call_command("export_roster", "phys101", "-o", str(target), stderr=io.StringIO())
    assert mode(target) == 0o600 and target.read_text().startswith("id,")


def test_the_sqlite_database_and_its_side_files_are_private(tmp_path, db):
    path = tmp_path / "data" / "db.sqlite3"
    path.parent.mkdir()
    path.touch(mode=0o644)  # as an older release left it
    handler = ConnectionHandler(
        {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": str(path),
                "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL;"},
            }
        }
    )
    connection = handler["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE answers (text TEXT)")
            cursor.execute("INSERT INTO answers VALUES ('personal')")
        side_files = [Path(f"{path}-wal"), Path(f"{path}-shm")]
        assert all(side.exists() for side in side_files)
        assert [mode(p) for p in [path, *side_files]] == [0o600, 0o600, 0o600]
        connection.close()
        connection.ensure_connection()  # already private: left as it is
        assert mode(path) == 0o600
    finally:
        connection.close()


def test_a_rollback_journal_is_private_too(tmp_path, db):
    path = tmp_path / "db.sqlite3"
    handler = ConnectionHandler(
        {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path)}}
    )
    connection = handler["default"]
    try:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=PERSIST")  # the journal stays to be looked at
            cursor.execute("CREATE TABLE answers (text TEXT)")
        journal = Path(f"{path}-journal")
        assert journal.exists() and mode(path) == mode(journal) == 0o600
    finally:
        connection.close()


def test_submissions_stored_by_the_service_are_private(local_storage, released, people):
    submission = services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload({"a.txt": b"mine"})
    )
    blob = submission.bundle.entries.get().blob
    assert mode(local_storage / blob.storage_name) == 0o600


def test_collected_static_files_stay_readable_by_the_services_user(tmp_path, settings):
    """The image collects static files as root and serves them as another user: they are
    public (0644 in 0755 directories), unlike the private files people upload."""
    from django.contrib.staticfiles.storage import staticfiles_storage
    from django.core.management import call_command
    from django.utils.functional import empty

    settings.STATIC_ROOT = str(tmp_path / "static")
    staticfiles_storage._setup()  # the lazy storage reads STATIC_ROOT afresh
    try:
        call_command("collectstatic", "--noinput", "-v0")
    finally:
        staticfiles_storage._wrapped = empty
    paths = list((tmp_path / "static").rglob("*"))
    assert paths
    for path in paths:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o755 if path.is_dir() else 0o644), path
