"""Assignments of a course: list and detail (and its due date and cutoff), release and
unrelease, fetch (the release manifest), submissions (submit and list), collect, and a
student's feedback."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from drf_spectacular.utils import OpenApiParameter
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from courses import deadlines, selectors, services
from courses.models import Assignment, BundleEntry
from courses.permissions import Action, get_assignment_for, get_course_for, may
from courses.prefetched import prefetch_rows

from ..downloads import inline_contents
from ..openapi import extend_schema
from ..serializers import (
    AssignmentDetailSerializer,
    AssignmentSerializer,
    CollectInputSerializer,
    DeadlinesInputSerializer,
    FeedbackBatchSerializer,
    FeedbackReleasedSerializer,
    FeedbackSerializer,
    ReleaseInputSerializer,
    ReleaseManifestSerializer,
    SubmissionListSerializer,
    SubmissionQuerySerializer,
    SubmissionWithFilesSerializer,
    SubmittedSerializer,
    UnreleaseQuerySerializer,
    UploadSerializer,
    inline_wanted,
)
from ..spliced_json import INLINE_BYTES_TYPE, Spliced, SplicedJSONRenderer, wants_inline_bytes
from .uploads import UploadParsers, check_content_length, upload_of


def _as_seen_by(assignment: Assignment, role: str, user: Any) -> selectors.AssignmentRow:
    """Figures for instructors and graders; a student's own dates (extensions)."""
    [row] = selectors.assignment_rows([assignment], role=role, user=user)
    return row


def _with_inline(
    request: Request, inline: bool, entries: Iterable[BundleEntry]
) -> tuple[dict[str, Any], Spliced | None]:
    """The serializers' ``context``, with the small files among ``entries`` when
    ``?inline=true`` asked for them (api/downloads.py chooses which), and the ``Spliced``
    that puts their bytes into the encoded answer afterwards (api/spliced_json.py): as
    base64 in the JSON, or after it for a client that accepts INLINE_BYTES_TYPE."""
    context: dict[str, Any] = {"request": request}
    if not inline:
        return context, None
    contents = inline_contents((entry.blob_id, entry.blob.size) for entry in entries)
    spliced = Spliced(raw=wants_inline_bytes(request))
    if spliced.raw:
        context["inline_at"] = {sha: spliced.attach(data) for sha, data in contents.items()}
    else:
        context["inline"] = {
            sha: spliced.placeholder(base64.b64encode(data)) for sha, data in contents.items()
        }
    return context, spliced


def _answer(data: Any, spliced: Spliced | None) -> Response:
    """The answer to a request that may have asked for files inline (``_with_inline``)."""
    response = Response(data)
    response.spliced = spliced
    if spliced is not None and spliced.raw:
        response.content_type = INLINE_BYTES_TYPE
    return response


class AssignmentListView(APIView):
    @extend_schema(
        responses=AssignmentSerializer(many=True),
        summary="The course's assignments (students: released ones)",
    )
    def get(self, request: Request, course_id: str) -> Response:
        course, role = get_course_for(request.user, course_id)
        rows = selectors.assignment_rows(
            selectors.assignments_for(course, role), role=role, user=request.user
        )
        return Response(AssignmentSerializer(rows, many=True).data)


class AssignmentDetailView(APIView):
    @extend_schema(
        responses=AssignmentDetailSerializer, summary="An assignment with its release's files"
    )
    def get(self, request: Request, course_id: str, assignment_id: str) -> Response:
        assignment, role = get_assignment_for(request.user, course_id, assignment_id)
        row = _as_seen_by(assignment, role, request.user)
        return Response(AssignmentDetailSerializer(row).data)

    @extend_schema(
        request=DeadlinesInputSerializer,
        responses=AssignmentDetailSerializer,
        summary="Change the due date and/or cutoff (no re-release)",
    )
    def patch(self, request: Request, course_id: str, assignment_id: str) -> Response:
        assignment, role = get_assignment_for(
            request.user, course_id, assignment_id, Action.MANAGE_DEADLINES
        )
        given = DeadlinesInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        assignment = deadlines.set_deadlines(
            actor=request.user,
            assignment=assignment,
            due_date=given.validated_data.get("due_date", deadlines.UNCHANGED),
            accept_until=given.validated_data.get("accept_until", deadlines.UNCHANGED),
        )
        row = _as_seen_by(assignment, role, request.user)
        return Response(AssignmentDetailSerializer(row).data)


class ReleaseView(UploadParsers, APIView):
    @extend_schema(
        request={"multipart/form-data": ReleaseInputSerializer},
        responses={201: AssignmentDetailSerializer},
        summary="Release (or re-release) an assignment",
    )
    def post(self, request: Request, course_id: str, assignment_id: str) -> Response:
        course, _ = get_course_for(request.user, course_id, Action.RELEASE)
        check_content_length(request)
        given = ReleaseInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        assignment = services.release_assignment(
            actor=request.user,
            course=course,
            code=assignment_id,
            upload=upload_of(given.validated_data),
            due_date=given.validated_data.get("due_date"),
            force=given.validated_data["force"],
        )
        return Response(
            AssignmentDetailSerializer(selectors.AssignmentRow(assignment)).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        parameters=[UnreleaseQuerySerializer], responses={204: None}, summary="Unrelease"
    )
    def delete(self, request: Request, course_id: str, assignment_id: str) -> Response:
        assignment, _ = get_assignment_for(request.user, course_id, assignment_id, Action.RELEASE)
        given = UnreleaseQuerySerializer(data=request.query_params)
        given.is_valid(raise_exception=True)
        services.unrelease_assignment(
            actor=request.user, assignment=assignment, force=given.validated_data["force"]
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReleaseFilesView(APIView):
    renderer_classes = [SplicedJSONRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "inline",
                bool,
                description="Small files' bytes in the answer (``content``, base64) instead "
                "of URLs: the notebooks of a release in one request. With ``Accept: "
                "application/vnd.nbgrader-exchange.inline, application/json`` the JSON on "
                "one line, a newline, then the bytes (``content_at``: where each file's bytes "
                "start).",
            ),
        ],
        responses=ReleaseManifestSerializer,
        summary="Fetch: the release's files with download URLs (recorded as a fetch)",
    )
    def get(self, request: Request, course_id: str, assignment_id: str) -> Response:
        assignment, _ = get_assignment_for(request.user, course_id, assignment_id, Action.FETCH)
        inline = inline_wanted(request.query_params)
        release = services.fetch_assignment(user=request.user, assignment=assignment)
        entries = list(selectors.bundle_entries(release))
        prefetch_rows(release, "entries", entries)  # read once, for both uses below
        context, spliced = _with_inline(request, inline, entries)
        answer = ReleaseManifestSerializer(selectors.AssignmentRow(assignment), context=context)
        return _answer(answer.data, spliced)


class SubmissionListView(UploadParsers, APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("latest", bool, description="Only each student's latest."),
            OpenApiParameter("student", str, description="Only this student's."),
        ],
        responses=SubmissionListSerializer(many=True),
        summary="Submissions (students: their own)",
    )
    def get(self, request: Request, course_id: str, assignment_id: str) -> Response:
        assignment, role = get_assignment_for(request.user, course_id, assignment_id)
        given = SubmissionQuerySerializer(data=request.query_params)
        given.is_valid(raise_exception=True)
        student = given.validated_data.get("student")
        if not may(role, Action.VIEW_ALL_SUBMISSIONS):
            if student not in (None, request.user.get_username()):
                return Response([])
            student = request.user.get_username()
        submissions = selectors.list_submissions(
            assignment=assignment, latest_only=given.validated_data["latest"], student=student
        )
        return Response(SubmissionListSerializer(submissions, many=True).data)

    @extend_schema(
        request={"multipart/form-data": UploadSerializer},
        responses={201: SubmittedSerializer},
        summary="Submit",
    )
    def post(self, request: Request, course_id: str, assignment_id: str) -> Response:
        assignment, _ = get_assignment_for(request.user, course_id, assignment_id, Action.SUBMIT)
        check_content_length(request)
        given = UploadSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        submission = services.submit_assignment(
            student=request.user, assignment=assignment, upload=upload_of(given.validated_data)
        )
        return Response(SubmittedSerializer(submission).data, status=status.HTTP_201_CREATED)


class CollectView(APIView):
    @extend_schema(
        request=CollectInputSerializer,
        responses=SubmissionWithFilesSerializer(many=True),
        summary="Collect submissions, with download URLs (recorded)",
    )
    def post(self, request: Request, course_id: str, assignment_id: str) -> Response:
        assignment, _ = get_assignment_for(request.user, course_id, assignment_id, Action.COLLECT)
        given = CollectInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        submissions = services.collect_submissions(
            actor=request.user,
            assignment=assignment,
            latest_only=given.validated_data["latest"],
            student=given.validated_data.get("student"),
        )
        return Response(
            SubmissionWithFilesSerializer(
                selectors.with_files(submissions), many=True, context={"request": request}
            ).data
        )


class AssignmentFeedbackView(UploadParsers, APIView):
    renderer_classes = [SplicedJSONRenderer]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "inline",
                bool,
                description="Small files' bytes in the answer (``content``, base64) instead "
                "of URLs: the whole feedback in one request. With ``Accept: "
                "application/vnd.nbgrader-exchange.inline, application/json`` the JSON on "
                "one line, a newline, then the bytes (``content_at``: where each file's bytes "
                "start).",
            ),
        ],
        responses=FeedbackSerializer(many=True),
        summary="Fetch my feedback on this assignment (recorded)",
    )
    def get(self, request: Request, course_id: str, assignment_id: str) -> Response:
        assignment, _ = get_assignment_for(
            request.user, course_id, assignment_id, Action.FETCH_FEEDBACK
        )
        inline = inline_wanted(request.query_params)
        feedback = services.fetch_feedback(student=request.user, assignment=assignment)
        context, spliced = _with_inline(
            request,
            inline,
            (entry for item in feedback for entry in selectors.bundle_entries(item.bundle)),
        )
        answer = FeedbackSerializer(context=context)  # one for all: no ListSerializer walk
        return _answer([answer.to_representation(item) for item in feedback], spliced)

    @extend_schema(
        request={"multipart/form-data": FeedbackBatchSerializer},
        responses={201: FeedbackReleasedSerializer(many=True)},
        summary="Release feedback to many submissions at once (all or nothing)",
    )
    def post(self, request: Request, course_id: str, assignment_id: str) -> Response:
        assignment, _ = get_assignment_for(
            request.user, course_id, assignment_id, Action.RELEASE_FEEDBACK
        )
        check_content_length(request)
        given = FeedbackBatchSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        feedback = services.release_feedback_many(
            actor=request.user, assignment=assignment, upload=upload_of(given.validated_data)
        )
        return Response(
            FeedbackReleasedSerializer(feedback, many=True).data, status=status.HTTP_201_CREATED
        )
