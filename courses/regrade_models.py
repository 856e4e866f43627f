"""The regrade request: a student asks for a second look at a returned submission (one with
feedback released), and a grader or an instructor answers it.

Kept beside ``models.py`` (which imports it, so Django registers it) because it is one
feature's table; the workflow lives in ``courses/regrades.py``.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# Plain text, long enough for a paragraph on each question, short enough to read at once.
MESSAGE_MAX_LENGTH = 2000


class RegradeRequest(models.Model):
    """One request on one submission; a submission has at most one open request."""

    class Status(models.TextChoices):
        OPEN = "open", _("open")
        ACCEPTED = "accepted", _("accepted")
        DECLINED = "declined", _("declined")
        WITHDRAWN = "withdrawn", _("withdrawn")

    submission = models.ForeignKey(
        "courses.Submission", on_delete=models.CASCADE, related_name="regrade_requests"
    )
    message = models.TextField(_("message"), max_length=MESSAGE_MAX_LENGTH)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.OPEN
    )
    created_at = models.DateTimeField(_("asked"), default=timezone.now)
    answer = models.TextField(_("answer"), max_length=MESSAGE_MAX_LENGTH, blank=True)
    answered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # When it was answered or withdrawn; empty while open.
    answered_at = models.DateTimeField(_("answered"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("regrade request")
        verbose_name_plural = _("regrade requests")
        constraints = [
            models.UniqueConstraint(
                fields=["submission"],
                condition=Q(status="open"),
                name="one_open_regrade_per_submission",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "accepted", "declined", "withdrawn"]),
                name="regrade_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(status="open", answered_at__isnull=True)
                | (~Q(status="open") & Q(answered_at__isnull=False)),
                name="regrade_closed_when_answered",
            ),
        ]
        indexes = [models.Index(fields=["status", "-created_at"])]

    def __str__(self) -> str:
        return f"regrade request {self.pk} on {self.submission_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN
