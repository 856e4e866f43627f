"""Small S3 requests sent without botocore's client pipeline (``courses.s3_requests``), on
SeaweedFS: one request on the wire each, the same bytes, headers and errors as the boto3
client gives, and the boto3 client itself for whatever they do not handle."""

from __future__ import annotations

import datetime
import hashlib
import io
import logging
import os

import boto3
import pytest
import urllib3
from botocore.credentials import RefreshableCredentials
from botocore.exceptions import ClientError
from botocore.session import get_session

from courses import blobstore, s3_requests
from courses.models import blob_storage_name
from tests.harness.seaweedfs import ACCESS_KEY, REGION, SECRET_KEY, unique_prefix

pytestmark = pytest.mark.storage


@pytest.fixture(autouse=True)
def _every_read_asks_the_store(settings):
    """The requests sent to the store are what these tests look at: no server copies of
    small blobs to read from instead (``courses.blob_cache``, tested on its own)."""
    settings.EXCHANGE_BLOB_CACHE_BYTES = 0


@pytest.fixture
def wire(monkeypatch) -> list[tuple[str, str]]:
    """Every HTTP request sent from now on, boto3's and the lean path's: (method, path); a
    kept connection the store closed meanwhile, opened again by urllib3, counts once."""
    sent: list[tuple[str, str]] = []
    original = urllib3.connectionpool.HTTPConnectionPool.urlopen

    def urlopen(self, method, url, *args, **kwargs):
        if not getattr(kwargs.get("retries"), "history", ()):  # not urllib3's own retry
            sent.append((method, url.split("?")[0]))
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(urllib3.connectionpool.HTTPConnectionPool, "urlopen", urlopen)
    return sent


def _boto_sends(client) -> list[str]:
    """The S3 operations ``client`` sends from now on (after its lean plan is made: making
    it prepares one request that is never sent)."""
    sent: list[str] = []
    client.meta.events.register(
        "before-send.s3", lambda request, **_: sent.append(request.method), unique_id="t"
    )
    return sent


def _storage(seaweedfs, **options):
    from courses.s3_backend import ExchangeS3Storage

    return ExchangeS3Storage(
        **{**seaweedfs.storage_options(location=unique_prefix())["OPTIONS"], **options}
    )


def test_small_blobs_round_trip_byte_exact_one_request_each_without_boto3(s3_storage, wire):
    storage = blobstore.get_storage()
    client = blobstore._s3_client(storage)
    assert s3_requests.plan(storage, client) is not None
    boto = _boto_sends(client)
    data = bytes(range(256)) * 300 + os.urandom(999)
    sha = hashlib.sha256(data).hexdigest()
    absent = hashlib.sha256(b"never stored").hexdigest()

    def path(sha256: str) -> str:
        return (
            f"/{storage.bucket_name}/{s3_requests.object_key(storage, blob_storage_name(sha256))}"
        )

    blobstore._s3_put(storage, client, blobstore.stage(io.BytesIO(data)))
    assert blobstore.exists(sha) and not blobstore.exists(absent)
    assert blobstore.read_small([sha, absent]) == {sha: data}
    assert wire[:3] == [("PUT", path(sha)), ("HEAD", path(sha)), ("HEAD", path(absent))]
    assert sorted(wire[3:]) == sorted([("GET", path(absent)), ("GET", path(sha))])
    assert boto == []
    # What boto3 reads back is the same bytes.
    assert b"".join(blobstore.iter_blob(sha)) == data
    assert blobstore.missing([absent, sha]) == [absent]


def test_the_object_carries_the_write_parameters_as_boto3_puts_them(seaweedfs):
    parameters = {
        "CacheControl": "max-age=600",
        "ContentDisposition": "attachment",
        "ContentLanguage": "es",
        "Metadata": {"origin": "exchange"},
    }
    storage = _storage(seaweedfs, object_parameters=parameters)
    client = storage.connection.meta.client
    assert s3_requests.plan(storage, client) is not None
    boto = _boto_sends(client)
    body = b"<p>feedback</p>"
    params = storage._get_write_parameters("blobs/aa/x")
    assert params["ContentType"] == "application/octet-stream"
    lean_key, boto_key = f"{storage.location}/lean", f"{storage.location}/boto"
    sha = hashlib.sha256(body).hexdigest()
    s3_requests.put(storage, client, key=lean_key, body=body, sha256=sha, params=params)
    assert boto == []
    client.put_object(Bucket=storage.bucket_name, Key=boto_key, Body=body, **params)
    fields = ("ContentType", "CacheControl", "ContentDisposition", "ContentLanguage", "Metadata")
    lean = client.head_object(Bucket=storage.bucket_name, Key=lean_key)
    by_boto = client.head_object(Bucket=storage.bucket_name, Key=boto_key)
    assert {f: lean.get(f) for f in fields} == {f: by_boto.get(f) for f in fields}
    assert lean["ContentType"] == "application/octet-stream" and lean["ContentLength"] == len(body)
    assert lean["CacheControl"] == "max-age=600" and lean["Metadata"] == {"origin": "exchange"}


def test_a_wrong_secret_key_is_an_error_not_a_missing_blob(seaweedfs, caplog):
    good = _storage(seaweedfs)
    name = "blobs/aa/present"
    key = s3_requests.object_key(good, name)
    good.connection.meta.client.put_object(Bucket=good.bucket_name, Key=key, Body=b"x")
    storage = _storage(seaweedfs, location=good.location, secret_key="not-the-secret")
    client = storage.connection.meta.client
    assert s3_requests.plan(storage, client) is not None
    with pytest.raises(ClientError) as head:
        s3_requests.exists(storage, client, name=name)
    # A HEAD's answer has no body: boto3 says "An error occurred (403) when calling the
    # HeadObject operation: Forbidden", as it did before the lean path.
    assert head.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    with pytest.raises(ClientError, match="PutObject"):
        s3_requests.put(
            storage, client, key=key, body=b"y", sha256=hashlib.sha256(b"y").hexdigest(), params={}
        )
    with caplog.at_level(logging.WARNING, logger="courses.s3_requests"):
        assert s3_requests.read(storage, client, name=name) is None
    assert "S3 GET" in caplog.text and "SignatureDoesNotMatch" in caplog.text
    assert s3_requests.read(good, good.connection.meta.client, name=name) == b"x"


def test_the_plan_follows_the_addressing_style_and_the_endpoint(seaweedfs):
    storage = _storage(seaweedfs)
    path = s3_requests.plan(storage, storage.connection.meta.client)
    assert (path.origin, path.base_path, path.region) == (
        seaweedfs.endpoint,
        f"/{seaweedfs.bucket}/",
        REGION,
    )
    # Virtual-hosted: the bucket in the host name (SeaweedFS here answers path style only,
    # and exchange.localhost does not resolve, so the plan is as far as this goes).
    port = seaweedfs.ports["s3"]
    virtual = _storage(
        seaweedfs, endpoint_url=f"http://localhost:{port}", addressing_style="virtual"
    )
    plan = s3_requests.plan(virtual, virtual.connection.meta.client)
    assert (plan.origin, plan.base_path) == (f"http://{seaweedfs.bucket}.localhost:{port}", "/")
    aws = _storage(
        seaweedfs, endpoint_url=None, region_name="eu-west-1", addressing_style="virtual"
    )
    plan = s3_requests.plan(aws, aws.connection.meta.client)
    assert (plan.origin, plan.base_path, plan.region) == (
        f"https://{seaweedfs.bucket}.s3.eu-west-1.amazonaws.com",
        "/",
        "eu-west-1",
    )
    assert plan.pool_kwargs["cert_reqs"] == "CERT_REQUIRED" and plan.pool_kwargs["ca_certs"]


def test_what_the_lean_path_does_not_handle_goes_through_boto3(seaweedfs, wire):
    expires = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    storage = _storage(seaweedfs, object_parameters={"Expires": expires})
    client = storage.connection.meta.client
    assert s3_requests.plan(storage, client) is not None
    boto = _boto_sends(client)
    body = b"expiring"
    key = f"{storage.location}/blobs/e"
    params = storage._get_write_parameters(key)
    s3_requests.put(
        storage, client, key=key, body=body, sha256=hashlib.sha256(body).hexdigest(), params=params
    )
    assert boto == ["PUT"]
    assert client.get_object(Bucket=storage.bucket_name, Key=key)["Body"].read() == body
    # A proxy: every request through the client, which knows how to reach it.
    proxied = _storage(seaweedfs, proxies={"http": "http://127.0.0.1:9"})
    assert s3_requests.plan(proxied, proxied.connection.meta.client) is None


def test_a_dropped_connection_is_retried_by_boto3(s3_storage, monkeypatch):
    storage = blobstore.get_storage()
    client = blobstore._s3_client(storage)
    assert s3_requests.plan(storage, client) is not None
    boto = _boto_sends(client)
    original = urllib3.connectionpool.HTTPConnectionPool.urlopen

    def drops_lean_requests(self, method, url, *args, headers=None, **kwargs):
        if "Boto3" not in str((headers or {}).get("User-Agent", "")):
            raise urllib3.exceptions.ProtocolError("Connection aborted")
        return original(self, method, url, *args, headers=headers, **kwargs)

    monkeypatch.setattr(urllib3.connectionpool.HTTPConnectionPool, "urlopen", drops_lean_requests)
    data = b"retried"
    sha = hashlib.sha256(data).hexdigest()
    blobstore._s3_put(storage, client, blobstore.stage(io.BytesIO(data)))
    assert blobstore.exists(sha) and blobstore.read_small([sha]) == {sha: data}
    assert boto == ["PUT", "HEAD", "GET"]


def test_a_streamed_put_cut_off_is_sent_again_whole_by_boto3(s3_storage, monkeypatch):
    # A blob between the single-PUT size and the multipart threshold is streamed from its
    # staged file; the connection breaks after part of it went: boto3 sends it from the
    # start, and the store holds every byte.
    monkeypatch.setattr(blobstore, "S3_SINGLE_PUT_BYTES", 1000)
    storage = blobstore.get_storage()
    client = blobstore._s3_client(storage)
    assert s3_requests.plan(storage, client) is not None
    boto = _boto_sends(client)
    original = urllib3.connectionpool.HTTPConnectionPool.urlopen

    def cuts_lean_puts(self, method, url, *args, body=None, headers=None, **kwargs):
        if method == "PUT" and "Boto3" not in str((headers or {}).get("User-Agent", "")):
            body.read(3000)
            raise urllib3.exceptions.ProtocolError("Connection reset by peer")
        return original(self, method, url, *args, body=body, headers=headers, **kwargs)

    monkeypatch.setattr(urllib3.connectionpool.HTTPConnectionPool, "urlopen", cuts_lean_puts)
    data = os.urandom(10_000)
    sha = hashlib.sha256(data).hexdigest()
    blobstore._s3_put(storage, client, blobstore.stage(io.BytesIO(data)))
    assert boto == ["PUT"]
    assert b"".join(blobstore.iter_blob(sha)) == data


def test_a_file_body_needs_its_size(s3_storage):
    storage = blobstore.get_storage()
    client = blobstore._s3_client(storage)
    with pytest.raises(TypeError, match="size"):
        s3_requests.put(storage, client, key="k", body=io.BytesIO(b"x"), sha256="0" * 64, params={})


def test_refreshable_credentials_are_read_at_each_request(seaweedfs):
    secret = [SECRET_KEY]
    refreshed: list[str] = []

    def refresh() -> dict[str, str | None]:
        # Twelve minutes left: botocore refreshes (advisory) before each request it signs.
        expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=12)
        refreshed.append(secret[0])
        return {
            "access_key": ACCESS_KEY,
            "secret_key": secret[0],
            "token": None,
            "expiry_time": expiry.isoformat(),
        }

    botocore_session = get_session()
    botocore_session._credentials = RefreshableCredentials.create_from_metadata(
        metadata=refresh(), refresh_using=refresh, method="test"
    )
    storage = _storage(seaweedfs)
    client = boto3.Session(botocore_session=botocore_session).client(
        "s3", endpoint_url=seaweedfs.endpoint, region_name=REGION, config=storage.client_config
    )
    assert s3_requests.plan(storage, client) is not None
    boto = _boto_sends(client)
    body = b"refreshed"
    key = s3_requests.object_key(storage, "blobs/r")
    before = len(refreshed)
    s3_requests.put(
        storage, client, key=key, body=body, sha256=hashlib.sha256(body).hexdigest(), params={}
    )
    assert s3_requests.exists(storage, client, name="blobs/r")
    assert boto == [] and len(refreshed) >= before + 2
    # The key rotated away: the next request signs with what the refresh gives now.
    secret[0] = "rotated-away"
    with pytest.raises(ClientError):
        s3_requests.exists(storage, client, name="blobs/r")


def test_parameters_are_plain_headers_or_the_call_goes_through_boto3(seaweedfs, wire):
    storage = _storage(seaweedfs)
    client = storage.connection.meta.client
    params = {"ContentType": "text/html", "ACL": "private", "BucketKeyEnabled": True}
    headers = s3_requests._headers(
        client, "PutObject", {**params, "Metadata": {"a": "b"}}, s3_requests.PUT_HEADER_PARAMS
    )
    assert headers == {
        "Content-Type": "text/html",
        "x-amz-acl": "private",
        "x-amz-server-side-encryption-bucket-key-enabled": "true",
        "x-amz-meta-a": "b",
    }
    for unhandled in (
        {"SSECustomerAlgorithm": "AES256"},
        {"ContentType": "téxt/html"},
        {"Metadata": {"a": "é"}},
        {"Metadata": {"a": 1}},
        {"NoSuchParameter": "x"},
    ):
        assert (
            s3_requests._headers(client, "PutObject", unhandled, s3_requests.PUT_HEADER_PARAMS)
            is None
        )
    assert s3_requests._headers(
        client, "HeadObject", {"RequestPayer": "requester"}, s3_requests.READ_HEADER_PARAMS
    ) == {"x-amz-request-payer": "requester"}
    # A key botocore would quote: sent by the client.
    assert s3_requests.plan(storage, client) is not None
    boto = _boto_sends(client)
    key = f"{storage.location}/with space"
    s3_requests.put(
        storage, client, key=key, body=b"q", sha256=hashlib.sha256(b"q").hexdigest(), params={}
    )
    assert boto == ["PUT"]
    assert s3_requests.read(storage, client, name="with space") == b"q"


def test_tls_verification_follows_the_storage(seaweedfs):
    unverified = _storage(seaweedfs, endpoint_url="https://127.0.0.1:9", verify=False)
    plan = s3_requests.plan(unverified, unverified.connection.meta.client)
    assert plan.origin == "https://127.0.0.1:9" and plan.pool_kwargs["cert_reqs"] == "CERT_NONE"
    bundle = _storage(seaweedfs, endpoint_url="https://127.0.0.1:9", verify="/etc/exchange-ca.pem")
    plan = s3_requests.plan(bundle, bundle.connection.meta.client)
    assert plan.pool_kwargs["ca_certs"] == "/etc/exchange-ca.pem"
