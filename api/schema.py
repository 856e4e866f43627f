"""OpenAPI details drf-spectacular cannot see by itself: the authentication schemes and the
error responses (the one error form, with each status an operation can answer); and the
generator that applies the views' annotations (``api.openapi``) as it meets each view.

Only schema generation imports this module (through ``SPECTACULAR_SETTINGS`` and
``REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"]``): a worker that serves requests does not load
drf-spectacular's generator.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from . import openapi


class JupyterHubTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.JupyterHubTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "'token <T>' or 'Bearer <T>': a JupyterHub API token or a token made by "
                "manage.py create_api_token."
            ),
        }


class ApiTokenScheme(JupyterHubTokenScheme):
    target_class = "api.authentication.ApiTokenAuthentication"
    name = "apiTokenAuth"


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="A stable code, e.g. not_found or missing_file.")
    detail = serializers.CharField(help_text="A sentence for people.")


ERRORS = {
    "400": "Bad input; the detail says which.",
    "401": "No or bad credentials (WWW-Authenticate: token).",
    "403": "A member whose role does not allow this.",
    "404": "Not found, or not visible to the caller.",
    "409": "Conflicts with the current state (in use, not released, exists).",
    "413": "Over an upload limit, or the submission quota (quota_exceeded).",
    "415": "Wrong content type.",
    "429": "Over the per-person submission rate; Retry-After gives the seconds to wait.",
    "503": "A dependency (JupyterHub, database, storage) does not answer.",
}
WRITE_ONLY = {"409", "413", "415", "429"}


class ExchangeAutoSchema(AutoSchema):
    """Every operation also documents the error responses it can give."""

    def error_statuses(self) -> list[str]:
        if not self.get_auth():
            return ["403", "404"]  # signed download links: expired, or not valid
        codes = [code for code in ERRORS if code not in WRITE_ONLY]
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes += sorted(WRITE_ONLY)
        return sorted(codes)

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code in self.error_statuses():
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["description"] = ERRORS[code]
                responses[code] = response
        return responses


class ExchangeSchemaGenerator(SchemaGenerator):
    """drf-spectacular's generator, applying each view's pending annotations first."""

    def create_view(self, callback: Any, method: str, request: Any = None) -> Any:
        openapi.apply(callback.cls)
        return super().create_view(callback, method, request)
