"""Scores and grade export: ``GET .../assignments/{assignment_id}/scores`` (instructors and
graders) and ``GET courses/{course_id}/grades`` (instructors; Canvas or plain CSV)."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from courses import gradeexport, grades
from courses.permissions import Action, get_assignment_for, get_course_for

from ..fields import TimestampField
from ..openapi import extend_schema
from ..serializers import ScoreSerializer


class StudentScoreSerializer(serializers.Serializer):
    student = serializers.CharField()
    submission_id = serializers.IntegerField()
    released_at = TimestampField()
    score = serializers.FloatField(source="total.score")
    max_score = serializers.FloatField(source="total.max_score")
    scores = ScoreSerializer(many=True, source="total.notebooks")


class GradeExportQuerySerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=gradeexport.FORMATS, default=gradeexport.CANVAS)
    assignment = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False, default=list
    )


class AssignmentScoresView(APIView):
    @extend_schema(
        responses=StudentScoreSerializer(many=True),
        summary="Each student's score on the assignment (instructors and graders)",
    )
    def get(self, request: Request, course_id: str, assignment_id: str) -> Response:
        assignment, _ = get_assignment_for(
            request.user, course_id, assignment_id, Action.VIEW_ALL_SUBMISSIONS
        )
        rows = sorted(grades.student_scores(assignment).values(), key=lambda r: r.student)
        return Response(StudentScoreSerializer(rows, many=True).data)


class GradeExportView(APIView):
    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # ``?format=`` names the grade file's format here, not one of DRF's renderers (which
        # would answer 404 for "canvas"); errors are still rendered as JSON.
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=list(gradeexport.FORMATS)),
            OpenApiParameter(
                "assignment", str, many=True, description="Repeat to choose; default: all."
            ),
        ],
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR)},
        summary="The course's grades as Canvas gradebook import or plain CSV (instructors)",
    )
    def get(self, request: Request, course_id: str) -> Any:
        course, _ = get_course_for(request.user, course_id, Action.EXPORT_GRADES)
        query = GradeExportQuerySerializer(
            data={
                "format": request.query_params.get("format", gradeexport.CANVAS),
                "assignment": request.query_params.getlist("assignment"),
            }
        )
        query.is_valid(raise_exception=True)
        text = gradeexport.export_grades(
            course=course,
            assignments=query.validated_data["assignment"],
            format=query.validated_data["format"],
            actor=request.user,
        )
        response = HttpResponse(text, content_type="text/csv; charset=utf-8")
        name = f"{course.code}-grades-{query.validated_data['format']}.csv"
        response["Content-Disposition"] = content_disposition_header(True, name)
        return response
