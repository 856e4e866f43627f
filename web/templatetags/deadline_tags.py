"""Template tags of the deadline policy: ``{% assignment_manage %}``, the forms that act on an
assignment, for its page; ``{% own_dates assignment %}``, a student's own dates.

The forms follow the role table: instructors get them, graders see the extensions without
forms, students neither."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils import timezone

from courses import deadlines, selectors, selectors_deadlines
from courses.permissions import Action, may
from web.timezones import local_input, viewer_zone

register = template.Library()


@register.inclusion_tag("web/assignment_manage.html", takes_context=True)
def assignment_manage(context: template.Context) -> dict[str, Any]:
    assignment = context["assignment"]
    role = context.get("role")
    shown: dict[str, Any] = {
        "course": assignment.course,
        "assignment": assignment,
        "csrf_token": context.get("csrf_token"),
        "may_manage": may(role, Action.MANAGE_DEADLINES),
        "may_release": may(role, Action.RELEASE),
        "may_view": may(role, Action.VIEW_EXTENSIONS),
        # The zone the date fields are shown and read in (the viewer's, see web/timezones.py).
        "zone": str(timezone.get_current_timezone()),
        "zone_from_browser": viewer_zone(context["request"]) is not None,
        "due_input": local_input(assignment.due_date),
        "cutoff_input": local_input(assignment.accept_until),
    }
    if shown["may_view"]:
        shown["extensions"] = [
            {
                "row": row,
                "due_input": local_input(row.due_date),
                "cutoff_input": local_input(row.accept_until),
            }
            for row in selectors_deadlines.extension_rows(assignment)
        ]
    if shown["may_manage"]:
        shown["students"] = selectors_deadlines.student_choices(assignment.course)
    shown["in_use"] = False
    if shown["may_release"] and assignment.is_released:
        figures = selectors.figures_of(assignment)
        shown["fetched"], shown["submitted"] = figures.fetched, figures.submitted
        shown["in_use"] = bool(figures.fetched or figures.submitted)
    return shown


@register.inclusion_tag("web/own_dates.html", takes_context=True)
def own_dates(context: template.Context, assignment: Any) -> dict[str, Any]:
    """A student's own due date and cutoff (their extension's where they have one)."""
    user = context["request"].user
    return {"dates": deadlines.dates_for(assignment=assignment, student=user)}


@register.inclusion_tag("web/course_release.html", takes_context=True)
def course_release(context: template.Context) -> dict[str, Any]:
    """The course page's form that releases a new assignment, for instructors."""
    return {
        "course": context["course"],
        "csrf_token": context.get("csrf_token"),
        "may_release": may(context.get("role"), Action.RELEASE),
    }
