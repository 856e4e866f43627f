"""The deadline API: PATCH an assignment's dates, extensions granted, listed and revoked,
students' own dates in the assignment list, and the 403 of a submission after the cutoff."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from courses import deadlines
from courses.models import Submission
from tests.harness.uploads import upload_form

FILES = {"ps1.ipynb": b'{"cells": ["answer"]}'}
HOUR = dt.timedelta(hours=1)


A = "/api/v1/courses/phys101/assignments/ps1"


def test_api_patch_changes_only_the_keys_given(people, released, client_for):
    ines = client_for(people["ines"])
    answer = ines.patch(A, {"due_date": "2030-01-01 12:00:00 UTC"}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["due_date"] == "2030-01-01 12:00:00.000000 UTC"
    answer = ines.patch(A, {"accept_until": "2030-01-02 12:00:00 UTC"}, format="json")
    assert answer.json()["due_date"] == "2030-01-01 12:00:00.000000 UTC"
    assert answer.json()["accept_until"] == "2030-01-02 12:00:00.000000 UTC"
    refused = ines.patch(A, {"accept_until": "2029-01-01 00:00:00 UTC"}, format="json")
    assert refused.status_code == 400
    assert "cannot be before the due date" in refused.json()["detail"]
    bad = ines.patch(A, {"due_date": "soon"}, format="json")
    assert bad.status_code == 400
    released.refresh_from_db()
    assert released.accept_until.year == 2030


def test_api_students_see_their_own_dates(people, released, client_for):
    ines = client_for(people["ines"])
    ines.patch(A, {"due_date": "2030-01-01 12:00:00 UTC"}, format="json")
    granted = ines.put(
        f"{A}/extensions/sam",
        {"due_date": "2030-01-08 12:00:00 UTC", "accept_until": "2030-01-09 12:00:00 UTC"},
        format="json",
    )
    assert granted.status_code == 201, granted.content
    assert granted.json()["granted_by"] == "ines"
    again = ines.put(f"{A}/extensions/sam", {"due_date": "2030-01-07 12:00:00 UTC"}, format="json")
    assert again.status_code == 200
    sam = client_for(people["sam"]).get("/api/v1/courses/phys101/assignments").json()[0]
    tia = client_for(people["tia"]).get(A).json()
    assert (sam["due_date"], sam["accept_until"], sam["extended"]) == (
        "2030-01-07 12:00:00.000000 UTC",
        None,
        True,
    )
    assert (tia["due_date"], tia["extended"]) == ("2030-01-01 12:00:00.000000 UTC", False)
    listed = client_for(people["gus"]).get(f"{A}/extensions").json()
    assert [(e["student"], e["due_date"]) for e in listed] == [
        ("sam", "2030-01-07 12:00:00.000000 UTC")
    ]
    assert "extended" not in ines.get(A).json()
    assert ines.delete(f"{A}/extensions/sam").status_code == 204
    assert client_for(people["sam"]).get(A).json()["extended"] is False


def test_api_submit_after_cutoff_is_403_with_the_sentence(people, released, client_for):
    deadlines.set_deadlines(
        actor=people["ines"], assignment=released, accept_until=timezone.now() - HOUR
    )
    answer = client_for(people["sam"]).post(
        f"{A}/submissions", upload_form(FILES), format="multipart"
    )
    assert answer.status_code == 403
    assert answer.json()["error"] == "past_cutoff"
    assert "stopped accepting submissions" in answer.json()["detail"]
    assert not Submission.objects.exists()
