"""Regrade requests on the wire: what a student sends to ask, what a grader sends to answer,
and how a request is rendered. Shape only: the rules are in ``courses/regrades.py``."""

from __future__ import annotations

from rest_framework import serializers

from courses.regrade_models import MESSAGE_MAX_LENGTH, RegradeRequest
from courses.regrade_selectors import FILTERS

from .fields import TimestampField

Status = RegradeRequest.Status


class RegradeAskSerializer(serializers.Serializer):
    # Blank and surrounding space reach the service, which answers with its own sentence.
    message = serializers.CharField(
        max_length=MESSAGE_MAX_LENGTH,
        allow_blank=True,
        trim_whitespace=False,
        help_text="Plain text: what should be looked at again, and why.",
    )


class RegradeAnswerSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=[Status.ACCEPTED, Status.DECLINED])
    answer = serializers.CharField(
        max_length=MESSAGE_MAX_LENGTH,
        allow_blank=True,
        trim_whitespace=False,
        help_text="Plain text for the student: what changed, or why nothing did.",
    )


class RegradeQuerySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=FILTERS, required=False, default="all")


class RegradeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    course_id = serializers.CharField(source="submission.assignment.course.code")
    assignment_id = serializers.CharField(source="submission.assignment.code")
    submission_id = serializers.IntegerField()
    student = serializers.CharField(source="submission.student.username")
    timestamp = TimestampField(source="submission.timestamp", help_text="The submission's.")
    message = serializers.CharField()
    created_at = TimestampField()
    status = serializers.ChoiceField(choices=Status.choices)
    answer = serializers.CharField(help_text="Empty until answered.")
    answered_by = serializers.CharField(
        source="answered_by.username", allow_null=True, default=None
    )
    answered_at = TimestampField(help_text="When it was answered or withdrawn; null while open.")
