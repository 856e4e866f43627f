"""An upload's blobs are put in storage several at a time on an object store: all of them
are in place before anything is recorded, and one that fails to store fails the upload with
nothing recorded and no temporary file left behind."""

from __future__ import annotations

from typing import Any

import pytest

from api.tests.test_feedback_batch import form, nothing_recorded, post, two  # noqa: F401
from courses import blobstore
from courses.models import Blob
from nbgrader_exchange.feedback_batch import FeedbackRelease
from nbgrader_exchange.files import entry_from_bytes

pytestmark = [pytest.mark.storage, pytest.mark.django_db]


def batch_of(submissions: list[Any], files: int) -> list[FeedbackRelease]:
    """Each submission's own ``files`` distinct files: every blob of the batch is new."""
    return [
        FeedbackRelease(
            s.student.username,
            s.pk,
            [entry_from_bytes(f"f{i}.html", f"<p>{s.pk} {i}</p>".encode()) for i in range(files)],
        )
        for s in submissions
    ]


def test_every_blob_of_a_batch_is_stored(people, two, client_for, backend):  # noqa: F811
    batch = batch_of(two, 6)
    assert post(client_for(people["gus"]), form(batch)).status_code == 201
    shas = [e.sha256 for release in batch for e in release.files]
    assert blobstore.missing(shas) == []
    assert set(Blob.objects.filter(sha256__in=shas).values_list("sha256", flat=True)) == set(shas)
    for release in batch:
        own = client_for(release_student(people, release)).get(
            f"/api/v1/submissions/{release.submission_id}/feedback"
        )
        assert sorted(f["path"] for f in own.json()["files"]) == [f"f{i}.html" for i in range(6)]
    absent = "0" * 64
    assert blobstore.missing([shas[0], absent, shas[1]]) == [absent]


def release_student(people: dict[str, Any], release: FeedbackRelease) -> Any:
    return people[release.student_id]


def test_one_blob_failing_to_store_records_nothing(
    people,
    two,  # noqa: F811
    client_for,
    backend,
    monkeypatch,
):
    batch = batch_of(two, 6)
    doomed = batch[1].files[2].sha256
    before = set(Blob.objects.values_list("sha256", flat=True))
    # The store refuses one blob of the twelve (a full disk, an object store's 500).
    name = "put" if blobstore.is_local() else "_s3_put"
    real = getattr(blobstore, name)

    def failing(*args: Any, **kwargs: Any) -> None:
        staged = args[-1]
        if staged.sha256 == doomed:
            blobstore.discard(staged)
            raise OSError("the store refused the bytes")
        real(*args, **kwargs)

    monkeypatch.setattr(blobstore, name, failing)
    with pytest.raises(OSError, match="refused"):
        post(client_for(people["gus"]), form(batch))
    nothing_recorded()
    assert set(Blob.objects.values_list("sha256", flat=True)) == before
    # Every temporary file was put in place or discarded: none is left for gc to find.
    staging = blobstore.staging_dir()
    assert not staging.exists() or not any(staging.iterdir())
    assert doomed in blobstore.missing([doomed])


def test_an_object_store_error_is_not_taken_for_missing_bytes(s3_storage, monkeypatch):
    from botocore.exceptions import ClientError

    client = blobstore.get_storage().connection.meta.client

    def refuse(**_: Any) -> None:
        error = {"Error": {"Code": "500"}, "ResponseMetadata": {"HTTPStatusCode": 500}}
        raise ClientError(error, "HeadObject")

    monkeypatch.setattr(client, "head_object", refuse)
    # An upload checking its bytes under the lock fails rather than calling them gone.
    with pytest.raises(ClientError):
        blobstore.missing(["0" * 64, "1" * 64])


def test_an_uploads_small_files_are_staged_in_memory_within_its_budget(
    people,
    two,  # noqa: F811
    client_for,
    s3_storage,
    settings,
    tmp_path,
    monkeypatch,
):
    """With an object store, an upload's small files make no file in the staging directory:
    with that directory unusable (a full or broken disk), feedback is still released. Past
    the upload's budget the files are staged on disk again, and every one is stored."""
    blocked = tmp_path / "not-a-directory"
    blocked.write_bytes(b"")
    settings.FILE_UPLOAD_TEMP_DIR = str(blocked)
    batch = batch_of(two, 6)
    shas = [e.sha256 for release in batch for e in release.files]
    assert post(client_for(people["gus"]), form(batch)).status_code == 201
    assert blobstore.missing(shas) == []

    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    staged: dict[str, list[int]] = {"stage": [], "stage_in_memory": []}
    for name, sizes in staged.items():
        monkeypatch.setattr(blobstore, name, _counting(getattr(blobstore, name), sizes))
    monkeypatch.setattr(blobstore, "MEMORY_STAGE_BUDGET", 40)
    assert post(client_for(people["gus"]), form(batch)).status_code == 201
    in_memory, on_disk = staged["stage_in_memory"], staged["stage"]
    assert len(in_memory) + len(on_disk) == len(shas) and in_memory and on_disk
    assert sum(in_memory) <= 40 < sum(in_memory) + on_disk[0]
    assert blobstore.missing(shas) == []
    assert list((tmp_path / "exchange-staging").iterdir()) == []


def _counting(stage: Any, sizes: list[int]) -> Any:
    def counted(*args: Any, **kwargs: Any) -> blobstore.StagedFile:
        staged = stage(*args, **kwargs)
        sizes.append(staged.size)
        return staged

    return counted
