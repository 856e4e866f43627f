"""The admin writes through the services: deletes, role and due-date edits and token
revocation are checked and audited like any other change, deletes leave no bundle behind
(so ``gc_blobs`` frees the bytes), and a refused change is an error message, not a 500."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.messages import get_messages

from api.models import ApiToken
from api.tokens import create_api_token, revoke_api_tokens
from courses import blobstore, services, storage_checks
from courses.models import (
    Assignment,
    AuditEvent,
    Blob,
    Bundle,
    Course,
    Extension,
    Feedback,
    Membership,
    Submission,
)
from tests.harness.uploads import make_upload


@pytest.fixture
def it_admin(django_user_model, db):
    # No password: force_login does without, and hashing one costs a second per test.
    return django_user_model.objects.create(username="it-admin", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, it_admin):
    client.force_login(it_admin)
    return client


@pytest.fixture
def filled(released, people):
    """sam's submission with bytes nobody else has, and feedback on it with its own bytes."""
    submission = services.submit_assignment(
        student=people["sam"], assignment=released, upload=make_upload({"a.txt": b"sam only"})
    )
    services.release_feedback(
        actor=people["ines"], submission=submission, upload=make_upload({"f.html": b"fb only"})
    )
    return submission


def shas_of(*bundles: Bundle) -> set[str]:
    return {sha for bundle in bundles for sha in bundle.entries.values_list("blob_id", flat=True)}


def collect_garbage() -> None:
    storage_checks.gc_blobs(grace=dt.timedelta(0))


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_bulk_delete_of_submissions_frees_their_bytes_and_is_audited(admin_client, filled):
    own = shas_of(filled.bundle, filled.feedback.bundle)
    response = admin_client.post(
        "/admin/courses/submission/",
        {"action": "delete_selected", "_selected_action": [filled.pk], "post": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    assert not Submission.objects.exists() and not Feedback.objects.exists()
    assert set(Bundle.objects.values_list("kind", flat=True)) == {"release"}
    event = AuditEvent.objects.get(action="submission_deleted")
    assert (event.actor_name, event.student_name, event.assignment_code) == (
        "it-admin",
        "sam",
        "ps1",
    )
    collect_garbage()
    assert not Blob.objects.filter(sha256__in=own).exists()
    assert not any(blobstore.exists(sha) for sha in own)


def test_deleting_feedback_keeps_the_submission_and_frees_the_feedback(admin_client, filled):
    feedback_shas = shas_of(filled.feedback.bundle)
    submission_shas = shas_of(filled.bundle)
    response = admin_client.post(
        f"/admin/courses/feedback/{filled.feedback.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert Submission.objects.filter(pk=filled.pk).exists() and not Feedback.objects.exists()
    assert AuditEvent.objects.filter(action="feedback_deleted", student_name="sam").exists()
    collect_garbage()
    assert not any(blobstore.exists(sha) for sha in feedback_shas)
    assert all(blobstore.exists(sha) for sha in submission_shas)


def test_deleting_a_course_in_the_admin_frees_everything_it_held(admin_client, filled):
    course = filled.assignment.course
    everything = set(Blob.objects.values_list("sha256", flat=True))
    response = admin_client.post(f"/admin/courses/course/{course.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Course.objects.exists() and not Bundle.objects.exists()
    event = AuditEvent.objects.get(action="course_deleted")
    assert (event.course_code, event.actor_name, event.detail["submissions"]) == (
        "phys101",
        "it-admin",
        1,
    )
    collect_garbage()
    assert not any(blobstore.exists(sha) for sha in everything)


def test_deleting_courses_in_bulk_goes_through_the_service(admin_client, filled):
    services.create_course(code="chem200")
    ids = list(Course.objects.values_list("pk", flat=True))
    admin_client.post(
        "/admin/courses/course/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert not Course.objects.exists() and not Bundle.objects.exists()
    assert AuditEvent.objects.filter(action="course_deleted").count() == 2


def test_deleting_an_assignment_in_the_admin_frees_its_release_and_submissions(
    admin_client, filled
):
    response = admin_client.post(
        f"/admin/courses/assignment/{filled.assignment.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Assignment.objects.exists() and not Bundle.objects.exists()
    assert AuditEvent.objects.filter(action="assignment_deleted", assignment_code="ps1").exists()


def test_a_refused_removal_is_an_admin_message_not_a_server_error(admin_client, it_admin):
    course = services.create_course(code="solo", instructors=["it-admin"])
    mine = Membership.objects.get(course=course, user=it_admin)
    response = admin_client.post(f"/admin/courses/membership/{mine.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert response.url == f"/admin/courses/membership/{mine.pk}/change/"
    assert any("last instructor" in m for m in messages_of(response))
    assert Membership.objects.filter(pk=mine.pk).exists()

    # The bulk action: all or nothing, and the sentence.
    other = services.add_member(course=course, username="stu", role="student")
    response = admin_client.post(
        "/admin/courses/membership/",
        {"action": "remove_from_course", "_selected_action": [other.pk, mine.pk]},
    )
    assert response.status_code == 302
    assert any("last instructor" in m for m in messages_of(response))
    assert Membership.objects.filter(course=course).count() == 2


def test_a_refused_change_on_the_course_page_is_a_message_and_changes_nothing(
    admin_client, it_admin
):
    course = services.create_course(code="solo", title="Solo", instructors=["it-admin"])
    mine = Membership.objects.get(course=course, user=it_admin)
    data = {
        "title": "Renamed",
        "memberships-TOTAL_FORMS": "1",
        "memberships-INITIAL_FORMS": "1",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
        "memberships-0-id": str(mine.pk),
        "memberships-0-course": str(course.pk),
        "memberships-0-user": str(it_admin.pk),
        "memberships-0-role": "instructor",
        "memberships-0-DELETE": "on",
    }
    url = f"/admin/courses/course/{course.pk}/change/"
    response = admin_client.post(url, data)
    assert (response.status_code, response.url) == (302, url)
    assert any("last instructor" in m for m in messages_of(response))
    course.refresh_from_db()
    assert course.title == "Solo" and Membership.objects.filter(pk=mine.pk).exists()


def test_names_edited_on_the_membership_page_are_the_courses_own(admin_client, people):
    sam = Membership.objects.get(user__username="sam")
    response = admin_client.post(
        f"/admin/courses/membership/{sam.pk}/change/",
        {"role": "grader", "first_name": "Samuel", "last_name": "", "email": ""},
    )
    assert response.status_code == 302
    sam.refresh_from_db()
    assert (sam.role, sam.first_name, sam.user.first_name) == ("grader", "Samuel", "")
    changes = set(AuditEvent.objects.values_list("detail__change", flat=True))
    assert {"role", "details"} <= changes


def test_due_date_edit_goes_through_the_service_and_is_audited(admin_client, filled):
    assignment = filled.assignment
    response = admin_client.post(
        f"/admin/courses/assignment/{assignment.pk}/change/",
        {"due_date_0": "2020-01-01", "due_date_1": "12:00:00"},
    )
    assert response.status_code == 302, response.content.decode()[:1000]
    assignment.refresh_from_db()
    assert assignment.due_date == dt.datetime(2020, 1, 1, 12, tzinfo=dt.UTC)
    event = AuditEvent.objects.get(action="due_date_changed")
    assert (event.detail["old_due_date"], event.actor_name) == (None, "it-admin")
    assert Submission.objects.get(pk=filled.pk).is_late
    # Saving the same date again records nothing new; clearing it does.
    admin_client.post(
        f"/admin/courses/assignment/{assignment.pk}/change/",
        {"due_date_0": "2020-01-01", "due_date_1": "12:00:00"},
    )
    admin_client.post(
        f"/admin/courses/assignment/{assignment.pk}/change/", {"due_date_0": "", "due_date_1": ""}
    )
    assert AuditEvent.objects.filter(action="due_date_changed").count() == 2
    assert admin_client.get("/admin/courses/assignment/add/").status_code == 403


def test_a_course_added_in_the_admin_is_created_by_the_service(admin_client):
    response = admin_client.post(
        "/admin/courses/course/add/",
        {
            "code": "bio1",
            "title": "Biology",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 302
    assert AuditEvent.objects.filter(action="course_created", course_code="bio1").exists()
    response = admin_client.post(
        "/admin/courses/course/add/",
        {
            "code": "bad id",
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
            "memberships-MIN_NUM_FORMS": "0",
            "memberships-MAX_NUM_FORMS": "1000",
        },
    )
    assert response.status_code == 200 and not Course.objects.filter(code="bad id").exists()


def test_token_revocation_in_the_admin_uses_revoke_api_tokens(admin_client, people):
    create_api_token(user=people["sam"])
    create_api_token(user=people["sam"])
    create_api_token(user=people["tia"])
    chosen = ApiToken.objects.filter(user__username="sam").order_by("pk").first()
    theirs = ApiToken.objects.get(user__username="tia")
    response = admin_client.post(
        "/admin/api/apitoken/",
        {"action": "revoke", "_selected_action": [chosen.pk, theirs.pk]},
        follow=True,
    )
    assert b"Revoked 2 token(s)." in response.content
    assert set(ApiToken.objects.filter(revoked_at__isnull=False).values_list("pk", flat=True)) == {
        chosen.pk,
        theirs.pk,
    }
    events = AuditEvent.objects.filter(action="tokens_revoked")
    assert sorted(events.values_list("student_name", "actor_name")) == [
        ("sam", "it-admin"),
        ("tia", "it-admin"),
    ]
    assert admin_client.post(f"/admin/api/apitoken/{chosen.pk}/delete/").status_code == 403
    # Nothing left to revoke of tia's: nothing recorded.
    assert revoke_api_tokens(user=people["tia"]) == 0
    assert AuditEvent.objects.filter(action="tokens_revoked").count() == 2


def test_only_site_admins_delete(people, filled):
    # Submissions are the exception: the course's instructors remove them too (see
    # courses/tests/test_removal.py), graders and students do not.
    for who in ("gus", "sam"):
        with pytest.raises(services.PermissionDenied, match="may not remove submissions"):
            services.delete_submission(actor=people[who], submission=filled)
    for call in (
        lambda: services.delete_feedback(actor=people["ines"], feedback=filled.feedback),
        lambda: services.delete_assignment(actor=people["ines"], assignment=filled.assignment),
        lambda: services.delete_course(actor=people["ines"], course=filled.assignment.course),
    ):
        with pytest.raises(services.PermissionDenied, match="Only site admins"):
            call()
    with pytest.raises(services.PermissionDenied):
        services.set_due_date(actor=people["sam"], assignment=filled.assignment, due_date=None)


def test_deleting_a_user_in_the_admin_frees_their_submissions(admin_client, filled, people):
    own = shas_of(filled.bundle, filled.feedback.bundle)
    sam = people["sam"]
    response = admin_client.post(f"/admin/auth/user/{sam.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Submission.objects.exists()
    assert set(Bundle.objects.values_list("kind", flat=True)) == {"release"}
    event = AuditEvent.objects.get(action="user_deleted")
    assert (event.student_name, event.detail["submissions"]) == ("sam", 1)
    collect_garbage()
    assert not any(blobstore.exists(sha) for sha in own)
    with pytest.raises(services.PermissionDenied):
        services.delete_user(actor=people["ines"], user=people["tia"])


def test_cutoff_and_extensions_in_the_admin_go_through_the_deadline_services(
    admin_client, filled, people
):
    assignment = filled.assignment
    url = f"/admin/courses/assignment/{assignment.pk}/change/"
    bad = admin_client.post(
        url,
        {
            "due_date_0": "2030-01-02",
            "due_date_1": "12:00:00",
            "accept_until_0": "2030-01-01",
            "accept_until_1": "12:00:00",
        },
    )
    assert any("cannot be before the due date" in m for m in messages_of(bad))
    assignment.refresh_from_db()
    assert assignment.due_date is None and assignment.accept_until is None
    admin_client.post(
        url,
        {
            "due_date_0": "2030-01-01",
            "due_date_1": "12:00:00",
            "accept_until_0": "2030-01-02",
            "accept_until_1": "12:00:00",
        },
    )
    assignment.refresh_from_db()
    assert assignment.accept_until == dt.datetime(2030, 1, 2, 12, tzinfo=dt.UTC)
    added = admin_client.post(
        "/admin/courses/extension/add/",
        {
            "assignment": assignment.pk,
            "student": people["sam"].pk,
            "due_date_0": "2030-01-05",
            "due_date_1": "12:00:00",
            "accept_until_0": "",
            "accept_until_1": "",
        },
    )
    assert added.status_code == 302, added.content[:2000]
    extension = Extension.objects.get()
    assert (extension.due_date.day, extension.granted_by.username) == (5, "it-admin")
    admin_client.post(
        f"/admin/courses/extension/{extension.pk}/change/",
        {"due_date_0": "2030-01-06", "due_date_1": "12:00:00"},
    )
    extension.refresh_from_db()
    assert extension.due_date.day == 6
    admin_client.post(f"/admin/courses/extension/{extension.pk}/delete/", {"post": "yes"})
    assert not Extension.objects.exists()
    assert list(
        AuditEvent.objects.filter(actor_name="it-admin")
        .order_by("id")
        .values_list("action", flat=True)
    ) == [
        "due_date_changed",
        "cutoff_changed",
        "extension_granted",
        "extension_granted",
        "extension_revoked",
    ]
