"""Which failures mean that a dependency (the database, the file storage) is away, and the
sentence the caller gets for them: a 503 with a clear message, never a 500.

The service needs no restart when the dependency comes back: Django opens a new database
connection for the next request (``CONN_HEALTH_CHECKS``), and storage clients reconnect.
"""

from __future__ import annotations

import errno
import logging
import sys
from typing import Any

from django.db import (
    DEFAULT_DB_ALIAS,
    InterfaceError,
    NotSupportedError,
    OperationalError,
    connections,
)

from .exceptions import Unavailable

logger = logging.getLogger(__name__)

# Local storage errors that say the disk, not the request, is at fault.
_STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS}


def _storage_connection_errors() -> tuple[type[BaseException], ...]:
    # A botocore error exists only once botocore is loaded: on local storage, mapping an
    # error must not load it (about 20 MB in every worker).
    boto = sys.modules.get("botocore.exceptions")
    if boto is None:
        return ()
    return (boto.ConnectionError, boto.HTTPClientError)


def _is_storage_server_error(exc: BaseException) -> bool:
    """An S3 answer of 5xx (SlowDown, InternalError, ServiceUnavailable)."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return isinstance(status, int) and status >= 500


# PostgreSQL's refusal of a statement prepared on this connection before a migration changed
# the type of a column it returns (settings: EXCHANGE_DB_PREPARED_STATEMENTS).
_STALE_PREPARED_STATEMENT = "cached plan must not change result type"

# How many such refusals this process has seen. Its other connections prepared their
# statements before the change too: each is closed at the start of its next request
# instead of failing one.
_schema_changes = 0


def _is_stale_prepared_statement(exc: BaseException) -> bool:
    return isinstance(exc, NotSupportedError) and _STALE_PREPARED_STATEMENT in str(exc)


def note_new_connection(connection: Any, **kwargs: Any) -> None:
    """``connection_created``: the connection prepares its statements from now on."""
    connection.exchange_schema_changes = _schema_changes


def close_if_prepared_before_a_schema_change(**kwargs: Any) -> None:
    """``request_started``: a connection opened before a refusal this process has seen
    since is closed; the request opens a new one."""
    connection = connections[DEFAULT_DB_ALIAS]
    seen = getattr(connection, "exchange_schema_changes", _schema_changes)
    if connection.connection is not None and seen < _schema_changes:
        connection.close()


def as_unavailable(exc: BaseException) -> Unavailable | None:
    """The 503 that stands for ``exc`` when it means a dependency is away; None otherwise."""
    if isinstance(exc, Unavailable):
        return exc
    if _is_stale_prepared_statement(exc):
        # The connection would refuse the statement on every request until it is closed (up
        # to CONN_MAX_AGE): closed now, with its prepared statements, and the process's other
        # connections at their next request. Happens once per worker process of a pod still
        # running while an upgrade's migration changes a column.
        global _schema_changes
        _schema_changes += 1
        logger.warning(
            "The database's schema changed under a prepared statement (%s): reconnecting.", exc
        )
        connections[DEFAULT_DB_ALIAS].close()
        return Unavailable(
            "The exchange's database was changed by an upgrade during this request. Try again.",
            retry_after=1,
        )
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("The database is unavailable: %s", exc)
        return Unavailable(
            "The exchange's database is unavailable or overloaded. Try again in a minute."
        )
    if isinstance(exc, _storage_connection_errors()) or _is_storage_server_error(exc):
        logger.warning("The file storage is unavailable: %s", exc)
        return Unavailable("The exchange's file storage is unavailable. Try again in a minute.")
    if isinstance(exc, OSError) and exc.errno in _STORAGE_ERRNOS:
        logger.error("The file storage failed: %s", exc)
        return Unavailable(
            f"The exchange's file storage failed ({exc.strerror}). "
            "Tell the people who run the service."
        )
    return None


RETRY_AFTER_SECONDS = 30
