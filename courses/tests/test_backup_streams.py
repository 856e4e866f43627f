"""backup and restore outside the pod: an archive streamed through standard output and
standard input (``kubectl exec`` style, no file in the "pod"), straight to and from an S3
bucket, into a directory with a retention count, and the refusals of each."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from courses import backup, services, storage_checks
from courses.models import Submission
from courses.tests.test_backup import POPULATE, REPO, make_install
from tests.harness.commands import run_command
from tests.harness.uploads import make_upload


def _files_under(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file()}


@pytest.mark.sqlite_only  # brings its own PostgreSQL and SeaweedFS; once per suite is enough
def test_backup_streamed_out_of_a_pod_and_through_s3_restores_byte_for_byte(tmp_path, request):
    source = make_install("sqlite+local", tmp_path, "pod", request)
    source.shell(POPULATE)
    before = source.fingerprint()
    files_before = _files_under(source.dir)
    target = make_install("postgres+s3", tmp_path, "fresh", request)

    # kubectl exec deploy/x -- manage.py backup - | kubectl exec -i deploy/y -- ... restore -
    command = [sys.executable, str(REPO / "manage.py")]
    dump = subprocess.Popen(
        [*command, "backup", "-"],
        cwd=REPO,
        env=source.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    load = subprocess.run(
        [*command, "restore", "-"],
        cwd=REPO,
        env=target.env,
        stdin=dump.stdout,
        capture_output=True,
        text=True,
        timeout=600,
    )
    dump.stdout.close()
    dump_err = dump.stderr.read().decode()
    assert dump.wait(timeout=60) == 0, dump_err
    assert load.returncode == 0, load.stderr
    assert "Backed up" in dump_err and "to - (" in dump_err
    assert "Restoring standard input" in load.stderr and "Restored" in load.stdout

    after = target.fingerprint()
    assert after["tables"] == before["tables"]
    assert after["blobs"] == before["blobs"] and len(after["blobs"]) == 9
    assert target.manage("verify_storage").returncode == 0
    # No archive was written in the source's data directory (the pod's volume).
    new_files = _files_under(source.dir) - files_before
    assert all(name.startswith("fingerprint-") for name in new_files), new_files

    # The PostgreSQL + S3 install backs up straight into a bucket, newest kept...
    server = request.getfixturevalue("seaweedfs")
    bucket = server.create_bucket(f"backups-{os.getpid()}-{time.monotonic_ns()}"[:63])
    written = []
    for number in range(2):
        if number:
            time.sleep(1.1)  # archive names carry the second
        result = target.manage("backup", f"s3://{bucket}/nightly/", "--keep", "1")
        written.append(result.stdout.split(" to ", 1)[1].split(" (", 1)[0])
        assert "Kept the newest 1 archive(s); deleted" in result.stdout
    listing = server.client().list_objects_v2(Bucket=bucket).get("Contents", [])
    assert [f"s3://{bucket}/{item['Key']}" for item in listing] == written[1:]
    assert written[1].startswith(f"s3://{bucket}/nightly/exchange-")

    # ...and restores from it, over whatever the install holds now.
    target.shell("from courses.models import Submission; Submission.objects.all().delete()")
    result = target.manage("restore", written[-1], "--force")
    assert "Restored" in result.stdout
    again = target.fingerprint()
    assert again["tables"] == before["tables"] and again["blobs"] == before["blobs"]


# --- in-process ---------------------------------------------------------------------------


def test_stream_round_trip_in_process_and_a_cut_short_stream_is_a_sentence(data, tmp_path):
    buffer = io.BytesIO()
    report = backup.backup_to_stream(stream=buffer)
    assert report.archive_bytes == len(buffer.getvalue()) > 0 and report.path == "-"
    Submission.objects.all().delete()
    whole = buffer.getvalue()
    with pytest.raises(backup.BackupError, match="damaged or cut short"):
        backup.restore(stream=io.BytesIO(whole[: len(whole) // 2]), force=True)
    assert Submission.objects.count() == 0
    with pytest.raises(backup.BackupError, match="standard input is not a readable"):
        backup.restore(stream=io.BytesIO(b"not a tar file at all" * 30), force=True)
    restored = backup.restore(stream=io.BytesIO(whole), force=True)
    assert restored.tables["courses.submission"] == 2
    assert storage_checks.verify_storage().ok
    with pytest.raises(ValueError):
        backup.restore()


def test_backup_into_a_directory_names_the_file_and_keeps_the_newest(data, tmp_path):
    tmp_path = tmp_path / "backups"
    tmp_path.mkdir()
    old = [tmp_path / f"exchange-2026010{day}T030000Z.tar.gz" for day in (1, 2, 3)]
    for path in old:
        path.write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("not an archive")
    (tmp_path / "exchange-manual.tar.gz").write_text("named by hand: never pruned")
    out, _ = run_command("backup", str(tmp_path), "--keep", "2")
    assert "Kept the newest 2 archive(s); deleted 2 older one(s)." in out
    left = sorted(p.name for p in tmp_path.iterdir())
    made = out.split(" to ", 1)[1].split(" (", 1)[0]
    assert Path(made).parent == tmp_path and made in [str(tmp_path / n) for n in left]
    assert left == sorted(
        [
            "exchange-20260103T030000Z.tar.gz",
            Path(made).name,
            "exchange-manual.tar.gz",
            "notes.txt",
        ]
    )
    with pytest.raises(CommandError, match="--keep must be at least 1"):
        run_command("backup", str(tmp_path), "--keep", "0")
    with pytest.raises(CommandError, match="--keep needs a directory"):
        run_command("backup", "-", "--keep", "2")


def test_s3_targets_need_s3_settings_and_a_bucket(data):
    with pytest.raises(CommandError, match="this install keeps its files locally"):
        run_command("backup", "s3://backups/nightly/")
    with pytest.raises(CommandError, match="names no bucket"):
        run_command("backup", "s3:///nightly/")
    with pytest.raises(CommandError, match="this install keeps its files locally"):
        run_command("restore", "s3://backups/nightly/exchange-20260101T000000Z.tar.gz", "--force")


def test_s3_backup_refuses_an_existing_key_and_leaves_nothing_when_it_fails(
    s3_storage, data, monkeypatch
):
    bucket = s3_storage.create_bucket(f"refusals-{os.getpid()}-{time.monotonic_ns()}"[:63])
    client = s3_storage.client()
    report = backup.backup_to_s3(url=f"s3://{bucket}/one.tar.gz")
    assert report.archive_bytes > 0
    with pytest.raises(backup.BackupError, match="already exists"):
        backup.backup_to_s3(url=f"s3://{bucket}/one.tar.gz")
    with pytest.raises(backup.BackupError, match="Cannot read s3://"):
        backup.restore(source=f"s3://{bucket}/missing.tar.gz", force=True)

    # A backup that fails half-way (the storage loses a blob) completes no upload.
    def lost(sha, work):
        raise backup._missing(sha)

    monkeypatch.setattr(backup.dump, "_download", lost)
    with pytest.raises(backup.BackupError, match="missing from storage"):
        backup.backup_to_s3(url=f"s3://{bucket}/two/")
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys == ["one.tar.gz"]
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")

    # Keys the store refuses: a sentence naming the target, not a traceback.
    import boto3
    from botocore.config import Config

    wrong = boto3.client(
        "s3",
        endpoint_url=s3_storage.endpoint,
        aws_access_key_id="exchange-test",
        aws_secret_access_key="not-the-secret",
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
    )
    monkeypatch.setattr(backup.s3, "s3_client", lambda: wrong)
    with pytest.raises(backup.BackupError, match=f"Cannot use s3://{bucket}/three"):
        backup.backup_to_s3(url=f"s3://{bucket}/three/")


def test_large_archives_go_up_in_several_parts(s3_storage, data, monkeypatch):
    monkeypatch.setattr(backup.s3, "S3_PART_SIZE", 5 * 1024 * 1024)
    services.release_assignment(
        actor=None,
        course=data.course,
        code="big",
        upload=make_upload({"big.bin": os.urandom(12 * 1024 * 1024)}),
    )
    bucket = s3_storage.create_bucket(f"parts-{os.getpid()}-{time.monotonic_ns()}"[:63])
    report = backup.backup_to_s3(url=f"s3://{bucket}/")
    key = str(report.path)[len(f"s3://{bucket}/") :]
    assert key.startswith("exchange-") and key.endswith(".tar.gz")
    head = s3_storage.client().head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == report.archive_bytes > 10 * 1024 * 1024
    body = s3_storage.client().get_object(Bucket=bucket, Key=key)["Body"]
    with tarfile.open(fileobj=body, mode="r|gz") as archive:
        assert next(iter(archive)).name == "manifest.json"


def test_keep_prunes_only_the_services_own_archive_names_under_an_s3_prefix(s3_storage, db):
    bucket = s3_storage.create_bucket(f"prune-{os.getpid()}-{time.monotonic_ns()}"[:63])
    client = s3_storage.client()
    names = [
        "nightly/exchange-20260101T030000Z.tar.gz",
        "nightly/exchange-20260102T030000Z.tar.gz",
        "nightly/exchange-20260103T030000Z.tar.gz",
        "nightly/notes.txt",
        "nightly/exchange-by-hand.tar.gz",
        "nightly/deeper/exchange-20250101T030000Z.tar.gz",
        "other/exchange-20250101T030000Z.tar.gz",
    ]
    for key in names:
        client.put_object(Bucket=bucket, Key=key, Body=b"x")
    deleted = backup.prune(target=f"s3://{bucket}/nightly/", keep=2)
    assert deleted == [f"s3://{bucket}/nightly/exchange-20260101T030000Z.tar.gz"]
    # Naming one archive prunes its "directory".
    deleted = backup.prune(target=f"s3://{bucket}/nightly/exchange-20260103T030000Z.tar.gz", keep=1)
    assert deleted == [f"s3://{bucket}/nightly/exchange-20260102T030000Z.tar.gz"]
    left = {item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert left == set(names) - {names[0], names[1]}
    with pytest.raises(backup.BackupError, match="at least 1"):
        backup.prune(target=f"s3://{bucket}/nightly/", keep=0)


def test_restore_straight_from_the_bucket(s3_storage, data):
    before = {s.pk for s in Submission.objects.all()}
    bucket = s3_storage.create_bucket(f"restore-{os.getpid()}-{time.monotonic_ns()}"[:63])
    report = backup.backup_to_s3(url=f"s3://{bucket}/")
    Submission.objects.all().delete()
    restored = backup.restore(source=str(report.path), force=True)
    assert restored.tables["courses.submission"] == 2
    assert {s.pk for s in Submission.objects.all()} == before
    assert storage_checks.verify_storage().ok
