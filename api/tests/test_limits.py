"""Per-person limits through the API: 429 with Retry-After for the submission rate, 413
``quota_exceeded`` for the quota, both as a sentence, and the audit event they leave."""

from __future__ import annotations

import pytest

from courses.models import AuditEvent, Submission
from tests.harness.uploads import upload_form

SUBMIT = "/api/v1/courses/phys101/assignments/ps1/submissions"

pytestmark = pytest.mark.storage


@pytest.fixture
def sam(people, released, client_for):
    return client_for(people["sam"])


def test_over_the_rate_is_429_with_retry_after_and_a_sentence(settings, sam):
    settings.EXCHANGE_UPLOADS_PER_MINUTE = 2
    for number in range(2):
        form = upload_form({"ps1.ipynb": b'{"n": %d}' % number})
        assert sam.post(SUBMIT, form, format="multipart").status_code == 201
    response = sam.post(SUBMIT, upload_form({"ps1.ipynb": b"{}"}), format="multipart")
    assert response.status_code == 429
    wait = int(response["Retry-After"])
    assert 1 <= wait <= 60
    assert response.json() == {
        "error": "rate_limited",
        "detail": "You have sent 2 submissions in the last minute, the most allowed; "
        f"try again in {wait} seconds.",
    }
    assert Submission.objects.count() == 2
    event = AuditEvent.objects.get(action="upload_failed")
    assert event.actor_name == "sam" and event.detail["status"] == 429


def test_over_the_quota_is_413_quota_exceeded_and_audited(settings, sam):
    settings.EXCHANGE_SUBMISSION_QUOTA = 2_000
    form = upload_form({"ps1.ipynb": b"w" * 3_000})
    response = sam.post(SUBMIT, form, format="multipart")
    assert response.status_code == 413
    body = response.json()
    assert body["error"] == "quota_exceeded"
    assert body["detail"].startswith("This submission would bring your files in phys101 to ")
    assert not Submission.objects.exists()
    event = AuditEvent.objects.get(action="upload_failed")
    assert event.detail["error"] == "quota_exceeded" and event.detail["bytes"] > 0
