"""Serializer fields shared by the API's serializers."""

from __future__ import annotations

import datetime as dt
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from courses.timestamps import format_timestamp, parse_timestamp


@extend_schema_field(
    {
        "type": "string",
        "nullable": True,
        "example": "2026-11-28 03:40:12.123456 UTC",
        "description": "UTC, in nbgrader's format %Y-%m-%d %H:%M:%S.%f %Z.",
    }
)
class TimestampField(serializers.Field):
    """A time in nbgrader's format out; nbgrader's format or ISO 8601 in."""

    def to_representation(self, value: dt.datetime) -> str | None:
        return format_timestamp(value)

    def to_internal_value(self, data: Any) -> dt.datetime:
        if not isinstance(data, str):
            raise serializers.ValidationError("Expected a time as text.")
        try:
            return parse_timestamp(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc


@extend_schema_field(OpenApiTypes.STR)
class ManifestField(serializers.Field):
    """The manifest of an upload: a JSON text, sent as a form field or as a file part."""

    MAX_BYTES = 16 * 1024 * 1024

    def to_internal_value(self, data: Any) -> str | bytes:
        if hasattr(data, "read"):
            if getattr(data, "size", 0) > self.MAX_BYTES:
                raise serializers.ValidationError("The manifest is too large.")
            return data.read()
        if isinstance(data, str):
            return data
        raise serializers.ValidationError("Expected the manifest as JSON text.")

    def to_representation(self, value: Any) -> Any:
        return value
