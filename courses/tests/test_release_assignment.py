"""release_assignment and unrelease_assignment."""

from __future__ import annotations

import datetime as dt

import pytest

from courses import blobstore, services, storage_checks
from courses.exceptions import BadRequest, Conflict, NotFound, PermissionDenied
from courses.models import Assignment, AuditEvent, Blob
from tests.harness.uploads import make_upload

FILES = {"ps1.ipynb": b'{"cells": []}', "data/big.csv": b"x,y\n" * 1000}

pytestmark = pytest.mark.storage


def test_instructor_releases_files_and_due_date(course, people):
    due = dt.datetime(2026, 12, 1, 23, 59, tzinfo=dt.UTC)
    assignment = services.release_assignment(
        actor=people["ines"], course=course, code="ps1", upload=make_upload(FILES), due_date=due
    )
    assert assignment.is_released and assignment.due_date == due
    assert assignment.released_by == people["ines"]
    stored = {
        e.path: b"".join(blobstore.iter_blob(e.blob_id)) for e in assignment.release.entries.all()
    }
    assert stored == FILES
    assert AuditEvent.objects.filter(action="released", assignment=assignment).count() == 1


@pytest.mark.parametrize("who", ["gus", "sam"])
def test_graders_and_students_cannot_release(course, people, who):
    with pytest.raises(PermissionDenied, match="may not release"):
        services.release_assignment(
            actor=people[who], course=course, code="ps1", upload=make_upload(FILES)
        )
    assert not Assignment.objects.exists()


def test_outsider_gets_not_found(course, people):
    with pytest.raises(NotFound):
        services.release_assignment(
            actor=people["olga"], course=course, code="ps1", upload=make_upload(FILES)
        )


@pytest.mark.parametrize("code", ["../x", "a b", "", ".."])
def test_bad_assignment_ids_are_refused(course, people, code):
    with pytest.raises(BadRequest):
        services.release_assignment(
            actor=people["ines"], course=course, code=code, upload=make_upload(FILES)
        )


def test_rerelease_before_anyone_fetched_replaces_the_files(released, people, course):
    old_bundle = released.release_id
    again = services.release_assignment(
        actor=people["ines"], course=course, code="ps1", upload=make_upload({"new.ipynb": b"{}"})
    )
    assert again.pk == released.pk
    assert [e.path for e in again.release.entries.all()] == ["new.ipynb"]
    # The old release is left, owned by nothing, for gc_blobs (reads in flight may use it).
    assert list(storage_checks.ownerless_bundles().values_list("pk", flat=True)) == [old_bundle]


def test_rerelease_after_fetch_and_submit_is_refused_with_counts(released, people, course):
    services.fetch_assignment(user=people["sam"], assignment=released)
    services.fetch_assignment(user=people["tia"], assignment=released)
    services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload({"a": b"1"})
    )
    with pytest.raises(Conflict) as caught:
        services.release_assignment(
            actor=people["ines"], course=course, code="ps1", upload=make_upload(FILES)
        )
    assert "fetched by 2 and submitted by 1" in caught.value.detail
    assert "force" in caught.value.detail
    forced = services.release_assignment(
        actor=people["ines"], course=course, code="ps1", upload=make_upload(FILES), force=True
    )
    assert forced.submissions.count() == 1


def test_rerelease_reuses_stored_bytes_without_sending_them(released, people, course):
    blobs = Blob.objects.count()
    services.release_assignment(
        actor=people["ines"],
        course=course,
        code="ps1",
        upload=make_upload({**FILES, "extra.txt": b"new"}, omit=list(FILES)),
    )
    assert Blob.objects.count() == blobs + 1


def test_release_in_another_course_cannot_reference_these_bytes(released, people):
    other = services.create_course(code="chem", instructors=["ines"])
    from courses.exceptions import BadArchive

    with pytest.raises(BadArchive, match="neither in the archive"):
        services.release_assignment(
            actor=people["ines"], course=other, code="ps1", upload=make_upload(FILES, omit=FILES)
        )


def test_unrelease_hides_the_assignment_and_keeps_submissions(released, people):
    services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload({"a": b"1"})
    )
    with pytest.raises(Conflict, match="submitted by 1"):
        services.unrelease_assignment(actor=people["ines"], assignment=released)
    services.unrelease_assignment(actor=people["ines"], assignment=released, force=True)
    released.refresh_from_db()
    assert not released.is_released
    assert released.submissions.count() == 1
    with pytest.raises(Conflict, match="not released"):
        services.unrelease_assignment(actor=people["ines"], assignment=released)
    with pytest.raises(NotFound):
        services.fetch_assignment(user=people["tia"], assignment=released)


def test_grader_cannot_unrelease(released, people):
    with pytest.raises(PermissionDenied):
        services.unrelease_assignment(actor=people["gus"], assignment=released)


def test_everyone_in_the_course_may_fetch_and_it_is_recorded(released, people):
    for who in ["ines", "gus", "sam"]:
        bundle = services.fetch_assignment(user=people[who], assignment=released)
        assert bundle == released.release
    assert AuditEvent.objects.filter(action="fetched", assignment=released).count() == 3
    with pytest.raises(NotFound):
        services.fetch_assignment(user=people["olga"], assignment=released)
