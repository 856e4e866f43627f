"""``manage.py import_exchange fs``: a filesystem exchange laid out as nbgrader 0.9 writes it
(the end-to-end run with the real nbgrader CLI is tests/plugin/test_import_fs.py): what is
imported, what is skipped and why, idempotence, dry runs, one transaction per course."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from courses import blobstore, services
from courses.models import Assignment, AuditEvent, Blob, Feedback, Membership, Submission
from courses.timestamps import format_timestamp, parse_timestamp

NB = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()
T1 = "2026-11-02 10:00:00.100000 UTC"
T2 = "2026-11-02 11:30:00.250000 UTC"
T3 = "2026-11-03 09:00:00.000001 UTC"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def submit(root: Path, course: str, student: str, stamp: str, *, secret: str | None, body=NB):
    path = root / course / "inbound" / f"{student}+ps1+{stamp}+r4nd"
    path.mkdir(parents=True)
    (path / "ps1.ipynb").write_bytes(body)
    (path / "timestamp.txt").write_text(stamp)
    if secret is not None:
        (path / "submission_secret.txt").write_text(secret)
    return path


def feedback(root: Path, course: str, name: str, html: bytes) -> Path:
    path = root / course / "feedback" / f"{name}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(html)
    return path


@pytest.fixture
def exchange(tmp_path):
    """phys201: a release, sam twice (secrets), tia once (legacy, no secret), feedback."""
    root = tmp_path / "exchange"
    release = root / "phys201" / "outbound" / "ps1"
    (release / "data").mkdir(parents=True)
    (release / "ps1.ipynb").write_bytes(NB)
    (release / "data" / "table.csv").write_bytes(b"x,y\n1,2\n")
    submit(root, "phys201", "sam", T1, secret="s1")
    submit(root, "phys201", "sam", T2, secret="s2", body=NB + b" ")
    submit(root, "phys201", "tia", T3, secret=None, body=NB + b"  ")
    feedback(root, "phys201", md5(b"s2ps1"), b"<html>sam second</html>")
    key = "+".join(["phys201", "ps1", "ps1", "tia", T3]).encode()
    feedback(root, "phys201", md5(NB + b"  " + key), b"<html>tia</html>")
    return root


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("import_exchange", *args, stdout=out, stderr=out)
    return out.getvalue()


@pytest.mark.django_db
def test_imports_roster_release_submissions_and_feedback_with_original_times(exchange):
    out = run("fs", str(exchange), "--instructor", "ines")
    assert "Imported phys201 (new course):" in out
    assert "3 submissions added" in out and "2 feedback added" in out
    roles = dict(
        Membership.objects.filter(course__code="phys201").values_list("user__username", "role")
    )
    assert roles == {"ines": "instructor", "sam": "student", "tia": "student"}
    release = Assignment.objects.get(course__code="phys201", code="ps1").release
    assert sorted(release.entries.values_list("path", flat=True)) == ["data/table.csv", "ps1.ipynb"]
    stamps = sorted(
        (s.student.username, format_timestamp(s.timestamp)) for s in Submission.objects.all()
    )
    assert stamps == [("sam", T1), ("sam", T2), ("tia", T3)]
    sam_first = Submission.objects.get(student__username="sam", timestamp=parse_timestamp(T1))
    assert sorted(sam_first.bundle.entries.values_list("path", flat=True)) == [
        "ps1.ipynb",
        "submission_secret.txt",
    ]
    given = {
        (f.submission.student.username, format_timestamp(f.submission.timestamp)): b"".join(
            blobstore.iter_blob(f.bundle.entries.get(path="ps1.html").blob_id)
        )
        for f in Feedback.objects.all()
    }
    assert given == {("sam", T2): b"<html>sam second</html>", ("tia", T3): b"<html>tia</html>"}
    assert AuditEvent.objects.filter(action="submitted", detail__imported=True).count() == 3


@pytest.mark.django_db
def test_second_run_adds_nothing_and_third_adds_only_the_new(exchange):
    run("fs", str(exchange))
    blobs = Blob.objects.count()
    again = run("fs", str(exchange))
    assert "nothing new" in again and "0 bytes added" in again
    assert "3 submissions unchanged" in again and "1 releases unchanged" in again
    assert Submission.objects.count() == 3 and Blob.objects.count() == blobs
    submit(exchange, "phys201", "tia", T1, secret="t1")
    feedback(exchange, "phys201", md5(b"s1ps1"), b"<html>sam first</html>")
    (exchange / "phys201" / "outbound" / "ps1" / "ps1.ipynb").write_bytes(NB + b"\n")
    third = run("fs", str(exchange))
    assert "1 submissions added" in third and "1 feedback added" in third
    assert "1 releases replaced" in third
    assert Submission.objects.count() == 4 and Feedback.objects.count() == 3


@pytest.mark.django_db
def test_feedback_released_again_replaces_the_imported_files(exchange):
    run("fs", str(exchange))
    feedback(exchange, "phys201", md5(b"s2ps1"), b"<html>sam, regraded</html>")
    out = run("fs", str(exchange))
    assert "1 feedback replaced" in out and "1 feedback unchanged" in out


@pytest.mark.django_db
def test_dry_run_reports_and_records_nothing(exchange):
    out = run("fs", str(exchange), "--dry-run")
    assert "Would import (dry run, nothing changed) phys201 (new course):" in out
    assert "3 submissions added" in out and "2 feedback added" in out
    assert "1 students added" not in out and "2 students added" in out
    assert not Submission.objects.exists() and not Blob.objects.exists()
    assert not list(blobstore.iter_stored_shas())
    run("fs", str(exchange))
    feedback(exchange, "phys201", md5(b"s2ps1"), b"<html>changed</html>")
    later = run("fs", str(exchange), "--dry-run")
    assert "1 feedback replaced" in later and "1 releases unchanged" in later


@pytest.mark.django_db
def test_bad_entries_are_skipped_with_their_reason(exchange):
    inbound = exchange / "phys201" / "inbound"
    bad_stamp = submit(exchange, "phys201", "uma", "2026-11-04 00:00:00.000000 UTC", secret="u")
    (bad_stamp / "timestamp.txt").write_text("last tuesday")
    dangling = submit(exchange, "phys201", "vic", T1, secret="v")
    (dangling / "notes.txt").symlink_to(dangling / "missing.txt")
    fifo = submit(exchange, "phys201", "wes", T1, secret="w")
    os.mkfifo(fifo / "pipe")
    (inbound / "README").write_text("not a submission")
    twin = inbound / f"sam+ps1+{T1}+zzz"
    twin.mkdir()
    (twin / "timestamp.txt").write_text(T1)
    stray = feedback(exchange, "phys201", md5(b"nobody"), b"<html>?</html>")
    (exchange / "phys201" / "feedback" / "notes.txt").write_text("x")
    (exchange / "phys201" / "outbound" / "stray.txt").write_text("x")
    bad_path = submit(exchange, "phys201", "xan", T2, secret="x")
    (bad_path / "tab\there").write_text("x")
    out = run("fs", str(exchange))
    assert "skipped 9:" in out
    assert f"{bad_stamp}: timestamp.txt: 'last tuesday' is not a time" in out
    assert f"{dangling}: cannot read {dangling / 'notes.txt'}: No such file or directory" in out
    assert f"{fifo}: cannot read {fifo / 'pipe'}: not a regular file" in out
    assert f"{inbound / 'README'}: not a submission" in out
    assert f"{twin}: another submission of this student has the same timestamp" in out
    assert f"{stray}: matches no submission's notebooks" in out
    assert "notes.txt: not a feedback file" in out
    assert "stray.txt: not an assignment directory" in out
    assert "contains control characters" in out
    assert "3 submissions added" in out
    names = set(Submission.objects.values_list("student__username", flat=True))
    assert names == {"sam", "tia"}


@pytest.mark.django_db
def test_only_the_named_courses_are_imported(exchange):
    submit(exchange, "chem101", "sam", T1, secret="c")
    out = run("fs", str(exchange), "--course", "chem101")
    assert "chem101" in out and "phys201" not in out
    with pytest.raises(CommandError, match="No course bio1 under"):
        run("fs", str(exchange), "--course", "bio1")
    with pytest.raises(CommandError, match="is not a directory"):
        run("fs", str(exchange / "nope"))


@pytest.mark.django_db
def test_a_course_that_fails_is_rolled_back_and_the_others_go_in(exchange):
    submit(exchange, "bad course", "sam", T1, secret="c")
    with pytest.raises(CommandError, match="1 course\\(s\\) not imported: bad course"):
        run("fs", str(exchange))
    assert Submission.objects.filter(assignment__course__code="phys201").count() == 3


@pytest.mark.django_db
def test_a_failure_midway_records_nothing_of_that_course(exchange):
    real = services.import_feedback
    with mock.patch.object(services, "import_feedback", side_effect=RuntimeError("disk gone")):
        with pytest.raises(RuntimeError):
            run("fs", str(exchange))
    assert not Submission.objects.exists() and not Membership.objects.exists()
    assert real is services.import_feedback
    out = run("fs", str(exchange))
    assert "3 submissions added" in out


@pytest.mark.django_db
def test_an_existing_member_keeps_their_role(exchange):
    course = services.create_course(code="phys201")
    services.add_member(course=course, username="sam", role=Membership.Role.INSTRUCTOR)
    run("fs", str(exchange))
    assert Membership.objects.get(user__username="sam").role == "instructor"


@pytest.mark.django_db
def test_what_hangs_on_a_skipped_entry_is_skipped_too(exchange):
    # sam's second submission (the one with feedback) has a file that cannot be read.
    second = next((exchange / "phys201" / "inbound").glob(f"sam+ps1+{T2}+*"))
    (second / "broken").symlink_to(second / "nowhere")
    submit(exchange, "phys201", "x" * 200, T1, secret="long")
    latin = submit(exchange, "phys201", "yan", T2, secret="y")
    (latin / "timestamp.txt").write_bytes(b"2026-11-02 \xe9t\xe9")
    for args in (["--dry-run"], []):
        out = run("fs", str(exchange), *args)
        assert f"feedback for {second}: its submission was not imported" in out
        assert f"{latin}: cannot read: not UTF-8 text" in out
    assert f"student {'x' * 200!r}: The user name is longer than 150 characters." in out
    assert f"{'x' * 200!r} is not on the roster" in out
    assert Submission.objects.count() == 2 and Feedback.objects.count() == 1
