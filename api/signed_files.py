"""The lean path for ``GET files/{signed}``: the most frequent request of a fetch or collect.

The signature is the whole credential and names the blob, so the answer needs no session,
CSRF check, language, user, DRF or database: ``SignedFileMiddleware`` sits right after the
security headers and answers these requests itself, before the middlewares that would do
that work. With local storage the file is opened by its path and handed to the WSGI server
as a file (gunicorn sends it with ``sendfile``). The blob's database row is not read: a link
is only made for a blob a bundle holds, and lives EXCHANGE_SIGNED_URL_SECONDS; a blob
removed since is gone from the storage too and answers 404.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.files.storage import FileSystemStorage
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

from courses import blobstore
from courses.dependencies import RETRY_AFTER_SECONDS, as_unavailable
from courses.exceptions import ExchangeError, NotFound
from courses.models import blob_storage_name

from .downloads import ARCHIVE, read_signed
from .signed_archive import serve_archive

GONE = "The file behind this link is no longer stored."


def _error(
    code: str, detail: str, status: int, headers: dict[str, str] | None = None
) -> HttpResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status, headers=headers)


def serve_signed(signed: str) -> HttpResponse:
    """The bytes a signed token names, as an attachment; the API's JSON error otherwise."""
    try:
        sha256, name = read_signed(signed)
        storage = blobstore.get_storage()
        if isinstance(storage, FileSystemStorage):
            try:
                # Opened by path, so the WSGI server can sendfile it; FileResponse closes it.
                handle = open(storage.path(blob_storage_name(sha256)), "rb")
            except FileNotFoundError:
                raise NotFound(GONE) from None
        else:
            if not blobstore.exists(sha256):
                raise NotFound(GONE)
            handle = blobstore.open_blob(sha256)
    except ExchangeError as exc:
        return _error(exc.code, exc.detail, exc.status_code)
    except Exception as exc:
        unavailable = as_unavailable(exc)
        if unavailable is None:
            raise
        headers = {"Retry-After": str(unavailable.retry_after or RETRY_AFTER_SECONDS)}
        return _error(unavailable.code, unavailable.detail, unavailable.status_code, headers)
    # FileResponse takes Content-Length from the open file, and its file reaches the WSGI
    # server's file_wrapper (sendfile) untouched.
    response = FileResponse(
        handle, as_attachment=True, filename=name, content_type="application/octet-stream"
    )
    response["Cache-Control"] = "private, max-age=0"
    return response


class SignedFileMiddleware:
    """Answer ``GET``/``HEAD`` of the API's ``files/{signed}`` and ``POST files/archive``
    (api/signed_archive.py) without the rest of the stack (other methods go on to the view,
    which says 405)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._prefix: str | None = None

    def prefix(self) -> str:
        """The path of the file URLs without the signature, from the URLconf (resolved on
        first use, once the URLconf may be loaded)."""
        if self._prefix is None:
            sample = reverse("api:file", args=["s"], urlconf=None)
            self._prefix = sample[: -len("s")].removeprefix(_script_prefix(sample))
        return self._prefix

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if request.method in ("GET", "HEAD") and path.startswith(self.prefix()):
            signed = path[len(self.prefix()) :]
            if signed and "/" not in signed:
                return serve_signed(signed)
        elif request.method == "POST" and path == self.prefix() + ARCHIVE:
            return serve_archive(request)
        return self.get_response(request)


def _script_prefix(url: str) -> str:
    """The script prefix ``reverse`` put in front of ``url`` (the service's prefix when it is
    served under one), without its trailing slash."""
    from django.urls import get_script_prefix

    prefix = get_script_prefix().rstrip("/")
    return prefix if prefix and url.startswith(prefix + "/") else ""
