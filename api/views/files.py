"""``GET files/{signed}``: the bytes behind a signed download URL (local storage)."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.views import APIView

from courses import blobstore
from courses.exceptions import NotFound
from courses.models import Blob

from ..downloads import read_signed


class FileView(APIView):
    """The signature is the credential: no login, valid until it expires."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        auth=[],
        responses={(200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY)},
        summary="A file's bytes (signed URL)",
    )
    def get(self, request: Request, signed: str) -> FileResponse:
        sha256, name = read_signed(signed)
        blob = Blob.objects.filter(sha256=sha256).first()
        if blob is None or not blobstore.exists(sha256):
            raise NotFound("The file behind this link is no longer stored.")
        response = FileResponse(
            blobstore.open_blob(sha256),
            as_attachment=True,
            filename=name,
            content_type="application/octet-stream",
        )
        response["Content-Length"] = str(blob.size)
        response["Cache-Control"] = "private, max-age=0"
        return response
