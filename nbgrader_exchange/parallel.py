"""Work on several items at once, stopping at the first failure.

``nbgrader collect`` downloads several submissions at a time and ``release_feedback`` sends
several batches: each item is a request the server handles in one of its workers, so a
few at once keep every worker busy where one after another leaves all but one idle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

T = TypeVar("T")

# How many at a time by default: submissions downloaded by collect (each mostly one
# archive request), feedback batches sent by release_feedback (each recorded in one long
# request). The server's chart and image run two workers of four threads.
COLLECT_AT_ONCE = 4
BATCHES_AT_ONCE = 2


def at_most(
    items: Iterable[T],
    work: Callable[[T], Any],
    *,
    at_once: int,
    finished: Callable[[int], None] = lambda index: None,
) -> BaseException | None:
    """``work(item)`` for each item, at most ``at_once`` at a time, in the items' order;
    ``finished(index)`` in this thread for each item whose work succeeded, as each finishes.
    After the first failure (of ``work`` or of taking the next item) no further item is
    started; those under way finish. Returns that first failure, or None."""
    failure: BaseException | None = None
    under_way: dict[Future[Any], int] = {}

    def collect(futures: Iterable[Future[Any]]) -> None:
        nonlocal failure
        for future in futures:
            index = under_way.pop(future)
            error = future.exception()
            if error is None:
                finished(index)
            elif failure is None:
                failure = error

    with ThreadPoolExecutor(max_workers=max(1, at_once)) as pool:
        try:
            for index, item in enumerate(items):
                under_way[pool.submit(work, item)] = index
                if len(under_way) >= at_once:
                    collect(wait(under_way, return_when=FIRST_COMPLETED).done)
                if failure is not None:
                    break
        except Exception as error:  # the next item could not be made (a file unreadable)
            failure = failure or error
        finally:
            collect(wait(under_way).done)
    return failure
