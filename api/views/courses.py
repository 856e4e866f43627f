"""Courses and their members: ``courses``, ``courses/{course_id}``,
``courses/{course_id}/members[/{username}]``."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from courses import selectors, services
from courses.exceptions import PermissionDenied
from courses.permissions import Action, get_course_for, is_site_admin

from ..openapi import extend_schema
from ..serializers import (
    CourseCreateSerializer,
    CourseSerializer,
    MemberInputSerializer,
    MemberSerializer,
    MyCourseSerializer,
)


class CourseListView(APIView):
    @extend_schema(responses=MyCourseSerializer(many=True), summary="My courses")
    def get(self, request: Request) -> Response:
        return Response(MyCourseSerializer(selectors.my_courses(request.user), many=True).data)

    @extend_schema(
        request=CourseCreateSerializer,
        responses={201: CourseSerializer},
        summary="Create a course (site admins)",
    )
    def post(self, request: Request) -> Response:
        if not is_site_admin(request.user):
            raise PermissionDenied("Only site admins may create courses.")
        given = CourseCreateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        course = services.create_course(
            code=given.validated_data["course_id"],
            title=given.validated_data["title"],
            instructors=given.validated_data["instructors"],
            actor=request.user,
        )
        _, role = get_course_for(request.user, course.code)
        return Response(
            CourseSerializer(selectors.CourseRow(course, role)).data, status=status.HTTP_201_CREATED
        )


class CourseDetailView(APIView):
    @extend_schema(responses=CourseSerializer, summary="A course I am a member of")
    def get(self, request: Request, course_id: str) -> Response:
        course, role = get_course_for(request.user, course_id)
        return Response(CourseSerializer(selectors.CourseRow(course, role)).data)

    @extend_schema(responses={204: None}, summary="Delete a course (site admins)")
    def delete(self, request: Request, course_id: str) -> Response:
        course, _ = get_course_for(request.user, course_id)
        services.delete_course(actor=request.user, course=course)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberListView(APIView):
    @extend_schema(responses=MemberSerializer(many=True), summary="The course's members")
    def get(self, request: Request, course_id: str) -> Response:
        course, _ = get_course_for(request.user, course_id, Action.VIEW_ROSTER)
        return Response(MemberSerializer(selectors.members_of(course), many=True).data)


class MemberDetailView(APIView):
    @extend_schema(
        request=MemberInputSerializer,
        responses={
            200: MemberSerializer,
            201: OpenApiResponse(MemberSerializer, description="Added"),
        },
        summary="Add a member or change their role",
    )
    def put(self, request: Request, course_id: str, username: str) -> Response:
        course, _ = get_course_for(request.user, course_id, Action.MANAGE_ROSTER)
        given = MemberInputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        existed = selectors.membership_of(course, username) is not None
        membership = services.add_member(
            course=course, username=username, actor=request.user, **given.validated_data
        )
        return Response(
            MemberSerializer(membership).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )

    @extend_schema(responses={204: None}, summary="Remove a member")
    def delete(self, request: Request, course_id: str, username: str) -> Response:
        course, _ = get_course_for(request.user, course_id, Action.MANAGE_ROSTER)
        services.remove_member(course=course, username=username, actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
