"""backup and restore: round trips between SQLite and PostgreSQL, local files and S3 (every
row and every byte equal) and a backup taken while submissions arrive; the refusals are in
test_restore_refusals.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness import REPO
from tests.harness.live import exchange_environment, run_manage

# Runs in `manage.py shell`: a course with every kind of row the service keeps.
POPULATE = r"""
import os
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from courses import regrades, services
from tests.harness.uploads import make_upload
from api.models import ApiToken

User = get_user_model()
course = services.create_course(code="phys101", title="Physics 101", instructors=["ines"])
for name, role in [("gus", "grader"), ("sam", "student"), ("tia", "student")]:
    services.add_member(course=course, username=name, role=role, first_name=name.title(),
                        email=f"{name}@example.edu")
staff = Group.objects.create(name="it-staff")
staff.permissions.add(Permission.objects.get(codename="view_course"))
admin = User.objects.create_superuser("root", "root@example.edu", "a-long-password")
admin.groups.add(staff)
admin.user_permissions.add(Permission.objects.get(codename="change_membership"))
ApiToken.objects.create(user=admin, token_hash="ab" * 32)
binary = os.urandom(300_000)
released = services.release_assignment(
    actor=None, course=course, code="ps1",
    upload=make_upload({"ps1.ipynb": b'{"cells": []}', "data/big.bin": binary}))
for student in ("sam", "tia"):
    user = User.objects.get(username=student)
    for attempt in range(2):
        sub = services.submit_assignment(
            student=user, assignment=released,
            upload=make_upload({"ps1.ipynb": f"{student} {attempt}".encode(),
                                "data/big.bin": binary}, omit=["data/big.bin"]))
    services.release_feedback(actor=None, submission=sub,
                              upload=make_upload({"ps1.html": f"<p>{student}</p>".encode()}))
    asked = regrades.request_regrade(student=user, submission=sub, message=f"{student}: q1")
    if student == "tia":
        regrades.answer_regrade(actor=None, request=asked, status="declined", answer="No.")
services.release_assignment(actor=None, course=course, code="ps2",
                            upload=make_upload({"ps2.ipynb": b"{}"}))
"""

# Runs in `manage.py shell`: every row of every table and the hash of every stored byte.
FINGERPRINT = r"""
import hashlib, json, os
from courses import backup, blobstore
from courses.models import Blob, BundleEntry

tables = {
    backup._label(model): [backup.encode_record(r).decode() for r in backup.table_records(model)]
    for model in backup.backup_models()
}
blobs = {}
for sha in BundleEntry.objects.values_list("blob_id", flat=True).distinct():
    digest = hashlib.sha256()
    for chunk in blobstore.iter_blob(sha):
        digest.update(chunk)
    blobs[sha] = digest.hexdigest()
with open(os.environ["FINGERPRINT_OUT"], "w") as out:
    json.dump({"tables": tables, "blobs": blobs}, out)
"""


class Install:
    """One install of the service (database + storage) driven through manage.py."""

    def __init__(self, tmp_path: Path, name: str, database_url: str, storage_env: dict) -> None:
        self.dir = tmp_path / name
        self.dir.mkdir()
        self.env = exchange_environment()
        self.env.update(
            {
                "DATABASE_URL": database_url,
                "EXCHANGE_DATA_DIR": str(self.dir),
                "SECRET_KEY": "backup-test",
                "DJANGO_SETTINGS_MODULE": "exchange_site.settings",
                **storage_env,
            }
        )

    def manage(self, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        return run_manage(self.env, *args, check=check, timeout=600, **kwargs)

    def shell(self, code: str, **env: str) -> None:
        saved = dict(self.env)
        self.env.update(env)
        try:
            self.manage("shell", "-c", code)
        finally:
            self.env = saved

    def fingerprint(self) -> dict:
        out = self.dir / f"fingerprint-{time.monotonic_ns()}.json"
        self.shell(FINGERPRINT, FINGERPRINT_OUT=str(out))
        return json.loads(out.read_text())


def make_install(kind: str, tmp_path, name, request, *, migrate: bool = True) -> Install:
    database, storage = kind.split("+")
    if database == "sqlite":
        url = f"sqlite:///{tmp_path / name}.sqlite3"
    else:
        url = request.getfixturevalue("postgres_server").create_database(name)
    if storage == "local":
        storage_env = {
            "EXCHANGE_STORAGE": "local",
            "EXCHANGE_FILES_DIR": str(tmp_path / name / "f"),
        }
    else:
        server = request.getfixturevalue("seaweedfs")
        bucket = server.create_bucket(f"{name}-{os.getpid()}-{time.monotonic_ns()}"[:63])
        storage_env = server.env(bucket)
    install = Install(tmp_path, name, url, storage_env)
    if migrate:
        install.manage("migrate", "--noinput", "-v", "0")
    return install


@pytest.mark.sqlite_only  # brings its own PostgreSQL; once per suite is enough
@pytest.mark.parametrize(
    ("source_kind", "target_kind"),
    [("sqlite+local", "postgres+s3"), ("postgres+s3", "sqlite+local")],
)
def test_round_trip_keeps_every_row_and_every_byte(source_kind, target_kind, tmp_path, request):
    source = make_install(source_kind, tmp_path, "src", request)
    source.shell(POPULATE)
    before = source.fingerprint()
    archive = tmp_path / "exchange.tar.gz"
    result = source.manage("backup", str(archive))
    assert "Backed up" in result.stdout and "courses.submission: 4 row(s)" in result.stderr

    target = make_install(target_kind, tmp_path, "dst", request, migrate=False)
    refused = target.manage("restore", str(archive), check=False)
    assert refused.returncode == 1
    assert "The target database has not been set up: run `manage.py migrate`" in refused.stderr
    target.manage("migrate", "--noinput", "-v", "0")
    result = target.manage("restore", str(archive))
    assert "courses.submission: 4" in result.stdout and "Restored" in result.stdout
    after = target.fingerprint()
    assert after["tables"] == before["tables"]
    assert after["blobs"] == before["blobs"]
    assert all(sha == digest for sha, digest in after["blobs"].items())
    assert len(after["blobs"]) == 9
    assert target.manage("verify_storage").returncode == 0
    # Sequences continue after the restored ids: new rows can be written.
    target.shell(
        "from courses import services; services.create_course(code='after', instructors=['new'])"
        "\nfrom django.contrib.auth.models import Group, Permission, User"
        "\nlater = User.objects.create(username='later')"
        "\nGroup.objects.get(name='it-staff').user_set.add(later)"
        "\nlater.user_permissions.add(Permission.objects.get(codename='view_course'))"
    )
    # A restored target is no longer empty.
    refused = target.manage("restore", str(archive), check=False)
    assert refused.returncode == 1 and "The target is not empty" in refused.stderr


WRITER = r"""
import os, time
from django.contrib.auth import get_user_model
from courses import services
from courses.models import Assignment
from tests.harness.uploads import make_upload

stop_file = os.environ["STOP_FILE"]
log = open(os.environ["WRITER_LOG"], "a")
student = get_user_model().objects.get(username="sam")
assignment = Assignment.objects.get(code="ps1")
n = 0
while not os.path.exists(stop_file) and n < 2000:
    n += 1
    sub = services.submit_assignment(
        student=student, assignment=assignment,
        upload=make_upload({f"f{i}.bin": os.urandom(20_000) for i in range(3)}))
    log.write(f"{time.time()} {sub.pk}\n")
    log.flush()
"""


@pytest.mark.sqlite_only
@pytest.mark.parametrize("source_kind", ["sqlite+local", "postgres+local"])
def test_backup_while_submissions_arrive_restores_a_consistent_state(
    source_kind, tmp_path, request
):
    source = make_install(source_kind, tmp_path, "src", request)
    source.shell(POPULATE)
    # Bulk for the backup to copy, so it takes a while.
    source.shell(
        "import os\nfrom courses import blobstore\nfrom courses.models import Blob\n"
        "from django.contrib.auth import get_user_model\n"
        "from courses.models import Assignment\nfrom courses import services\n"
        "from tests.harness.uploads import make_upload\n"
        "u = get_user_model().objects.get(username='tia')\n"
        "a = Assignment.objects.get(code='ps1')\n"
        "services.submit_assignment(student=u, assignment=a, upload=make_upload("
        "{f'bulk{i}.bin': os.urandom(100_000) for i in range(80)}))\n"
    )
    stop, writer_log = tmp_path / "stop", tmp_path / "writer.log"
    # One student submitting without pause: the per-person upload limit would stop the
    # writer after ten submissions a minute (it once looked as if the backup blocked it).
    writer_env = {
        **source.env,
        "STOP_FILE": str(stop),
        "WRITER_LOG": str(writer_log),
        "EXCHANGE_UPLOADS_PER_MINUTE": "0",
    }
    writer = subprocess.Popen(
        [sys.executable, str(REPO / "manage.py"), "shell", "-c", WRITER],
        cwd=REPO,
        env=writer_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not writer_log.exists() or len(writer_log.read_text().splitlines()) < 3:
            assert writer.poll() is None, writer.stderr.read()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        archive = tmp_path / "busy.tar"
        started = time.time()
        source.manage("backup", str(archive))
        finished = time.time()
        time.sleep(0.5)
    finally:
        stop.touch()
        writer.wait(timeout=120)
    lines = [line.split() for line in writer_log.read_text().splitlines()]
    during = [pk for at, pk in lines if started <= float(at) <= finished]
    assert during, "no submission arrived while the backup ran"
    # The backup's snapshot never holds a writer up (SQLite in WAL mode, PostgreSQL's MVCC):
    # submissions go on landing all through it.
    landed = [started, *(float(at) for at, _ in lines if started <= float(at) <= finished)]
    longest_wait = max(b - a for a, b in zip(landed, [*landed[1:], finished], strict=True))
    assert longest_wait < 3, f"a submission waited {longest_wait:.1f} s for the backup"

    target = make_install("sqlite+local", tmp_path, "dst", request)
    target.manage("restore", str(archive))
    check = tmp_path / "check.json"
    target.shell(
        "import json, os\n"
        "from courses.models import Submission, AuditEvent, BundleEntry\n"
        "subs = set(Submission.objects.values_list('pk', flat=True))\n"
        "events = set(AuditEvent.objects.filter(action='submitted')"
        ".values_list('submission_id', flat=True))\n"
        "empty = Submission.objects.filter(bundle__entries__isnull=True).count()\n"
        "json.dump({'subs': sorted(subs), 'events': sorted(events), 'empty': empty},"
        " open(os.environ['OUT'], 'w'))",
        OUT=str(check),
    )
    restored = json.loads(check.read_text())
    # Each submission is wholly in (with its audit event and files) or wholly out.
    assert restored["subs"] == restored["events"]
    assert restored["empty"] == 0
    written = [int(pk) for _, pk in lines]
    in_backup = [pk for pk in written if pk in set(restored["subs"])]
    # The snapshot is a prefix of what the writer committed: no gaps.
    assert in_backup == written[: len(in_backup)]
    assert target.manage("verify_storage").returncode == 0
