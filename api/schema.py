"""OpenAPI descriptions of the API's authentication, for drf-spectacular."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


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
