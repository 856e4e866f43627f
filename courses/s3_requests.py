"""S3 objects of one request each (PUT, HEAD or GET) sent without botocore's client pipeline.

A boto3 client spends about 1.2 ms of CPU on each small request (parameter validation,
event hooks, endpoint rules, response parsing), two to three times what signing the
request and sending it costs (bench/s3_small_requests.py). For the blobs' small requests
this module signs with botocore's own SigV4 signer and sends through one urllib3 pool per
process, shared by every thread.

What it does not reproduce exactly goes through the storage's boto3 client as before:
a plan (where requests go, how they are signed, the TLS settings) is taken once per
storage from the client itself, by letting it prepare one request that is never sent,
and the lean path is off when that request is not a plain SigV4 one, a proxy applies, a
client certificate or a non-urllib3 HTTP session is configured. A call whose parameters
need botocore's handlers (SSE-C keys, checksums, timestamps, ...) goes through the
client too, and so does any answer other than the expected ones (an error, a redirect, a
dropped connection): the client then retries and raises its usual ``ClientError``.
Credentials are read from the caller's client at each request, so refreshable ones
(web identity, instance roles) keep being refreshed by botocore.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import urllib3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.exceptions import BotoCoreError, ClientError
from botocore.httpsession import URLLib3Session, get_cert_path

from . import blobstore

logger = logging.getLogger(__name__)

EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
# The I/O threads of every pool that asks the store (blobstore's, storage checks') and the
# request threads themselves: enough connections kept open for all of them at once.
POOL_CONNECTIONS = 2 * blobstore.IO_THREADS
# Parameters sent as one plain header each, exactly as botocore serializes them (names from
# the service model). Others (SSE-C keys, checksums, Expires, ...) take botocore's handlers.
PUT_HEADER_PARAMS = frozenset(
    {
        "ACL",
        "BucketKeyEnabled",
        "CacheControl",
        "ContentDisposition",
        "ContentEncoding",
        "ContentLanguage",
        "ContentType",
        "ExpectedBucketOwner",
        "GrantFullControl",
        "GrantRead",
        "GrantReadACP",
        "GrantWriteACP",
        "ObjectLockLegalHoldStatus",
        "ObjectLockMode",
        "RequestPayer",
        "SSEKMSKeyId",
        "ServerSideEncryption",
        "StorageClass",
        "Tagging",
        "WebsiteRedirectLocation",
    }
)
READ_HEADER_PARAMS = frozenset({"ExpectedBucketOwner", "RequestPayer"})
# Characters a key may hold to be sent as it is (botocore would quote any other).
_PLAIN_KEY = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-_.~")
_PROBE_KEY = "exchange-lean-probe"
STREAM_BLOCK_BYTES = 256 * 1024
_RETRY = urllib3.Retry(total=1, connect=1, read=1, status=0, other=0, redirect=False)


class _NoBody:
    """The raw stream of the probe's made-up answer."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""


class _KnownPayloadAuth(S3SigV4Auth):
    """SigV4 for S3 with the body's SHA-256 given, not computed: a blob's name is that hash."""

    def payload(self, request: AWSRequest) -> str:
        return request.context["payload_sha256"]


@dataclass(frozen=True)
class Plan:
    """Where and how one storage's small requests go."""

    origin: str  # scheme://host[:port], e.g. http://127.0.0.1:8333 or https://bucket.host
    base_path: str  # up to the key: /bucket/ (path style) or / (virtual-hosted style)
    region: str  # the SigV4 signing region botocore chose
    pool_kwargs: dict[str, Any]


_plans: weakref.WeakKeyDictionary[Any, Plan | None] = weakref.WeakKeyDictionary()
_plans_lock = threading.Lock()
_manager: urllib3.PoolManager | None = None
_manager_pid = 0
_manager_lock = threading.Lock()


def _pool_manager() -> urllib3.PoolManager:
    """The process's connections to the object store (a forked worker makes its own)."""
    global _manager, _manager_pid
    with _manager_lock:
        if _manager is None or _manager_pid != os.getpid():
            _manager = urllib3.PoolManager(num_pools=4, maxsize=POOL_CONNECTIONS)
            _manager_pid = os.getpid()
        return _manager


def plan(storage: Any, client: Any) -> Plan | None:
    """The storage's plan (made once, from its client), or None: boto3 for everything."""
    try:
        return _plans[storage]
    except KeyError:
        pass
    with _plans_lock:  # one probe per storage, however many threads ask at first
        if storage in _plans:
            return _plans[storage]
        try:
            found = _make_plan(storage, client)
        except Exception:  # anything unexpected: the client does it all
            logger.debug("S3 requests go through boto3", exc_info=True)
            found = None
        _plans[storage] = found
        return found


def _make_plan(storage: Any, client: Any) -> Plan | None:
    http = client._endpoint.http_session
    if type(http) is not URLLib3Session or http._cert_file or http._key_file:
        return None
    if client._request_signer._credentials is None:
        return None  # the client raises NoCredentialsError itself
    # One HEAD prepared (endpoint rules, addressing style, signing region) and not sent.
    probe = f"{_PROBE_KEY}-{uuid.uuid4().hex}"
    seen: list[Any] = []

    def capture(request: Any, **_: Any) -> AWSResponse | None:
        if not request.url.split("?")[0].endswith("/" + probe):
            return None  # another thread's request on the same client
        seen.append(request)
        return AWSResponse(request.url, 200, {}, _NoBody())

    handler_id = f"exchange-lean-probe-{probe}"
    client.meta.events.register("before-send.s3.HeadObject", capture, unique_id=handler_id)
    try:
        client.head_object(Bucket=storage.bucket_name, Key=probe)
    finally:
        client.meta.events.unregister("before-send.s3.HeadObject", unique_id=handler_id)
    if len(seen) != 1:
        return None
    url, auth = seen[0].url, seen[0].headers.get("Authorization", b"")
    auth = auth.decode() if isinstance(auth, bytes) else auth
    if "?" in url or not url.endswith("/" + probe) or not auth.startswith("AWS4-HMAC-SHA256 "):
        return None
    scope = auth.split("Credential=", 1)[1].split(",", 1)[0].split("/")
    if len(scope) != 5 or scope[3] != "s3" or scope[4] != "aws4_request":
        return None
    base_url = url[: -len(probe)]
    parts = urlsplit(base_url)
    if http._proxy_config.proxy_url_for(base_url) or parts.username or parts.password:
        return None
    verify = http._verify
    pool_kwargs: dict[str, Any] = {
        "timeout": http._timeout,
        "socket_options": http._socket_options,
        # A PUT streamed from a file is sent in pieces of this size (urllib3's 16 KiB
        # default costs about as much CPU in Python as the rest of a 5 MiB PUT).
        "blocksize": STREAM_BLOCK_BYTES,
    }
    if base_url.startswith("https:"):
        if verify:
            pool_kwargs.update(cert_reqs="CERT_REQUIRED", ca_certs=get_cert_path(verify))
        else:
            pool_kwargs.update(cert_reqs="CERT_NONE", assert_hostname=False)
    return Plan(
        origin=f"{parts.scheme}://{parts.netloc}",
        base_path=parts.path,
        region=scope[2],
        pool_kwargs=pool_kwargs,
    )


def _headers(
    client: Any, operation: str, params: dict[str, Any], allowed: frozenset[str]
) -> dict[str, str] | None:
    """``params`` as HTTP headers, or None when one of them needs botocore's handlers."""
    headers: dict[str, str] = {}
    if not params:
        return headers
    members = client.meta.service_model.operation_model(operation).input_shape.members
    for name, value in params.items():
        if name == "Metadata" and isinstance(value, dict):
            for meta_key, meta_value in value.items():
                text = f"{meta_key}{meta_value}"
                if not isinstance(meta_value, str) or not text.isascii():
                    return None
                headers[f"x-amz-meta-{meta_key}"] = meta_value
            continue
        if name not in allowed or name not in members:
            return None
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str) or not value.isascii():
            return None
        headers[members[name].serialization.get("name", name)] = value
    return headers


def _send(
    storage: Any,
    client: Any,
    method: str,
    key: str,
    *,
    headers: dict[str, str],
    body: bytes | BinaryIO | None = None,
    payload_sha256: str = EMPTY_SHA256,
) -> urllib3.BaseHTTPResponse | None:
    """One signed request, or None when it could not be sent (the caller asks boto3)."""
    lean = plan(storage, client)
    if lean is None or not set(key) <= _PLAIN_KEY:
        return None
    credentials = client._request_signer._credentials  # the plan found them there
    if credentials is None:
        return None
    path = lean.base_path + key
    request = AWSRequest(method=method, url=lean.origin + path, data=body, headers=headers)
    request.context["payload_sha256"] = payload_sha256
    # Frozen at each request: refreshable credentials renew themselves here.
    _KnownPayloadAuth(credentials.get_frozen_credentials(), "s3", lean.region).add_auth(request)
    try:
        pool = _pool_manager().connection_from_url(lean.origin, pool_kwargs=lean.pool_kwargs)
        return pool.urlopen(
            method,
            path,
            body=body,
            headers=dict(request.headers.items()),
            # A kept connection the store closed meanwhile is opened again, once; any
            # other failure or redirect is the client's to handle.
            retries=_RETRY,
            assert_same_host=False,
            decode_content=False,
        )
    except urllib3.exceptions.HTTPError:
        logger.debug("S3 %s %s failed; asking through boto3", method, key, exc_info=True)
        return None


def object_key(storage: Any, name: str) -> str:
    """The object key of a storage name (the storage's location prefix, cleaned)."""
    from storages.utils import clean_name

    return storage._normalize_name(clean_name(name))


def _read_params(storage: Any, key: str) -> dict[str, Any]:
    """The parameters the storage reads ``key`` with (as ``storage.exists`` does)."""
    from storages.backends.s3 import _filter_download_params

    return _filter_download_params(storage.get_object_parameters(key))


def put(
    storage: Any,
    client: Any,
    *,
    key: str,
    body: bytes | BinaryIO,
    sha256: str,
    params: dict[str, Any],
    size: int | None = None,
) -> None:
    """Store ``body`` (whose SHA-256 is ``sha256``) under ``key`` with the write parameters
    ``params`` (as ``storage._get_write_parameters`` gives them); raises ``ClientError``
    as ``put_object`` does. The object is whole or absent: S3 keeps no partial PUT.

    ``body`` is the bytes, or an open file positioned at their start whose ``size`` bytes
    are streamed from there (a file is never read into memory here; boto3, if it has to
    take over, reads it from the start again)."""
    headers = _headers(client, "PutObject", params, PUT_HEADER_PARAMS)
    start = None if isinstance(body, bytes) else body.tell()
    if headers is not None:
        if start is not None:
            if size is None:
                raise TypeError("put() needs the size of a file body")
            headers["Content-Length"] = str(size)  # sent as it is, not chunked
        # S3 checks the body against this hash (SeaweedFS does not): it keeps what was hashed.
        response = _send(
            storage, client, "PUT", key, headers=headers, body=body, payload_sha256=sha256
        )
        if response is not None and response.status == 200:
            return
    if start is not None:
        body.seek(start)  # type: ignore[union-attr]
    client.put_object(Bucket=storage.bucket_name, Key=key, Body=body, **params)


def exists(storage: Any, client: Any, *, name: str) -> bool:
    """Whether the storage holds ``name`` (one HEAD), as ``storage.exists`` answers:
    ``ClientError`` for anything but "here" or "not here"."""
    key = object_key(storage, name)
    params = _read_params(storage, key)
    headers = _headers(client, "HeadObject", params, READ_HEADER_PARAMS)
    if headers is not None:
        response = _send(storage, client, "HEAD", key, headers=headers)
        if response is not None and response.status in (200, 404):
            return response.status == 200
    try:
        client.head_object(Bucket=storage.bucket_name, Key=key, **params)
    except ClientError as err:
        if err.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
            return False
        raise
    return True


def read(storage: Any, client: Any, *, name: str) -> bytes | None:
    """The whole bytes the storage holds under ``name`` (callers keep to small objects), or
    None when they cannot be read: absent (404), or the store failed (logged)."""
    key = object_key(storage, name)
    params = _read_params(storage, key)
    headers = _headers(client, "GetObject", params, READ_HEADER_PARAMS)
    if headers is not None:
        response = _send(storage, client, "GET", key, headers=headers)
        if response is not None and response.status in (200, 404):
            return response.data if response.status == 200 else None
    try:
        return client.get_object(Bucket=storage.bucket_name, Key=key, **params)["Body"].read()
    except ClientError as err:
        if err.response["ResponseMetadata"]["HTTPStatusCode"] != 404:
            logger.warning("S3 GET %s failed: %s", key, err)
        return None
    except BotoCoreError as err:  # the store unreachable: the caller offers another way
        logger.warning("S3 GET %s failed: %s", key, err)
        return None
