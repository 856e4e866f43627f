"""``manage.py gc_blobs`` one step at a time, for the fault tests (tests/test_gc_faults.py).

Run as ``python -m tests.gc_stepper <gc_blobs arguments>`` with a server's environment. It
loads Django, then waits for the line ``run`` on stdin (the test starts the next stepper
while the current one works, so that loading costs no wall time; end of input instead of
``run`` ends it without collecting). Before every step that changes something (an SQL
``DELETE`` or ``UPDATE``, a commit, a storage delete or move) it prints ``STEP <n> <what>``
and waits for a line on stdin:

- ``go``: take the step;
- ``down``: the file storage fails from now on (every call raises ``EIO``), then go on.

The test kills the process (``kill -9``) or cuts its database connection
(``pg_terminate_backend``; the connection's ``application_name`` is ``gc-stepper``) while
it waits. Nothing here changes what gc does: the hooks only pause it and inject failures.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange_site.settings")
os.environ.setdefault("PGAPPNAME", "gc-stepper")

_count = 0
_storage_down = False


def step(what: str) -> None:
    """Announce the next step and do what the test says."""
    global _count, _storage_down
    _count += 1
    print(f"STEP {_count} {what}", flush=True)
    command = sys.stdin.readline().strip()
    if command == "down":
        _storage_down = True


def _down() -> OSError:
    return OSError(errno.EIO, "file storage down (injected by the fault test)")


def _paused(what: str, call: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        step(f"{what} {' '.join(str(a) for a in args)[:120]}")
        if _storage_down:
            raise _down()
        return call(*args, **kwargs)

    return wrapper


def _failing_when_down(call: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _storage_down:
            raise _down()
        return call(*args, **kwargs)

    return wrapper


def main(argv: list[str]) -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from courses import blobstore

    storage = blobstore.get_storage()
    for name in ("exists", "size", "get_modified_time", "listdir", "open", "save"):
        setattr(storage, name, _failing_when_down(getattr(storage, name)))
    storage.delete = _paused("storage delete", storage.delete)
    if hasattr(blobstore, "_move"):
        blobstore._move = _paused("storage move", blobstore._move)

    def sql_steps(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any):
        if sql.lstrip().upper().startswith(("DELETE", "UPDATE")):
            step(f"sql {sql.split(' WHERE ')[0][:100]}")
        return execute(sql, params, many, context)

    connection.execute_wrappers.append(sql_steps)
    commit = connection.commit

    def paused_commit() -> None:
        step("commit")
        commit()

    connection.commit = paused_commit  # type: ignore[method-assign]
    if sys.stdin.readline().strip() != "run":
        return 0
    try:
        call_command("gc_blobs", *argv)
    except BaseException as exc:
        print(f"FAILED {type(exc).__name__}: {exc}", flush=True)
        return 1
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
