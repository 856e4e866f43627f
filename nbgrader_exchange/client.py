"""The HTTP client of the exchange service: requests, retries, and the sentences of failures.

Independent of nbgrader's applications (only ``requests`` and the standard library), so
scripts and benchmarks can drive the service the way the plugin does (the files of a bundle
come from :mod:`.files`, its upload and download from :mod:`.transfer`)::

    client = ExchangeClient("http://127.0.0.1:8000", token)
    files = scan_directory(Path("release/ps1"))
    client.upload_bundle("courses/phys101/assignments/ps1/release", files)
    manifest = client.get("courses/phys101/assignments/ps1/release/files")
    client.download_bundle(manifest["files"], Path("ps1"))

Every failure is a :class:`ServiceError` whose message is one sentence naming the server and
what failed. Idempotent requests (those safe to repeat) are retried with backoff on
connection errors and on 502/503/504; a request that never reached the server is retried
whatever its method. A 429 (a per-person limit) is never retried: its sentence says when to
try again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

from . import archive_download
from .errors import ServiceError, failure_reason, never_sent
from .transfer import PROGRESS_THRESHOLD, BundleTransfers, MultipartBody

API_PREFIX = "api/v1/"
RETRY_STATUSES = frozenset({502, 503, 504})
# Methods whose repetition changes nothing more than one request does (RFC 9110 idempotent):
# retried after a failure that may have reached the server.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

log = logging.getLogger(__name__)


class _NoNetrc(requests.auth.AuthBase):
    """Credentials that add nothing: set on the session, they keep requests from reading
    ``~/.netrc`` on every request, whose entry for the exchange's host would replace the
    token (``Authorization: Basic ...``, answered 401) and whose entry for the object
    store's would go with every presigned URL."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class _Session(requests.Session):
    """requests' session, reading the environment's proxy and CA bundle settings once per
    origin rather than on every request (requests walks the whole environment twice a
    request; a Kubernetes pod has a handful of variables for every service in its
    namespace). The environment of a running notebook server does not change them.

    The only credential it sends is the exchange token the client puts in each request's
    headers: never one from ``~/.netrc`` (``_NoNetrc``), on a redirect either."""

    def __init__(self) -> None:
        super().__init__()
        self.auth = _NoNetrc()
        self._settings: dict[tuple[str, str, bool], dict[str, Any]] = {}

    def rebuild_auth(
        self, prepared_request: requests.PreparedRequest, response: requests.Response
    ) -> None:
        # As requests' own, less the ``~/.netrc`` lookup for the new host.
        headers = prepared_request.headers
        if "Authorization" in headers and self.should_strip_auth(
            response.request.url, prepared_request.url
        ):
            del headers["Authorization"]

    def merge_environment_settings(
        self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        if proxies or verify is not None or cert is not None:  # given: nothing to remember
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, bool(stream))
        settings = self._settings.get(key)
        if settings is None:
            settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
            self._settings[key] = settings
        return dict(settings, proxies=dict(settings["proxies"]))


def _read_whole(response: requests.Response) -> None:
    """Read the whole answer into ``response.content`` at once, failing as requests' own
    reading does. requests reads an answer it was not asked to stream in 10 KB pieces, each
    through urllib3's layers of Python: 20 of them for one student's feedback."""
    try:
        response._content = response.raw.read(decode_content=True) or b""
    except urllib3.exceptions.ProtocolError as exc:
        raise requests.exceptions.ChunkedEncodingError(exc) from exc
    except urllib3.exceptions.DecodeError as exc:
        raise requests.exceptions.ContentDecodingError(exc) from exc
    except urllib3.exceptions.ReadTimeoutError as exc:
        raise requests.ConnectionError(exc) from exc
    except urllib3.exceptions.SSLError as exc:
        raise requests.exceptions.SSLError(exc) from exc
    finally:
        response._content_consumed = True
        if response._content is False:  # not read: the connection is not reusable
            response.close()


class ExchangeClient(BundleTransfers):
    """One user's connection to the exchange service (thread-safe for parallel downloads)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 30.0,
        transfer_timeout: float = 600.0,
        retries: int = 3,
        backoff: float = 0.5,
        workers: int = 4,
        connections: int | None = None,
        report: Callable[[str], None] | None = None,
        progress_threshold: int = PROGRESS_THRESHOLD,
    ) -> None:
        if not url:
            raise ServiceError(
                "No exchange server is configured: set c.Exchange.url in nbgrader_config.py "
                "or the NBGRADER_EXCHANGE_URL environment variable."
            )
        base = url.rstrip("/") + "/"
        if not base.endswith(API_PREFIX):
            base += API_PREFIX
        self.api_url = base
        self.server = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.transfer_timeout = transfer_timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.workers = max(1, workers)
        self.report = report
        self.progress_threshold = progress_threshold
        self.session = _Session()
        # Connections kept for reuse: one per download under way (``connections`` when
        # several bundles download at once), and two for the requests between them.
        kept = max(self.workers, connections or 0) + 2
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=kept)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "nbgrader-exchange-plugin"
        self._origin = _origin(self.api_url)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> ExchangeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- requests --------------------------------------------------------------------------

    def url_for(self, path: str) -> str:
        return urljoin(self.api_url, path.lstrip("/"))

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        body: MultipartBody | None = None,
        idempotent: bool | None = None,
        stream: bool = False,
        timeout: float | None = None,
        accept: str = "application/json",
    ) -> requests.Response:
        """Send one request; retry it if ``idempotent`` (by default: by its method); raise
        ServiceError naming ``what`` failed."""
        url = path if "://" in path else self.url_for(path)
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        headers: dict[str, str] = {"Accept": accept}
        if self.token and _origin(url) == self._origin:
            headers["Authorization"] = f"token {self.token}"
        data: Any = None
        if body is not None:
            headers["Content-Type"] = body.content_type
            data = body
        attempt = 0
        while True:
            if body is not None:
                body.reset()
            # A request that must not be sent twice goes over a new connection: a kept-alive
            # one may be closed by the server (its idle timeout) just as it is reused, and
            # then nobody can tell whether the request arrived.
            sender = self.session if idempotent or stream else self._fresh_session()
            try:
                response = sender.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    data=data,
                    headers=headers,
                    stream=True,
                    timeout=(self.timeout, timeout or self.timeout),
                )
                if not stream:
                    _read_whole(response)
            except requests.RequestException as exc:
                unsent = never_sent(exc)
                if attempt < self.retries and (idempotent or unsent):
                    attempt += 1
                    self._sleep(attempt, f"{failure_reason(exc)}")
                    continue
                raise ServiceError(
                    f"Could not {what}: the exchange server at {self.server} "
                    f"{failure_reason(exc)}. Check the server address (c.Exchange.url or "
                    "NBGRADER_EXCHANGE_URL) or try again in a moment."
                ) from None
            finally:
                if sender is not self.session:
                    sender.close()  # the answer is read already (not streamed)
            if response.status_code in RETRY_STATUSES and idempotent and attempt < self.retries:
                attempt += 1
                response.close()
                self._sleep(attempt, f"answered {response.status_code}")
                continue
            if response.status_code >= 400:
                raise self._error(response, what)
            return response

    def _fresh_session(self) -> requests.Session:
        """A session like ours but with no connections yet."""
        fresh = _Session()
        for name in ("headers", "hooks", "auth", "proxies", "verify", "cert", "trust_env"):
            setattr(fresh, name, getattr(self.session, name))
        return fresh

    def _sleep(self, attempt: int, reason: str) -> None:
        delay = self.backoff * (2 ** (attempt - 1))
        log.debug("exchange server %s %s; retry %d in %.1fs", self.server, reason, attempt, delay)
        time.sleep(delay)

    def _error(self, response: requests.Response, what: str) -> ServiceError:
        status = response.status_code
        code = None
        detail = ""
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            code = payload.get("error")
            detail = str(payload.get("detail") or "")
        response.close()
        if status == 401:
            sentence = (
                f"Could not {what}: the exchange server at {self.server} did not accept your "
                "token (check NBGRADER_EXCHANGE_TOKEN, c.Exchange.token or JUPYTERHUB_API_TOKEN)"
            )
        elif status in RETRY_STATUSES:
            sentence = (
                f"Could not {what}: the exchange server at {self.server} is unavailable "
                f"(HTTP {status}); try again in a moment"
            )
        elif status == 429:
            # Never retried here: the person decides, after the wait the server names.
            sentence = f"Could not {what} now: the exchange server at {self.server} said"
            wait = _retry_after(response)
            if not detail:
                detail = "too many requests"
            if wait is not None and "try again" not in detail:
                detail = f"{detail.rstrip('.')}; try again in {wait} seconds"
        else:
            sentence = f"Could not {what}: the exchange server at {self.server} answered {status}"
        if detail:
            sentence += f": {detail.rstrip('.')}"
        return ServiceError(sentence + ".", status=status, code=code)

    def get(self, path: str, *, what: str = "read from the exchange", **params: Any) -> Any:
        """GET a JSON resource."""
        return self._json(self.request("GET", path, what=what, params=params or None), what)

    def get_with_files(self, path: str, *, what: str = "read from the exchange") -> Any:
        """GET a resource asked for with ``?inline=true``: its small files' bytes come after
        the JSON (``archive_download.INLINE_BYTES_TYPE``: no base64 to send and decode), each
        file's as its entry's ``content``; a server that does not offer that form answers
        JSON, whose ``content`` is base64. ``download_bundle`` writes either."""
        response = self.request(
            "GET",
            path,
            what=what,
            accept=archive_download.INLINE_ACCEPT,
        )
        media_type = response.headers.get("Content-Type", "").partition(";")[0].strip()
        if media_type.lower() != archive_download.INLINE_BYTES_TYPE:
            return self._json(response, what)
        try:
            return archive_download.read_inline_answer(response.content)
        except ValueError:
            raise ServiceError(
                f"Could not {what}: the answer from the exchange server at {self.server} "
                "is damaged (its JSON does not end where its files' bytes begin)."
            ) from None

    def post(
        self,
        path: str,
        payload: Any,
        *,
        what: str = "write to the exchange",
        idempotent: bool = False,
    ) -> Any:
        response = self.request("POST", path, what=what, json_body=payload, idempotent=idempotent)
        return self._json(response, what)

    def _json(self, response: requests.Response, what: str) -> Any:
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ServiceError(
                f"Could not {what}: {self.server} answered with something that is not the "
                "exchange service's JSON (is the URL right? it should be the service's base URL)."
            ) from None

    def delete(self, path: str, *, what: str = "delete on the exchange", **params: Any) -> None:
        self.request("DELETE", path, what=what, params=params or None)


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _retry_after(response: requests.Response) -> int | None:
    """The seconds of a ``Retry-After: <seconds>`` header, or None."""
    raw = response.headers.get("Retry-After", "").strip()
    return int(raw) if raw.isdigit() else None
