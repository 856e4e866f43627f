"""The S3 storage (SeaweedFS): blobs round-trip, presigned URLs serve the bytes from the
object store itself, and the bucket does not serve them without a valid signature."""

from __future__ import annotations

import hashlib
import time

import requests

from courses import blobstore
from courses.models import blob_storage_name


def test_blobs_round_trip_and_presigned_urls_come_from_the_object_store(s3_storage):
    data = b"notebook bytes " * 1000
    sha, size = blobstore.store_bytes(data)
    assert (sha, size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert list(blobstore.iter_stored_shas()) == [sha]
    assert b"".join(blobstore.iter_blob(sha)) == data

    storage = blobstore.get_storage()
    url = storage.url(blob_storage_name(sha), expire=60)
    assert url.startswith(s3_storage.endpoint + "/")
    assert "X-Amz-Signature=" in url
    response = requests.get(url, timeout=30)
    assert response.status_code == 200 and response.content == data

    # Without the signature, or with a tampered one, the store refuses.
    assert requests.get(url.split("?")[0], timeout=30).status_code == 403
    tampered = url.replace("X-Amz-Signature=", "X-Amz-Signature=0")
    assert requests.get(tampered, timeout=30).status_code == 403


def test_presigned_url_expires(s3_storage):
    sha, _ = blobstore.store_bytes(b"short-lived")
    url = blobstore.get_storage().url(blob_storage_name(sha), expire=1)
    time.sleep(2.5)
    assert requests.get(url, timeout=30).status_code == 403
