"""``GET files/{signed}``: the bytes behind a signed download URL (local storage).

``api.signed_files.SignedFileMiddleware`` answers these requests before they reach this
view; the view is what the URLconf and the OpenAPI schema name, and answers the same way
when the middleware is not installed.
"""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from ..openapi import extend_schema
from ..signed_files import serve_signed


class FileView(APIView):
    """The signature is the credential: no login, valid until it expires."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        auth=[],
        responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY)},
        summary="A file's bytes (signed URL)",
    )
    def get(self, request: Request, signed: str) -> HttpResponse:
        return serve_signed(signed)
