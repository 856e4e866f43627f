"""OpenAPI annotations of the API's views, handed to drf-spectacular only when the schema is
generated.

drf-spectacular's own ``extend_schema`` builds its schema class when the view module is
imported, which imports ``drf_spectacular.openapi`` and ``plumbing`` and, through them, DRF's
and Django's test modules (jinja2 among them): about 16 MB in every worker, although a
worker that never serves ``schema/`` needs none of it. ``extend_schema`` here takes the same
arguments, keeps them on the view method, and ``apply`` gives them to drf-spectacular's when
the schema generator (``api.schema.ExchangeSchemaGenerator``) first meets the view, so the
schema is the same as with the decorator applied at import.

The arguments' own types (``OpenApiParameter``, ``OpenApiResponse``, ``OpenApiTypes``) come
from ``drf_spectacular.utils`` and ``.types``, which import nothing heavy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

Method = TypeVar("Method", bound=Callable[..., Any])

# The annotations a view method still waits for, in the order they were written (innermost
# first, as decorators apply).
PENDING = "_openapi_pending"
# Two threads generating the schema at once: the second waits until the first has applied
# a view's annotations instead of seeing the view half annotated.
_applying = threading.Lock()


def extend_schema(**annotation: Any) -> Callable[[Method], Method]:
    """``drf_spectacular.utils.extend_schema`` for a view method, applied when the schema is
    generated rather than at import."""

    def keep(method: Method) -> Method:
        method.__dict__.setdefault(PENDING, []).append(annotation)
        return method

    return keep


def apply(view_class: type) -> None:
    """Apply the annotations still pending on ``view_class``'s methods (each once: they are
    removed as they are applied, from the inherited methods too)."""
    from drf_spectacular.utils import extend_schema as spectacular_extend_schema

    with _applying:
        for name in getattr(view_class, "http_method_names", ()):
            method = getattr(view_class, name, None)
            pending = getattr(method, "__dict__", {}).pop(PENDING, None)
            for annotation in pending or ():
                spectacular_extend_schema(**annotation)(method)
