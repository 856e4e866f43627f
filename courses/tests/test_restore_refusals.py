"""backup and restore in one process: what a restore refuses (damage, strays, missing
migrations, rows without their bytes) and writes nothing for, and what a backup keeps (audit
microseconds, hashes that match the bytes, its own snapshot)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from courses import backup, blobstore, services, storage_checks
from courses.models import AuditEvent, Blob, Submission
from tests.harness.commands import run_command

# --- in-process: refusals and damage ------------------------------------------------------


def fingerprint() -> dict:
    return {
        backup._label(model): [backup.encode_record(r) for r in backup.table_records(model)]
        for model in backup.backup_models()
    }


def rewrite(archive: Path, target: Path, change) -> Path:
    """A copy of the archive with ``change(name, bytes) -> bytes | None`` applied per member."""
    with tarfile.open(archive) as src, tarfile.open(target, "w") as dst:
        for member in src:
            data = src.extractfile(member).read()
            new = change(member.name, data)
            if new is None:
                continue
            info = tarfile.TarInfo(member.name)
            info.size = len(new)
            dst.addfile(info, io.BytesIO(new))
    return target


def test_backup_models_covers_every_table_parents_first():
    labels = [backup._label(m) for m in backup.backup_models()]
    assert {"auth.user", "api.apitoken", "courses.blob", "courses.auditevent"} <= set(labels)
    assert not set(labels) & backup.EXCLUDED
    assert labels.index("courses.bundle") < labels.index("courses.assignment")
    assert labels.index("courses.blob") < labels.index("courses.bundleentry")
    assert labels.index("auth.user") < labels.index("courses.submission")
    assert labels.index("courses.submission") < labels.index("courses.regraderequest")


@pytest.mark.parametrize("name", ["b.tar", "b.tar.gz"])
def test_in_place_restore_with_force_gives_back_the_same_rows(backend, data, tmp_path, name):
    before = fingerprint()
    out, err = run_command("backup", str(tmp_path / name))
    assert "Backed up" in out and "Copying" in err
    with pytest.raises(CommandError, match=r"The target is not empty: auth\.user"):
        run_command("restore", str(tmp_path / name))
    services.create_course(code="extra")
    out, err = run_command("restore", str(tmp_path / name), "--force")
    assert "Deleted" in out and "cleared courses.course" in err
    assert fingerprint() == before
    assert storage_checks.verify_storage().ok


def test_restore_refuses_damage_and_writes_nothing(backend, data, tmp_path):
    archive = tmp_path / "good.tar"
    backup.backup(out=archive)
    blob = next(iter(Blob.objects.values_list("sha256", flat=True)))
    cases = {
        "table": (
            lambda n, d: d.replace(b"phys101", b"phys102") if "course.jsonl" in n else d,
            "damaged",
        ),
        "blob": (lambda n, d: b"?" * len(d) if n.endswith(blob) else d, "is damaged"),
        "lost": (lambda n, d: None if n.endswith(blob) else d, "incomplete"),
    }
    Submission.objects.all().delete()
    for label, (change, message) in cases.items():
        bad = rewrite(archive, tmp_path / f"{label}.tar", change)
        with pytest.raises(backup.BackupError, match=message):
            backup.restore(source=bad, force=True)
    assert Submission.objects.count() == 0  # nothing restored


def test_restore_refuses_what_is_not_a_backup(db, tmp_path):
    with pytest.raises(backup.BackupError, match="does not exist"):
        backup.restore(source=tmp_path / "nope.tar")
    (tmp_path / "text.tar").write_text("hello")
    with pytest.raises(backup.BackupError, match="not a readable backup"):
        backup.restore(source=tmp_path / "text.tar")
    other = rewrite_new(tmp_path / "other.tar", {"readme.txt": b"hi"})
    with pytest.raises(backup.BackupError, match=r"does not start with manifest\.json"):
        backup.restore(source=other)
    for manifest, message in [
        (b"{", "not valid JSON"),
        (json.dumps({"format": "zip"}).encode(), "names another format"),
        (json.dumps({"format": backup.FORMAT, "version": 99}).encode(), "version 99"),
    ]:
        bad = rewrite_new(tmp_path / "bad.tar", {"manifest.json": manifest})
        with pytest.raises(backup.BackupError, match=message):
            backup.restore(source=bad)


def rewrite_new(path: Path, members: dict[str, bytes]) -> Path:
    path.unlink(missing_ok=True)
    with tarfile.open(path, "w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def edit_manifest(archive: Path, target: Path, edit) -> Path:
    def change(name, data):
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        edit(manifest)
        return json.dumps(manifest).encode()

    return rewrite(archive, target, change)


def test_restore_refuses_missing_migrations_unknown_tables_and_strays(data, tmp_path):
    archive = tmp_path / "good.tar"
    backup.backup(out=archive)
    newer = edit_manifest(
        archive,
        tmp_path / "newer.tar",
        lambda m: m["migrations"]["courses"].append("9999_future"),
    )
    with pytest.raises(backup.BackupError, match=r"courses\.9999_future.*run `manage\.py migrate`"):
        backup.restore(source=newer, force=True)

    def unknown(manifest):
        manifest["tables"][0]["model"] = "gone.model"

    with pytest.raises(backup.BackupError, match="tables this release does not know"):
        backup.restore(source=edit_manifest(archive, tmp_path / "u.tar", unknown), force=True)

    with tarfile.open(archive) as src:
        members = {m.name: src.extractfile(m).read() for m in src}
    members["notes.txt"] = b"stray"
    with pytest.raises(backup.BackupError, match=r"unexpected file notes\.txt"):
        backup.restore(source=rewrite_new(tmp_path / "s.tar", members), force=True)
    members.pop("notes.txt")
    members["blobs/00/" + "0" * 64] = b"x"
    with pytest.raises(backup.BackupError, match="unexpected file blobs/00"):
        backup.restore(source=rewrite_new(tmp_path / "s2.tar", members), force=True)

    def fewer_blobs(manifest):
        manifest["blobs"]["sha256"] = manifest["blobs"]["sha256"][1:]

    with pytest.raises(backup.BackupError, match="unexpected file"):
        backup.restore(source=edit_manifest(archive, tmp_path / "f.tar", fewer_blobs), force=True)

    def wrong_count(manifest):
        manifest["tables"][-1]["rows"] += 1

    with pytest.raises(backup.BackupError, match="the manifest says"):
        backup.restore(source=edit_manifest(archive, tmp_path / "c.tar", wrong_count), force=True)


def test_rows_referencing_blobs_the_archive_lacks_are_refused(data, tmp_path):
    archive = tmp_path / "good.tar"
    backup.backup(out=archive)
    victim = Blob.objects.order_by("sha256").first().sha256

    def drop_blob(name, data):
        if name.endswith(victim):
            return None
        if name == "manifest.json":
            manifest = json.loads(data)
            manifest["blobs"]["sha256"].remove(victim)
            return json.dumps(manifest).encode()
        return data

    with pytest.raises(backup.BackupError, match="reference 1 blob"):
        backup.restore(source=rewrite(archive, tmp_path / "d.tar", drop_blob), force=True)


def test_backup_refuses_existing_files_missing_dirs_and_missing_blobs(backend, data, tmp_path):
    (tmp_path / "exists.tar").write_bytes(b"")
    with pytest.raises(CommandError, match="already exists"):
        run_command("backup", str(tmp_path / "exists.tar"))
    with pytest.raises(CommandError, match="does not exist"):
        run_command("backup", str(tmp_path / "no" / "b.tar"))
    blobstore.delete(Blob.objects.first().sha256)
    with pytest.raises(CommandError, match="referenced but missing from storage"):
        run_command("backup", str(tmp_path / "b.tar"))
    # Neither the archive nor its partial file nor the work directory is left behind.
    assert [p.name for p in tmp_path.iterdir() if p.name != "files"] == ["exists.tar"]


def test_restored_audit_trail_keeps_microseconds(data, tmp_path):
    stamps = list(Submission.objects.order_by("pk").values_list("timestamp", flat=True))
    events = AuditEvent.objects.count()
    backup.backup(out=tmp_path / "b.tar")
    backup.restore(source=tmp_path / "b.tar", force=True)
    assert list(Submission.objects.order_by("pk").values_list("timestamp", flat=True)) == stamps
    assert AuditEvent.objects.count() == events
    assert any(stamp.microsecond % 1000 for stamp in stamps)


def test_blob_hashes_in_the_manifest_match_the_bytes(data, tmp_path):
    backup.backup(out=tmp_path / "b.tar")
    with tarfile.open(tmp_path / "b.tar") as archive:
        manifest = json.loads(archive.extractfile("manifest.json").read())
        for sha in manifest["blobs"]["sha256"]:
            data_ = archive.extractfile(f"blobs/{sha[:2]}/{sha}").read()
            assert hashlib.sha256(data_).hexdigest() == sha
        for table in manifest["tables"]:
            body = archive.extractfile(table["file"]).read()
            assert hashlib.sha256(body).hexdigest() == table["sha256"]
            assert body.count(b"\n") == table["rows"]


@pytest.mark.django_db(transaction=True)
def test_backup_outside_a_transaction_takes_its_own_snapshot(tmp_path):
    services.create_course(code="snap", instructors=["ines"])
    report = backup.backup(out=tmp_path / "b.tar")
    assert report.tables["courses.course"] == 1
    assert backup.restore(source=tmp_path / "b.tar", force=True).tables["courses.course"] == 1


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_snapshot_does_not_see_a_commit_made_while_it_reads():
    import threading

    from django.db import connection

    from courses.models import Course

    services.create_course(code="first")

    def commit_another() -> None:
        services.create_course(code="meanwhile")
        connection.close()

    with backup.snapshot():
        assert Course.objects.count() == 1
        writer = threading.Thread(target=commit_another)
        writer.start()
        writer.join(timeout=30)
        assert Course.objects.count() == 1
    assert Course.objects.count() == 2
