"""submit_assignment: every submission kept, unique timestamps, dedup, nothing half-made."""

from __future__ import annotations

import io
import json

import pytest

from courses import blobstore, services
from courses.exceptions import BadArchive, NotFound, PermissionDenied
from courses.models import AuditEvent, Blob, Bundle, Submission
from tests.harness.uploads import make_upload, manifest_of, tar_gz

pytestmark = pytest.mark.storage


def test_student_submission_is_recorded_with_its_files(released, people):
    files = {"ps1.ipynb": b'{"cells": [1]}', "data/big.csv": b"x,y\n" * 1000}
    submission = services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload(files)
    )
    stored = {
        e.path: b"".join(blobstore.iter_blob(e.blob_id)) for e in submission.bundle.entries.all()
    }
    assert stored == files
    assert AuditEvent.objects.filter(action="submitted", submission=submission).exists()


def test_released_file_submitted_back_unchanged_is_stored_once(released, people):
    files = {"ps1.ipynb": b'{"cells": [1]}', "data/big.csv": b"x,y\n" * 1000}
    blobs_before = Blob.objects.count()
    services.submit_assignment(
        student=people["sam"],
        assignment=released,
        upload=make_upload(files, omit=["data/big.csv"]),
    )
    # Only the changed notebook is new.
    assert Blob.objects.count() == blobs_before + 1
    assert len(list(blobstore.iter_stored_shas())) == blobs_before + 1


def test_resubmission_keeps_both_with_increasing_timestamps(released, people):
    first = services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload({"a.txt": b"1"})
    )
    second = services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload({"a.txt": b"2"})
    )
    assert second.timestamp > first.timestamp
    assert Submission.objects.filter(student=people["sam"]).count() == 2


@pytest.mark.parametrize("who", ["ines", "gus"])
def test_staff_of_the_course_cannot_submit(released, people, who):
    with pytest.raises(PermissionDenied):
        services.submit_assignment(
            student=people[who], assignment=released, upload=make_upload({"a.txt": b"1"})
        )


def test_outsider_cannot_submit_and_learns_nothing(released, people):
    with pytest.raises(NotFound):
        services.submit_assignment(
            student=people["olga"], assignment=released, upload=make_upload({"a.txt": b"1"})
        )


def test_hash_of_another_students_file_cannot_be_referenced(released, people):
    secret = {"answer.txt": b"tia's private answer"}
    services.submit_assignment(
        student=people["tia"], assignment=released, upload=make_upload(secret)
    )
    with pytest.raises(BadArchive, match=r"answer\.txt"):
        services.submit_assignment(
            student=people["sam"],
            assignment=released,
            upload=make_upload(secret, omit=["answer.txt"]),
        )
    assert not Submission.objects.filter(student=people["sam"]).exists()


def test_the_read_of_what_may_be_sent_without_bytes_is_compiled_once(released, people, monkeypatch):
    # The first submit of two files compiles the read for two hashes; later ones of two
    # files, by anyone, run it with their own values, and it still tells them apart.
    from courses.services import bundles, submissions

    # Compiled reads of earlier tests (same thread and connection) are forgotten.
    submissions._READABLE_TO_STUDENT([], 0, 0).known._local.__dict__.clear()
    own = {"a.txt": b"sam's first", "b.txt": b"sam's second"}
    services.submit_assignment(student=people["sam"], assignment=released, upload=make_upload(own))
    built: list[list[str]] = []
    original = bundles._known_query
    monkeypatch.setattr(
        bundles,
        "_known_query",
        lambda wanted, readable: built.append(wanted) or original(wanted, readable),
    )
    again = {"a.txt": own["a.txt"], "c.txt": b"sam's third"}
    services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload(again, omit=["a.txt"])
    )
    with pytest.raises(BadArchive, match=r"b\.txt"):
        services.submit_assignment(
            student=people["tia"],
            assignment=released,
            upload=make_upload({"b.txt": own["b.txt"], "d.txt": b"tia's"}, omit=["b.txt"]),
        )
    assert built == []
    # Three files: a new length, compiled once.
    three = {**again, "d.txt": b"sam's fourth"}
    services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload(three, omit=["a.txt"])
    )
    assert len(built) == 1
    assert Submission.objects.filter(student=people["sam"]).count() == 3


def test_wrong_hash_records_nothing(released, people):
    manifest = manifest_of({"a.txt": b"promised"})
    upload = services.Upload(
        manifest=json.dumps(manifest), archive=io.BytesIO(tar_gz({"a.txt": b"differen"}))
    )
    bundles = Bundle.objects.count()
    with pytest.raises(BadArchive, match="does not match the manifest"):
        services.submit_assignment(student=people["sam"], assignment=released, upload=upload)
    assert Bundle.objects.count() == bundles
    assert not Submission.objects.exists()


def test_unreleased_assignment_cannot_be_submitted(released, people):
    services.unrelease_assignment(actor=people["ines"], assignment=released)
    released.refresh_from_db()
    with pytest.raises(NotFound):
        services.submit_assignment(
            student=people["sam"], assignment=released, upload=make_upload({"a.txt": b"1"})
        )
