"""Rows a write has just made, handed to the reads of the same request as if prefetched:
the answer to an upload lists what the upload wrote without reading it back."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import Model, QuerySet


def prefetch_rows(instance: Model, name: str, rows: Sequence[Model]) -> None:
    """Make ``rows`` the prefetched result of ``instance.<name>.all()``."""
    query = getattr(instance, name).all()
    query._result_cache = list(rows)
    query._prefetch_done = True
    instance.__dict__.setdefault("_prefetched_objects_cache", {})[name] = query


def cached_query(query: QuerySet[Any], rows: Sequence[Model]) -> QuerySet[Any]:
    """``query`` answered by ``rows`` (already in its order) without running."""
    query._result_cache = list(rows)
    query._prefetch_done = True
    return query


def prefetched(instance: Model, name: str) -> list[Any] | None:
    """The rows ``prefetch_rows`` (or ``prefetch_related``) left for ``name``, or None."""
    query = getattr(instance, "_prefetched_objects_cache", {}).get(name)
    return None if query is None else list(query)
