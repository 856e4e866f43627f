"""``{% load scores %}``: look a student's score up in the dict the assignment page gets."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def score_for(scores: dict[str, Any], username: str) -> Any:
    """The student's ``grades.StudentScore``, or None when they have no score."""
    return scores.get(username)


@register.filter
def points(value: float) -> str:
    """A score as people write it: ``7.5``, ``10``, never ``10.0`` or ``1e+01``."""
    return f"{value:.2f}".rstrip("0").rstrip(".")
