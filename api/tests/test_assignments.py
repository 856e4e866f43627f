"""Assignments, release, fetch, submissions, collect and feedback over the API."""

from __future__ import annotations

from courses.models import AuditEvent
from tests.harness.personas import FEEDBACK, SUBMITTED
from tests.harness.uploads import upload_form

A = "/api/v1/courses/phys101/assignments"


def test_students_see_released_assignments_only(people, released, unreleased, client_for):
    student = client_for(people["sam"]).get(A).json()
    assert [a["assignment_id"] for a in student] == ["ps1"]
    assert student[0] == {
        "course_id": "phys101",
        "assignment_id": "ps1",
        "released": True,
        "released_at": student[0]["released_at"],
        "due_date": None,
        "accept_until": None,
        "extended": False,
        "file_count": 2,
        "total_size": 4013,
    }
    staff = client_for(people["gus"]).get(A).json()
    assert [(a["assignment_id"], a["released"]) for a in staff] == [("ps1", True), ("ps2", False)]
    assert staff[1]["file_count"] == 0
    assert staff[0]["fetched_count"] == 0 and staff[0]["submitted_count"] == 0


def test_detail_lists_files_without_urls(people, released, client_for):
    detail = client_for(people["sam"]).get(f"{A}/ps1").json()
    assert [f["path"] for f in detail["files"]] == ["data/big.csv", "ps1.ipynb"]
    assert set(detail["files"][0]) == {"path", "size", "sha256"}


def test_fetch_is_recorded_and_counted(people, released, client_for):
    files = client_for(people["sam"]).get(f"{A}/ps1/release/files").json()["files"]
    assert all(f["url"].startswith("http://testserver/api/v1/files/") for f in files)
    assert AuditEvent.objects.filter(action="fetched", actor_name="sam").count() == 1
    assert client_for(people["ines"]).get(f"{A}/ps1").json()["fetched_count"] == 1


def test_unreleased_assignment_cannot_be_fetched(people, unreleased, client_for):
    response = client_for(people["ines"]).get(f"{A}/ps2/release/files")
    assert response.status_code == 404
    response = client_for(people["ines"]).delete(f"{A}/ps2/release")
    assert (response.status_code, response.json()["error"]) == (409, "not_released")


def test_rerelease_in_use_needs_force_and_says_how_many(people, submission, client_for):
    ines = client_for(people["ines"])
    response = ines.post(f"{A}/ps1/release", upload_form({"a.txt": b"v2"}), format="multipart")
    assert (response.status_code, response.json()["error"]) == (409, "in_use")
    assert "submitted by 1" in response.json()["detail"]
    response = ines.delete(f"{A}/ps1/release")
    assert response.status_code == 409
    form = {**upload_form({"a.txt": b"v2"}), "force": "true"}
    response = ines.post(f"{A}/ps1/release", form, format="multipart")
    assert response.status_code == 201
    assert [f["path"] for f in response.json()["files"]] == ["a.txt"]


def test_submissions_list_filters(people, released, submission, client_for):
    tia = client_for(people["tia"])
    tia.post(f"{A}/ps1/submissions", upload_form({"x.txt": b"tia"}), format="multipart")
    sam = client_for(people["sam"])
    sam.post(f"{A}/ps1/submissions", upload_form({"x.txt": b"sam 2"}), format="multipart")
    own = sam.get(f"{A}/ps1/submissions").json()
    assert [s["student"] for s in own] == ["sam", "sam"]
    assert [s["student"] for s in sam.get(f"{A}/ps1/submissions?latest=true").json()] == ["sam"]
    assert sam.get(f"{A}/ps1/submissions?student=tia").json() == []
    assert len(sam.get(f"{A}/ps1/submissions?student=sam").json()) == 2
    gus = client_for(people["gus"])
    assert len(gus.get(f"{A}/ps1/submissions").json()) == 3
    latest = gus.get(f"{A}/ps1/submissions?latest=true").json()
    assert [s["student"] for s in latest] == ["sam", "tia"]
    assert [s["student"] for s in gus.get(f"{A}/ps1/submissions?student=tia").json()] == ["tia"]


def test_collect_all_or_one_student_is_recorded(people, submission, client_for):
    gus = client_for(people["gus"])
    collected = gus.post(f"{A}/ps1/collect", {"latest": False}, format="json").json()
    assert [(s["student"], len(s["files"])) for s in collected] == [("sam", 2)]
    assert gus.post(f"{A}/ps1/collect", {"student": "tia"}, format="json").json() == []
    assert AuditEvent.objects.filter(action="collected").count() == 2


def test_feedback_round_trip(people, submission, client_for):
    sam, gus = client_for(people["sam"]), client_for(people["gus"])
    url = f"/api/v1/submissions/{submission.pk}/feedback"
    assert sam.get(url).status_code == 404
    assert sam.get(f"{A}/ps1/feedback").json() == []
    response = gus.post(url, upload_form(FEEDBACK), format="multipart")
    assert response.status_code == 201
    released_at = response.json()["released_at"]
    mine = sam.get(f"{A}/ps1/feedback").json()
    assert [(f["submission_id"], f["released_at"]) for f in mine] == [(submission.pk, released_at)]
    assert [f["path"] for f in sam.get(url).json()["files"]] == ["feedback/ps1.html"]
    listed = sam.get(f"{A}/ps1/submissions").json()[0]
    assert listed["has_feedback"] is True and listed["feedback_released_at"] == released_at
    # Feedback may reference the submission's own files without sending them again.
    again = upload_form({**FEEDBACK, "ps1.ipynb": SUBMITTED["ps1.ipynb"]}, omit=["ps1.ipynb"])
    assert gus.post(url, again, format="multipart").status_code == 201
    assert len(gus.get(url).json()["files"]) == 2


def test_submission_detail_lists_feedback_hashes_without_recording_a_fetch(
    people, submission, client_for
):
    sam, gus = client_for(people["sam"]), client_for(people["gus"])
    detail = f"/api/v1/submissions/{submission.pk}"
    assert sam.get(detail).json()["feedback_files"] == []
    gus.post(f"{detail}/feedback", upload_form(FEEDBACK), format="multipart")
    [entry] = sam.get(detail).json()["feedback_files"]
    assert set(entry) == {"path", "size", "sha256"}
    assert entry["path"] == "feedback/ps1.html"
    assert not AuditEvent.objects.filter(action="feedback_fetched").exists()


def test_student_keeps_seeing_an_unreleased_assignment_they_submitted_to(
    people, submission, client_for
):
    ines = client_for(people["ines"])
    assert ines.delete(f"{A}/ps1/release?force=true").status_code == 204
    sam = client_for(people["sam"])
    assert sam.get(f"{A}/ps1").json()["released"] is False
    assert sam.get(f"{A}/ps1/feedback").status_code == 200
    assert client_for(people["tia"]).get(f"{A}/ps1").status_code == 404


def test_a_submit_answer_names_the_release_it_was_recorded_against(people, released, client_for):
    sam, ines = client_for(people["sam"]), client_for(people["ines"])
    fetched = sam.get(f"{A}/ps1/release/files").json()["released_at"]
    answer = sam.post(f"{A}/ps1/submissions", upload_form({"x.txt": b"1"}), format="multipart")
    assert answer.status_code == 201
    assert answer.json()["assignment_released_at"] == fetched
    form = {**upload_form({"a.txt": b"v2"}), "force": "true"}
    assert ines.post(f"{A}/ps1/release", form, format="multipart").status_code == 201
    again = sam.post(f"{A}/ps1/submissions", upload_form({"x.txt": b"2"}), format="multipart")
    # What a plugin that remembers the fetched release compares: released again since.
    assert again.json()["assignment_released_at"] == sam.get(f"{A}/ps1").json()["released_at"]
    assert again.json()["assignment_released_at"] != fetched
    # Only the submit's answer carries it; the submission's own shape is unchanged.
    assert "assignment_released_at" not in sam.get(f"{A}/ps1/submissions").json()[0]
