"""The one error model. Every interface turns an ExchangeError into its own form
(the API into ``{"error": code, "detail": sentence}`` with ``status_code``, commands into
``CommandError``, pages into an error page)."""

from __future__ import annotations


class ExchangeError(Exception):
    """A failure the caller can understand and act on: a sentence, a code, an HTTP status."""

    status_code = 400
    code = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class BadRequest(ExchangeError):
    status_code = 400
    code = "bad_request"


class BadArchive(ExchangeError):
    """An upload's archive or manifest breaks a rule; the sentence names the path and the rule."""

    status_code = 400
    code = "bad_archive"


class NotFound(ExchangeError):
    """Missing, or not visible to the caller: the two are never told apart."""

    status_code = 404
    code = "not_found"


class PermissionDenied(ExchangeError):
    """A member of the course whose role does not allow the action."""

    status_code = 403
    code = "forbidden"


class Conflict(ExchangeError):
    status_code = 409
    code = "conflict"


class TooLarge(ExchangeError):
    status_code = 413
    code = "too_large"


class TooManyRequests(ExchangeError):
    """Over a per-person rate; ``retry_after`` says in how many seconds to try again."""

    status_code = 429
    code = "too_many_requests"

    def __init__(self, detail: str, *, code: str | None = None, retry_after: int) -> None:
        super().__init__(detail, code=code)
        self.retry_after = retry_after


class Unavailable(ExchangeError):
    """A dependency (database, storage, JupyterHub) does not answer; ``retry_after``, when
    given, is the seconds after which trying again should work (else the service's usual)."""

    status_code = 503
    code = "unavailable"

    def __init__(
        self, detail: str, *, code: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(detail, code=code)
        self.retry_after = retry_after
