"""collect_submissions, release_feedback and fetch_feedback."""

from __future__ import annotations

import datetime as dt

import pytest

from courses import blobstore, grades, selectors, services, storage_checks
from courses.exceptions import BadArchive, NotFound, PermissionDenied
from courses.models import AuditEvent, Bundle, Feedback
from courses.services import feedback as feedback_service
from tests.harness.uploads import make_upload

pytestmark = pytest.mark.storage


@pytest.fixture
def submissions(released, people):
    made = {}
    for who, versions in [("sam", [b"s1", b"s2"]), ("tia", [b"t1"])]:
        for data in versions:
            made.setdefault(who, []).append(
                services.submit_assignment(
                    student=people[who], assignment=released, upload=make_upload({"a.txt": data})
                )
            )
    return made


def test_collect_latest_gives_one_per_student(released, people, submissions):
    collected = services.collect_submissions(actor=people["ines"], assignment=released)
    assert [(s.student.username, s.pk) for s in collected] == [
        ("sam", submissions["sam"][-1].pk),
        ("tia", submissions["tia"][-1].pk),
    ]
    event = AuditEvent.objects.get(action="collected")
    assert event.detail == {"submissions": 2, "latest_only": True}


def test_collect_all_and_one_student(released, people, submissions):
    everything = services.collect_submissions(
        actor=people["gus"], assignment=released, latest_only=False
    )
    assert len(everything) == 3
    only_sam = services.collect_submissions(
        actor=people["gus"], assignment=released, latest_only=False, student="sam"
    )
    assert {s.student.username for s in only_sam} == {"sam"}


@pytest.mark.parametrize("who", ["sam", "tia"])
def test_students_cannot_collect(released, people, submissions, who):
    with pytest.raises(PermissionDenied):
        services.collect_submissions(actor=people[who], assignment=released)


def test_feedback_reaches_only_its_student(released, people, submissions):
    sam_latest = submissions["sam"][-1]
    services.release_feedback(
        actor=people["gus"],
        submission=sam_latest,
        upload=make_upload({"ps1.html": b"<p>well done sam</p>"}),
    )
    mine = services.fetch_feedback(student=people["sam"], assignment=released)
    assert [f.submission_id for f in mine] == [sam_latest.pk]
    data = b"".join(blobstore.iter_blob(mine[0].bundle.entries.get().blob_id))
    assert data == b"<p>well done sam</p>"
    assert services.fetch_feedback(student=people["tia"], assignment=released) == []
    with pytest.raises(NotFound):
        services.fetch_feedback(student=people["tia"], assignment=released, submission=sam_latest)


def test_releasing_feedback_again_replaces_it(released, people, submissions):
    target = submissions["tia"][0]
    first = services.release_feedback(
        actor=people["ines"], submission=target, upload=make_upload({"f.html": b"v1"})
    )
    old_bundle = first.bundle_id
    second = services.release_feedback(
        actor=people["ines"], submission=target, upload=make_upload({"f.html": b"v2"})
    )
    assert second.pk == first.pk and Feedback.objects.count() == 1
    # The old files stay, owned by nothing, until gc_blobs (a collect may be reading them).
    assert list(storage_checks.ownerless_bundles().values_list("pk", flat=True)) == [old_bundle]
    assert storage_checks.gc_blobs(grace=dt.timedelta(0)).bundles == [old_bundle]
    assert not Bundle.objects.filter(pk=old_bundle).exists()


def test_a_students_feedback_comes_whole_with_files_and_scores_of_each_submission(
    released, people, submissions
):
    first, second = submissions["sam"]
    for target, text in [(second, b"second"), (first, b"first")]:
        services.release_feedback(
            actor=people["gus"],
            submission=target,
            upload=make_upload({"b.html": text, "a.html": text + b"!"}),
            scores=[grades.Score("ps1", 1.0 if target is first else 2.0, 3.0)],
        )
    services.release_feedback(
        actor=people["gus"],
        submission=submissions["tia"][0],
        upload=make_upload({"a.html": b"tia"}),
    )
    mine = services.fetch_feedback(student=people["sam"], assignment=released)
    # Oldest submission first; each with its own files (by path) and its own scores.
    assert [f.submission_id for f in mine] == [first.pk, second.pk]
    assert [[e.path for e in selectors.bundle_entries(f.bundle)] for f in mine] == [
        ["a.html", "b.html"],
        ["a.html", "b.html"],
    ]
    assert [grades.feedback_total(f).score for f in mine] == [1.0, 2.0]
    assert b"".join(blobstore.iter_blob(selectors.bundle_entries(mine[0].bundle)[1].blob_id)) == (
        b"first"
    )


def test_feedback_released_again_while_it_is_read_comes_whole(
    released, people, submissions, monkeypatch
):
    """The files are read after the feedback rows: a release in between (another bundle)
    must not leave the answer with no files, or with another release's files under the
    first one's row: the feedback is read again, whole."""
    target = submissions["tia"][0]
    services.release_feedback(
        actor=people["ines"], submission=target, upload=make_upload({"f.html": b"v1"})
    )
    read_files = feedback_service._FEEDBACK_FILES

    def released_meanwhile(*values):
        services.release_feedback(
            actor=people["ines"],
            submission=target,
            upload=make_upload({"f.html": b"v2", "g.html": b"new"}),
        )
        return read_files(*values)

    monkeypatch.setattr(feedback_service, "_FEEDBACK_FILES", released_meanwhile)
    [item] = services.fetch_feedback(student=people["tia"], assignment=released)
    entries = selectors.bundle_entries(item.bundle)
    assert [e.path for e in entries] == ["f.html", "g.html"]
    assert item.bundle.file_count == 2
    assert b"".join(blobstore.iter_blob(entries[0].blob_id)) == b"v2"


def test_students_cannot_release_feedback(released, people, submissions):
    with pytest.raises(PermissionDenied):
        services.release_feedback(
            actor=people["sam"],
            submission=submissions["sam"][0],
            upload=make_upload({"f.html": b"self-praise"}),
        )


def test_feedback_cannot_reference_another_courses_bytes(released, people, submissions):
    with pytest.raises(BadArchive):
        services.release_feedback(
            actor=people["ines"],
            submission=submissions["sam"][0],
            upload=make_upload({"f.html": b"never uploaded"}, omit=["f.html"]),
        )


def test_student_sees_unreleased_assignment_they_submitted_to(released, people, submissions):
    from courses.permissions import get_assignment_for

    services.unrelease_assignment(actor=people["ines"], assignment=released, force=True)
    assignment, role = get_assignment_for(people["sam"], "phys101", "ps1")
    assert assignment.pk == released.pk and role == "student"
    with pytest.raises(NotFound):
        get_assignment_for(people["olga"], "phys101", "ps1")


def test_selectors_count_and_list(released, people, submissions):
    figures = selectors.figures_of(released)
    assert figures.submissions == 3 and figures.submitted == 2
    assert list(selectors.submissions_of(people["sam"], released)) == submissions["sam"]
    assert selectors.my_courses(people["sam"]) == [selectors.CourseRow(released.course, "student")]
    assert selectors.my_courses(people["olga"]) == []


def test_students_see_released_assignments_only(course, people, released):
    from courses.models import Assignment

    Assignment.objects.create(course=course, code="draft")
    assert [a.code for a in selectors.assignments_for(course, "student")] == ["ps1"]
    assert [a.code for a in selectors.assignments_for(course, "grader")] == ["draft", "ps1"]
    assert [row.course.code for row in selectors.my_courses(people["sam"])] == ["phys101"]
