"""One submission by id: its files, its removal, the whole of it as a zip, and its
feedback."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from courses import grades, selectors, services
from courses.exceptions import NotFound
from courses.models import Feedback
from courses.permissions import Action, get_submission_for, may
from courses.timestamps import format_timestamp
from courses.zips import iter_zip

from ..openapi import extend_schema
from ..serializers import (
    FeedbackSerializer,
    FeedbackUploadSerializer,
    SubmissionWithFilesSerializer,
)
from .uploads import UploadParsers, check_content_length, upload_of


class SubmissionDetailView(APIView):
    @extend_schema(responses=SubmissionWithFilesSerializer, summary="A submission with its files")
    def get(self, request: Request, submission_id: int) -> Response:
        submission, _ = get_submission_for(request.user, submission_id)
        return Response(
            SubmissionWithFilesSerializer(
                selectors.with_files([submission])[0], context={"request": request}
            ).data
        )

    @extend_schema(
        responses={204: None},
        summary="Remove a submission and its feedback (instructors; audited)",
    )
    def delete(self, request: Request, submission_id: int) -> Response:
        submission, _ = get_submission_for(request.user, submission_id, Action.REMOVE_SUBMISSIONS)
        services.delete_submission(actor=request.user, submission=submission)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SubmissionDownloadView(APIView):
    @extend_schema(
        responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY)},
        summary="The whole submission as one zip",
    )
    def get(self, request: Request, submission_id: int) -> StreamingHttpResponse:
        submission, _ = get_submission_for(request.user, submission_id)
        assignment = submission.assignment
        stamp = format_timestamp(submission.timestamp) or ""
        stamp = stamp.replace(" UTC", "").replace(" ", "T").replace(":", "")
        root = f"{assignment.course.code}-{assignment.code}-{submission.student.username}-{stamp}"
        response = StreamingHttpResponse(
            iter_zip(selectors.bundle_entries(submission.bundle), root=root),
            content_type="application/zip",
        )
        response["Content-Disposition"] = content_disposition_header(True, f"{root}.zip")
        return response


class SubmissionFeedbackView(UploadParsers, APIView):
    @extend_schema(
        request={"multipart/form-data": FeedbackUploadSerializer},
        responses={201: FeedbackSerializer},
        summary="Release feedback (and its scores) on a submission",
    )
    def post(self, request: Request, submission_id: int) -> Response:
        submission, _ = get_submission_for(request.user, submission_id, Action.RELEASE_FEEDBACK)
        check_content_length(request)
        given = FeedbackUploadSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        scores = given.validated_data.get("scores")
        feedback = services.release_feedback(
            actor=request.user,
            submission=submission,
            upload=upload_of(given.validated_data),
            scores=grades.check_scores(scores) if scores is not None else (),
        )
        return Response(
            FeedbackSerializer(feedback, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        responses=FeedbackSerializer, summary="The feedback on a submission, with its files"
    )
    def get(self, request: Request, submission_id: int) -> Response:
        submission, role = get_submission_for(request.user, submission_id)
        feedback: Feedback | None
        if may(role, Action.VIEW_ALL_SUBMISSIONS):
            feedback = selectors.feedback_of(submission)
        else:
            found = services.fetch_feedback(
                student=request.user, assignment=submission.assignment, submission=submission
            )
            feedback = found[0] if found else None
        if feedback is None:
            raise NotFound(f"No feedback has been released for submission {submission.pk}.")
        return Response(FeedbackSerializer(feedback, context={"request": request}).data)
