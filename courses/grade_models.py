"""The scores that come with released feedback: one row per notebook, as nbgrader's gradebook
had it when the feedback was released.

Kept beside ``models.py`` (which imports it, so Django registers it) because it is one
feature's table; the operations live in ``courses/grades.py``.
"""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from .models import Feedback


class NotebookScore(models.Model):
    """One notebook's score as nbgrader's gradebook had it when its feedback was released
    (see ``courses/grades.py``); releasing the feedback again replaces them."""

    feedback = models.ForeignKey(Feedback, on_delete=models.CASCADE, related_name="scores")
    notebook = models.CharField(_("notebook"), max_length=255)
    score = models.FloatField(_("score"))
    max_score = models.FloatField(_("max score"))

    class Meta:
        ordering = ["feedback", "notebook"]
        verbose_name = _("notebook score")
        verbose_name_plural = _("notebook scores")
        constraints = [
            models.UniqueConstraint(fields=["feedback", "notebook"], name="one_score_per_notebook"),
            models.CheckConstraint(
                condition=Q(score__gte=0) & Q(score__lte=F("max_score")), name="score_in_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.notebook}: {self.score:g}/{self.max_score:g}"
