"""Reads see one consistent state: a request that read an assignment an instant before a
forced re-release or an unrelease committed still answers with that assignment's release,
whole (the interleaving that gave 500 ``Bundle.DoesNotExist`` under load, made
deterministic here; ``tests/test_replicas.py`` runs it on two live servers)."""

from __future__ import annotations

import pytest

from api.serializers import (
    AssignmentDetailSerializer,
    ReleaseManifestSerializer,
    SubmissionWithFilesSerializer,
)
from courses import selectors, services
from courses.permissions import get_assignment_for
from courses.selectors import AssignmentRow
from tests.harness.uploads import make_upload

pytestmark = pytest.mark.storage

OLD = {"ps1.ipynb", "data/big.csv"}


def _rerelease(people, course) -> None:
    services.release_assignment(
        actor=people["ines"],
        course=course,
        code="ps1",
        upload=make_upload({"v2.ipynb": b'{"cells": ["v2"]}'}),
        force=True,
    )


def test_detail_read_before_a_rerelease_lists_the_release_it_read(people, course, released):
    assignment, _ = get_assignment_for(people["sam"], "phys101", "ps1")
    _rerelease(people, course)  # commits between the view's read and its serializer
    data = AssignmentDetailSerializer(AssignmentRow(assignment)).data
    assert data["file_count"] == 2 and {f["path"] for f in data["files"]} == OLD


def test_fetch_read_before_a_rerelease_gets_the_release_it_read(people, course, released, rf):
    assignment, _ = get_assignment_for(people["sam"], "phys101", "ps1")
    _rerelease(people, course)
    bundle = services.fetch_assignment(user=people["sam"], assignment=assignment)
    assert bundle.pk == assignment.release_id
    data = ReleaseManifestSerializer(
        AssignmentRow(assignment), context={"request": rf.get("/")}
    ).data
    assert {f["path"] for f in data["files"]} == OLD and all(f["url"] for f in data["files"])


def test_fetch_read_before_an_unrelease_gets_the_release_it_read(people, released, rf):
    assignment, _ = get_assignment_for(people["sam"], "phys101", "ps1")
    services.unrelease_assignment(actor=people["ines"], assignment=released, force=True)
    services.fetch_assignment(user=people["sam"], assignment=assignment)
    data = ReleaseManifestSerializer(
        AssignmentRow(assignment), context={"request": rf.get("/")}
    ).data
    assert {f["path"] for f in data["files"]} == OLD


def test_collect_read_before_feedback_is_replaced_lists_the_feedback_it_read(
    people, submission, feedback, rf
):
    submissions = list(selectors.list_submissions(assignment=submission.assignment))
    services.release_feedback(
        actor=people["gus"], submission=submission, upload=make_upload({"v2.html": b"v2"})
    )
    data = SubmissionWithFilesSerializer(
        selectors.with_files(submissions), many=True, context={"request": rf.get("/")}
    ).data
    assert [f["path"] for f in data[0]["feedback_files"]] == ["feedback/ps1.html"]
