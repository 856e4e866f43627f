"""The S3 storage (SeaweedFS): blobs round-trip, presigned URLs serve the bytes from the
object store itself, and the bucket does not serve them without a valid signature."""

from __future__ import annotations

import hashlib
import os
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


def _wire(monkeypatch) -> list[str]:
    """The method of every HTTP request sent from now on (boto3's and ``s3_requests``')."""
    import urllib3

    sent: list[str] = []
    original = urllib3.connectionpool.HTTPConnectionPool.urlopen

    def urlopen(self, method, url, *args, **kwargs):
        if not getattr(kwargs.get("retries"), "history", ()):  # not urllib3's own retry
            sent.append(method)
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(urllib3.connectionpool.HTTPConnectionPool, "urlopen", urlopen)
    return sent


def _calls(client) -> list[str]:
    """The names of the S3 operations ``client`` sends from now on (botocore's own events)."""
    sent: list[str] = []
    client.meta.events.register("before-call.s3", lambda model, **_: sent.append(model.name))
    return sent


def test_a_small_blob_is_one_put_and_a_large_one_present_is_not_sent_again(s3_storage, monkeypatch):
    import io

    from courses import s3_requests

    monkeypatch.setattr(blobstore, "S3_SINGLE_PUT_BYTES", 1000)
    storage = blobstore.get_storage()
    client = blobstore._s3_client(storage)
    monkeypatch.setattr(storage.transfer_config, "multipart_threshold", 5000)
    small, middle, large = b"s" * 1000, os.urandom(5000), os.urandom(5001)
    assert s3_requests.plan(storage, client) is not None  # made once (it sends nothing)

    sent, wire = _calls(client), _wire(monkeypatch)
    blobstore._s3_put(storage, client, blobstore.stage(io.BytesIO(small)))
    # One PUT on the wire, signed and sent without the boto3 client's pipeline.
    assert (sent, wire) == ([], ["PUT"])
    # The same small bytes again: one PUT, no question first (it costs what the PUT does).
    blobstore._s3_put(storage, client, blobstore.stage(io.BytesIO(small)))
    assert (sent, wire) == ([], ["PUT", "PUT"])

    # Up to the multipart threshold: asked for, then one PUT streamed from the staged
    # file, still without boto3; present already, not sent again.
    wire.clear()
    blobstore._s3_put(storage, client, blobstore.stage(io.BytesIO(middle)))
    assert (sent, wire) == ([], ["HEAD", "PUT"])
    wire.clear()
    blobstore._s3_put(storage, client, blobstore.stage(io.BytesIO(middle)))
    assert (sent, wire) == ([], ["HEAD"])

    # Above it: s3transfer's upload in parts, after the same question.
    wire.clear()
    blobstore._s3_put(storage, client, blobstore.stage(io.BytesIO(large)))
    assert wire[0] == "HEAD" and sent[0] == "CreateMultipartUpload"
    assert sent[-1] == "CompleteMultipartUpload"
    sent.clear()
    wire.clear()
    blobstore._s3_put(storage, client, blobstore.stage(io.BytesIO(large)))
    assert (sent, wire) == ([], ["HEAD"])
    for data in (small, middle, large):
        assert b"".join(blobstore.iter_blob(hashlib.sha256(data).hexdigest())) == data
    staging = blobstore.staging_dir()
    assert not staging.exists() or not any(staging.iterdir())
