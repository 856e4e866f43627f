"""The exchange client's one error: a sentence for a person, and how a failed request reads.

Below the client, the local files and the transfers alike, so each of them can raise it.
"""

from __future__ import annotations

import requests
from urllib3.exceptions import NewConnectionError


class ServiceError(Exception):
    """A request to the exchange service failed; ``str()`` is one sentence for a person."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def never_sent(exc: requests.RequestException) -> bool:
    """True when the request failed before any byte reached the server."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def failure_reason(exc: requests.RequestException) -> str:
    """What went wrong with the server, as the end of a sentence naming it."""
    if isinstance(exc, requests.ConnectTimeout):
        return "did not answer in time (connection timed out)"
    if isinstance(exc, requests.Timeout):
        return "did not answer in time"
    if isinstance(exc, requests.ConnectionError):
        text = str(exc)
        if "Connection refused" in text or "Errno 111" in text:
            return "is not reachable (connection refused)"
        if "Name or service not known" in text or "getaddrinfo" in text or "resolve" in text:
            return "is not reachable (unknown host name)"
        return "is not reachable (the connection failed)"
    return f"could not be reached ({type(exc).__name__})"
