"""Bad uploads and bad ids: each gets a clear 4xx in the one error form, and nothing is
recorded (no submission, bundle, blob row or audit event)."""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from courses import services
from courses.models import Bundle, Membership, Submission
from tests.harness.personas import SUBMITTED
from tests.harness.uploads import make_upload, manifest_of, recorded_rows, tar_gz, upload_form

SUBMIT = "/api/v1/courses/phys101/assignments/ps1/submissions"
NOTEBOOK = {"ps1.ipynb": b'{"cells": ["sam v2"]}'}

# Storage-facing: `make test-s3` runs these on SeaweedFS S3 too.
pytestmark = pytest.mark.storage


@pytest.fixture
def sam(people, released, client_for):
    return client_for(people["sam"])


def _refused(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["detail"].strip()
    if code is not None:
        assert body["error"] == code, body
    return body


def test_json_body_instead_of_multipart_is_415(sam):
    before = recorded_rows()
    response = sam.post(SUBMIT, {"manifest": manifest_of(NOTEBOOK)}, format="json")
    _refused(response, 415, "unsupported_media_type")
    assert recorded_rows() == before


def test_missing_manifest_is_400(sam):
    before = recorded_rows()
    response = sam.post(SUBMIT, {"archive": io.BytesIO(tar_gz(NOTEBOOK))}, format="multipart")
    body = _refused(response, 400, "bad_request")
    assert "manifest" in body["detail"]
    assert recorded_rows() == before


@pytest.mark.parametrize(
    "manifest",
    [
        "not json",
        '{"path": "ps1.ipynb"}',
        '[{"path": "ps1.ipynb", "size": 3}]',
        '[{"path": "../etc/passwd", "size": 3, "sha256": "' + "a" * 64 + '"}]',
        '[{"path": "ps1.ipynb", "size": -1, "sha256": "' + "a" * 64 + '"}]',
        '[{"path": "ps1.ipynb", "size": 3, "sha256": "XYZ"}]',
    ],
    ids=["not-json", "not-a-list", "missing-key", "escaping-path", "negative-size", "bad-hash"],
)
def test_malformed_manifest_is_400(sam, manifest):
    before = recorded_rows()
    form = {"manifest": manifest, "archive": io.BytesIO(tar_gz(NOTEBOOK))}
    _refused(sam.post(SUBMIT, form, format="multipart"), 400)
    assert recorded_rows() == before


def test_a_file_windows_reads_as_on_a_drive_is_400_naming_it(sam):
    files = {**NOTEBOOK, "0:notes.txt": b"a grader on Windows would not find this here"}
    before = recorded_rows()
    body = _refused(sam.post(SUBMIT, upload_form(files), format="multipart"), 400, "bad_archive")
    assert "'0:notes.txt'" in body["detail"] and "drive" in body["detail"]
    assert recorded_rows() == before


def test_manifest_file_not_in_archive_is_400_missing_file(sam):
    before = recorded_rows()
    form = upload_form(NOTEBOOK, omit=["ps1.ipynb"])
    body = _refused(sam.post(SUBMIT, form, format="multipart"), 400, "missing_file")
    assert "ps1.ipynb" in body["detail"]
    assert recorded_rows() == before


def test_wrong_hash_is_400(sam):
    before = recorded_rows()
    manifest = manifest_of(NOTEBOOK)
    manifest[0]["sha256"] = hashlib.sha256(b"something else").hexdigest()
    form = {"manifest": json.dumps(manifest), "archive": io.BytesIO(tar_gz(NOTEBOOK))}
    body = _refused(sam.post(SUBMIT, form, format="multipart"), 400, "bad_archive")
    assert "does not match the manifest" in body["detail"]
    assert recorded_rows() == before


def test_extra_file_in_archive_is_400(sam):
    before = recorded_rows()
    form = {
        "manifest": json.dumps(manifest_of(NOTEBOOK)),
        "archive": io.BytesIO(tar_gz({**NOTEBOOK, "extra.py": b"print(1)"})),
    }
    body = _refused(sam.post(SUBMIT, form, format="multipart"), 400, "bad_archive")
    assert "extra.py" in body["detail"]
    assert recorded_rows() == before


def test_archive_that_is_not_a_tar_gz_is_400(sam):
    before = recorded_rows()
    form = {"manifest": json.dumps(manifest_of(NOTEBOOK)), "archive": io.BytesIO(b"PK\x03\x04")}
    _refused(sam.post(SUBMIT, form, format="multipart"), 400, "bad_archive")
    assert recorded_rows() == before


def test_student_may_not_reference_another_students_file(people, released, client_for):
    secret = {"ps1.ipynb": b'{"cells": ["tia answer"]}'}
    services.submit_assignment(
        student=people["tia"], assignment=released, upload=make_upload(secret)
    )
    before = recorded_rows()
    form = upload_form(secret, omit=["ps1.ipynb"])
    response = client_for(people["sam"]).post(SUBMIT, form, format="multipart")
    _refused(response, 400, "missing_file")
    assert recorded_rows() == before


def test_student_may_reference_released_files_without_sending_them(sam):
    form = upload_form(SUBMITTED, omit=["data/big.csv"])
    response = sam.post(SUBMIT, form, format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["file_count"] == 2


def test_upload_announcing_more_than_the_limit_is_413_before_reading(sam, settings):
    settings.EXCHANGE_MAX_BUNDLE_SIZE = 1000
    before = recorded_rows()
    form = upload_form(NOTEBOOK)
    response = sam.post(SUBMIT, form, format="multipart", CONTENT_LENGTH=str(10**12))
    _refused(response, 413, "too_large")
    assert recorded_rows() == before


def test_manifest_over_the_bundle_limit_is_413(sam, settings):
    settings.EXCHANGE_MAX_BUNDLE_SIZE = 10
    before = recorded_rows()
    _refused(sam.post(SUBMIT, upload_form(NOTEBOOK), format="multipart"), 413, "too_large")
    assert recorded_rows() == before


def test_archive_member_over_the_file_limit_is_413(sam, settings):
    settings.EXCHANGE_MAX_FILE_SIZE = 100
    big = {"big.bin": b"\0" * 1000}
    manifest = [{"path": "big.bin", "size": 50, "sha256": hashlib.sha256(b"x").hexdigest()}]
    before = recorded_rows()
    form = {"manifest": json.dumps(manifest), "archive": io.BytesIO(tar_gz(big))}
    _refused(sam.post(SUBMIT, form, format="multipart"), 413, "too_large")
    assert recorded_rows() == before


def test_manifest_may_come_as_a_file_part(sam):
    form = upload_form(NOTEBOOK)
    form["manifest"] = io.BytesIO(form["manifest"].encode())
    response = sam.post(SUBMIT, form, format="multipart")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("code", "detail"),
    [("bad id!", "not valid"), (".", "not valid"), ("a" * 101, "not valid")],
)
def test_release_with_bad_assignment_id_is_400(people, course, client_for, code, detail):
    before = recorded_rows()
    response = client_for(people["ines"]).post(
        f"/api/v1/courses/phys101/assignments/{code}/release",
        upload_form(NOTEBOOK),
        format="multipart",
    )
    body = _refused(response, 400, "bad_request")
    assert detail in body["detail"]
    assert recorded_rows() == before


def test_release_with_bad_due_date_is_400(people, course, client_for):
    before = recorded_rows()
    form = {**upload_form(NOTEBOOK), "due_date": "next tuesday"}
    response = client_for(people["ines"]).post(
        "/api/v1/courses/phys101/assignments/ps9/release", form, format="multipart"
    )
    body = _refused(response, 400, "bad_request")
    assert "due_date" in body["detail"]
    assert recorded_rows() == before


def test_release_accepts_nbgrader_and_iso_due_dates(people, course, client_for):
    ines = client_for(people["ines"])
    url = "/api/v1/courses/phys101/assignments/{}/release"
    for code, due in [
        ("ps8", "2026-12-01 17:00:00.000000 UTC"),
        ("ps9", "2026-12-01T18:00:00+01:00"),
    ]:
        form = {**upload_form(NOTEBOOK), "due_date": due}
        response = ines.post(url.format(code), form, format="multipart")
        assert response.status_code == 201, response.content
        assert response.json()["due_date"] == "2026-12-01 17:00:00.000000 UTC"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/courses/nope",
        "/api/v1/courses/phys101/assignments/nope",
        "/api/v1/courses/phys101/assignments/nope/release/files",
        "/api/v1/submissions/999999",
        "/api/v1/submissions/abc",
        "/api/v1/submissions/999999/feedback",
        "/api/v1/files/not-a-signature",
        "/api/v1/no/such/endpoint",
    ],
)
def test_bad_ids_are_404_json(people, released, client_for, path):
    _refused(client_for(people["ines"]).get(path), 404, "not_found")


def test_wrong_method_is_405_json(people, released, client_for):
    response = client_for(people["ines"]).patch("/api/v1/me", {}, format="json")
    _refused(response, 405, "method_not_allowed")


def test_bad_query_values_are_400(people, released, client_for):
    ines = client_for(people["ines"])
    _refused(ines.get(f"{SUBMIT}?latest=perhaps"), 400, "bad_request")
    _refused(ines.delete("/api/v1/courses/phys101/assignments/ps1/release?force=maybe"), 400)
    _refused(ines.put("/api/v1/courses/phys101/members/x", {"role": "boss"}, format="json"), 400)


def test_unparseable_json_body_is_400(people, released, client_for):
    response = client_for(people["ines"]).generic(
        "POST",
        "/api/v1/courses/phys101/assignments/ps1/collect",
        "{not json",
        content_type="application/json",
    )
    _refused(response, 400, "bad_request")


def test_upload_fields_refuse_what_is_not_text(settings):
    from rest_framework.exceptions import ValidationError

    from api.fields import ManifestField, TimestampField

    with pytest.raises(ValidationError):
        TimestampField().to_internal_value(12)
    with pytest.raises(ValidationError):
        ManifestField().to_internal_value(12)
    assert ManifestField().to_representation("[]") == "[]"
    huge = io.BytesIO(b"[]")
    huge.size = ManifestField.MAX_BYTES + 1
    with pytest.raises(ValidationError, match="too large"):
        ManifestField().to_internal_value(huge)


def test_unreadable_content_length_is_left_to_the_parser(sam):
    response = sam.post(SUBMIT, upload_form(NOTEBOOK), format="multipart", CONTENT_LENGTH="x")
    assert 400 <= response.status_code < 500


def test_json_body_over_the_memory_limit_is_413_unread(people, client_for, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    before = Membership.objects.count()
    response = client_for(people["ines"]).post(
        "/api/v1/courses/phys101/roster",
        {"members": [{"username": f"user{i}"} for i in range(50)]},
        format="json",
    )
    _refused(response, 413, "too_large")
    assert Membership.objects.count() == before


@pytest.mark.parametrize("vanishes", ["course", "assignment", "membership"])
def test_upload_whose_course_or_member_vanishes_mid_request_is_404_with_a_sentence(
    vanishes, sam, released, monkeypatch
):
    """Another request deletes the course or the assignment (or removes the student) while
    this upload's bytes are being checked: a 404 sentence, nothing recorded, never a 500."""
    stage = services.stage_bundle

    def stage_then_vanish(**kwargs):
        staged = stage(**kwargs)
        if vanishes == "course":
            services.delete_course(actor=None, course=released.course)
        elif vanishes == "assignment":
            services.delete_assignment(actor=None, assignment=released)
        else:
            services.remove_member(course=released.course, username="sam", actor=None)
        return staged

    monkeypatch.setattr(services.bundles, "stage_bundle", stage_then_vanish)
    body = _refused(sam.post(SUBMIT, upload_form(NOTEBOOK)), 404, "not_found")
    assert ("You were removed" if vanishes == "membership" else "was deleted while") in body[
        "detail"
    ]
    assert not Submission.objects.exists()
    assert not Bundle.objects.filter(kind="submission").exists()
