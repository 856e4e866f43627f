"""``GET me``: who the caller is and their courses."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from courses import selectors

from ..openapi import extend_schema
from ..serializers import MeSerializer


class MeView(APIView):
    @extend_schema(responses=MeSerializer, summary="Who I am and my courses")
    def get(self, request: Request) -> Response:
        # The courses the caller is a member of (a site admin's others are not theirs).
        courses = [row for row in selectors.my_courses(request.user) if not row.as_admin]
        data = {
            "username": request.user.get_username(),
            "is_staff": request.user.is_staff,
            "courses": courses,
        }
        return Response(MeSerializer(data).data)
