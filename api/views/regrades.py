"""Regrade requests: a student asks on a returned submission and reads the answer; graders
and instructors list a course's or an assignment's requests and answer them."""

from __future__ import annotations

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from courses import regrade_selectors, regrades
from courses.permissions import Action, get_assignment_for, get_course_for, get_submission_for

from ..openapi import extend_schema
from ..regrade_serializers import (
    RegradeAnswerSerializer,
    RegradeAskSerializer,
    RegradeQuerySerializer,
    RegradeSerializer,
)


def _status_filter(request: Request) -> str:
    given = RegradeQuerySerializer(data=request.query_params)
    given.is_valid(raise_exception=True)
    return given.validated_data["status"]


class CourseRegradeListView(APIView):
    @extend_schema(
        parameters=[RegradeQuerySerializer],
        responses=RegradeSerializer(many=True),
        summary="The course's regrade requests (students: their own), newest first",
    )
    def get(self, request: Request, course_id: str) -> Response:
        course, role = get_course_for(request.user, course_id)
        rows = regrade_selectors.regrades_in(
            user=request.user, role=role, course=course, status=_status_filter(request)
        )
        return Response(RegradeSerializer(rows, many=True).data)


class AssignmentRegradeListView(APIView):
    @extend_schema(
        parameters=[RegradeQuerySerializer],
        responses=RegradeSerializer(many=True),
        summary="The assignment's regrade requests (students: their own), newest first",
    )
    def get(self, request: Request, course_id: str, assignment_id: str) -> Response:
        assignment, role = get_assignment_for(request.user, course_id, assignment_id)
        rows = regrade_selectors.regrades_in(
            user=request.user,
            role=role,
            course=assignment.course,
            assignment=assignment,
            status=_status_filter(request),
        )
        return Response(RegradeSerializer(rows, many=True).data)


class SubmissionRegradeListView(APIView):
    @extend_schema(
        responses=RegradeSerializer(many=True),
        summary="A submission's regrade requests, newest first",
    )
    def get(self, request: Request, submission_id: int) -> Response:
        submission, _ = get_submission_for(request.user, submission_id)
        rows = regrade_selectors.regrades_of_submission(submission)
        return Response(RegradeSerializer(rows, many=True).data)

    @extend_schema(
        request=RegradeAskSerializer,
        responses={201: RegradeSerializer},
        summary="Ask for a regrade of your returned submission (students)",
    )
    def post(self, request: Request, submission_id: int) -> Response:
        submission, _ = get_submission_for(request.user, submission_id, Action.REQUEST_REGRADE)
        given = RegradeAskSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        asked = regrades.request_regrade(
            student=request.user, submission=submission, message=given.validated_data["message"]
        )
        return Response(RegradeSerializer(asked).data, status=status.HTTP_201_CREATED)


class RegradeDetailView(APIView):
    @extend_schema(responses=RegradeSerializer, summary="One regrade request, with its answer")
    def get(self, request: Request, regrade_id: int) -> Response:
        found, _ = regrade_selectors.get_regrade_for(request.user, regrade_id)
        return Response(RegradeSerializer(found).data)


class RegradeAnswerView(APIView):
    @extend_schema(
        request=RegradeAnswerSerializer,
        responses=RegradeSerializer,
        summary="Answer an open regrade request (instructors and graders)",
    )
    def post(self, request: Request, regrade_id: int) -> Response:
        found, _ = regrade_selectors.get_regrade_for(
            request.user, regrade_id, Action.ANSWER_REGRADE
        )
        given = RegradeAnswerSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        answered = regrades.answer_regrade(
            actor=request.user,
            request=found,
            status=given.validated_data["status"],
            answer=given.validated_data["answer"],
        )
        return Response(RegradeSerializer(answered).data)


class RegradeWithdrawView(APIView):
    @extend_schema(
        request=None,
        responses=RegradeSerializer,
        summary="Withdraw your open regrade request (students)",
    )
    def post(self, request: Request, regrade_id: int) -> Response:
        found, _ = regrade_selectors.get_regrade_for(
            request.user, regrade_id, Action.REQUEST_REGRADE
        )
        withdrawn = regrades.withdraw_regrade(student=request.user, request=found)
        return Response(RegradeSerializer(withdrawn).data)
