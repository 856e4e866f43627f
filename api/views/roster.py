"""``POST courses/{course_id}/roster``: a whole roster at once, as JSON or as a CSV file
(nbgrader's student CSV or a Canvas export), applied by ``courses.roster.import_roster``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from courses import roster
from courses.exceptions import TooLarge
from courses.models import Membership
from courses.permissions import Action, get_course_for

from ..openapi import extend_schema
from ..parsers import LimitedJSONParser

Role = Membership.Role
MAX_ROSTER_BYTES = 10 * 1024 * 1024


class CSVParser(BaseParser):
    """A roster CSV as text; the roster module reads its columns."""

    media_type = "text/csv"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> str:
        data = stream.read(MAX_ROSTER_BYTES + 1) if stream is not None else b""
        if len(data) > MAX_ROSTER_BYTES:
            raise TooLarge(f"A roster file may have at most {MAX_ROSTER_BYTES} bytes.")
        return data


class RosterMemberSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    email = serializers.CharField(max_length=254, required=False, allow_blank=True)
    lms_user_id = serializers.CharField(max_length=128, required=False, allow_blank=True)


class RosterOptionsSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices, default=Role.STUDENT)
    sync = serializers.BooleanField(default=False)
    dry_run = serializers.BooleanField(default=False)


class RosterCsvOptionsSerializer(RosterOptionsSerializer):
    format = serializers.ChoiceField(choices=sorted(roster.FORMATS), required=False)


class RosterInputSerializer(RosterOptionsSerializer):
    members = RosterMemberSerializer(many=True)


class RosterResultSerializer(serializers.Serializer):
    added = serializers.ListField(child=serializers.CharField())
    updated = serializers.ListField(child=serializers.CharField())
    removed = serializers.ListField(child=serializers.CharField())
    unchanged = serializers.ListField(child=serializers.CharField())
    removed_with_submissions = serializers.ListField(child=serializers.CharField())
    dry_run = serializers.BooleanField()


class RosterView(APIView):
    parser_classes = [LimitedJSONParser, CSVParser]

    @extend_schema(
        request={"application/json": RosterInputSerializer, "text/csv": str},
        parameters=[
            OpenApiParameter("role", str, enum=Role.values, description="CSV only."),
            OpenApiParameter("sync", bool, description="CSV only: remove members not listed."),
            OpenApiParameter("dry_run", bool, description="CSV only: report, change nothing."),
            OpenApiParameter("format", str, enum=sorted(roster.FORMATS), description="CSV only."),
        ],
        responses=RosterResultSerializer,
        summary="Apply a whole roster (JSON or CSV)",
    )
    def post(self, request: Request, course_id: str) -> Response:
        course, _ = get_course_for(request.user, course_id, Action.MANAGE_ROSTER)
        if isinstance(request.data, (bytes, str)):
            options = RosterCsvOptionsSerializer(data=request.query_params)
            options.is_valid(raise_exception=True)
            rows: list[Any] = roster.parse_roster(
                request.data, format=options.validated_data.get("format")
            )
        else:
            options = RosterInputSerializer(data=request.data)
            options.is_valid(raise_exception=True)
            rows = options.validated_data["members"]
        summary = roster.import_roster(
            course=course,
            rows=rows,
            role=options.validated_data["role"],
            sync=options.validated_data["sync"],
            dry_run=options.validated_data["dry_run"],
            actor=request.user,
        )
        return Response(RosterResultSerializer(summary.as_dict()).data)
