"""Per-student extensions of an assignment's due date and cutoff."""

from __future__ import annotations

from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from courses import deadlines
from courses.permissions import Action, get_assignment_for

from ..openapi import extend_schema
from ..serializers import ExtensionInputSerializer, ExtensionSerializer


class ExtensionListView(APIView):
    @extend_schema(
        responses=ExtensionSerializer(many=True),
        summary="The assignment's extensions (instructors and graders)",
    )
    def get(self, request: Request, course_id: str, assignment_id: str) -> Response:
        assignment, _ = get_assignment_for(
            request.user, course_id, assignment_id, Action.VIEW_EXTENSIONS
        )
        return Response(ExtensionSerializer(deadlines.extensions_of(assignment), many=True).data)


class ExtensionDetailView(APIView):
    @extend_schema(
        request=ExtensionInputSerializer,
        responses={200: ExtensionSerializer, 201: ExtensionSerializer},
        summary="Grant (or change) a student's extension",
    )
    def put(self, request: Request, course_id: str, assignment_id: str, username: str) -> Response:
        assignment, _ = get_assignment_for(
            request.user, course_id, assignment_id, Action.MANAGE_DEADLINES
        )
        given = ExtensionInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        extension, created = deadlines.grant_extension(
            actor=request.user,
            assignment=assignment,
            username=username,
            due_date=given.validated_data["due_date"],
            accept_until=given.validated_data["accept_until"],
        )
        return Response(
            ExtensionSerializer(extension).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )

    @extend_schema(responses={204: None}, summary="Revoke a student's extension")
    def delete(
        self, request: Request, course_id: str, assignment_id: str, username: str
    ) -> Response:
        assignment, _ = get_assignment_for(
            request.user, course_id, assignment_id, Action.MANAGE_DEADLINES
        )
        deadlines.revoke_extension(actor=request.user, assignment=assignment, username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)
