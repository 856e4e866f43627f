"""Pages that act on an assignment: its due date and cutoff, per-student extensions, its
release (from files chosen on the page) and withdrawing it. Each form posts here with its
CSRF token; each write goes through the domain's services (``courses.deadlines``,
``courses.services``), which check the role table; a refusal is shown as the service's own
sentence with the service's status code, and nothing changes (a refused upload is noted in
the audit trail, as the API's is)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from courses import deadlines, selectors_deadlines, services
from courses.exceptions import BadArchive, BadRequest, Conflict, ExchangeError, NotFound, TooLarge
from courses.models import Assignment, Course
from courses.permissions import Action, get_assignment_for, get_course_for
from courses.upload_files import upload_of_files

from .timezones import parse_local
from .views import page_view

# What a form may be refused for, shown on the page; PermissionDenied stays a 403 page.
SHOWN = (BadRequest, BadArchive, Conflict, NotFound, TooLarge)


def _back(assignment: Assignment) -> str:
    return reverse("web:assignment", args=[assignment.course.code, assignment.code])


def _refused(request: HttpRequest, assignment: Assignment, exc: ExchangeError) -> HttpResponse:
    return _refused_release(request, assignment.course, assignment, exc)


def _dates(request: HttpRequest) -> tuple[object, object]:
    """The form's due date and cutoff, read in the zone the form names."""
    zone = request.POST.get("tz", "")
    due = parse_local(request.POST.get("due_date", ""), zone, _("due date"))
    cutoff = parse_local(request.POST.get("accept_until", ""), zone, _("cutoff"))
    return due, cutoff


@require_POST
@page_view
def edit_deadlines(request: HttpRequest, course_code: str, assignment_code: str) -> HttpResponse:
    """The assignment's due date and cutoff; an empty field clears it."""
    assignment, _role = get_assignment_for(
        request.user, course_code, assignment_code, Action.MANAGE_DEADLINES
    )
    try:
        due, cutoff = _dates(request)
        deadlines.set_deadlines(
            actor=request.user, assignment=assignment, due_date=due, accept_until=cutoff
        )
    except SHOWN as exc:
        return _refused(request, assignment, exc)
    messages.success(request, _("The due date and the cutoff are saved."))
    return redirect(_back(assignment))


@require_POST
@page_view
def grant_extension(request: HttpRequest, course_code: str, assignment_code: str) -> HttpResponse:
    """Grant a student an extension, or change theirs."""
    assignment, _role = get_assignment_for(
        request.user, course_code, assignment_code, Action.MANAGE_DEADLINES
    )
    username = request.POST.get("username", "").strip()
    try:
        due, cutoff = _dates(request)
        _extension, created = deadlines.grant_extension(
            actor=request.user,
            assignment=assignment,
            username=username,
            due_date=due,
            accept_until=cutoff,
        )
    except SHOWN as exc:
        return _refused(request, assignment, exc)
    if created:
        messages.success(request, _("%(student)s has an extension.") % {"student": username})
    else:
        messages.success(
            request, _("The extension of %(student)s is saved.") % {"student": username}
        )
    return redirect(_back(assignment))


@require_POST
@page_view
def revoke_extension(
    request: HttpRequest, course_code: str, assignment_code: str, username: str
) -> HttpResponse:
    """Withdraw a student's extension."""
    assignment, _role = get_assignment_for(
        request.user, course_code, assignment_code, Action.MANAGE_DEADLINES
    )
    try:
        deadlines.revoke_extension(actor=request.user, assignment=assignment, username=username)
    except SHOWN as exc:
        return _refused(request, assignment, exc)
    messages.success(request, _("The extension of %(student)s is revoked.") % {"student": username})
    return redirect(_back(assignment))


@require_POST
@page_view
def unrelease(request: HttpRequest, course_code: str, assignment_code: str) -> HttpResponse:
    """Withdraw the release; refused while students fetched or submitted it, unless the
    instructor ticks the box that says they mean it."""
    assignment, _role = get_assignment_for(
        request.user, course_code, assignment_code, Action.RELEASE
    )
    try:
        services.unrelease_assignment(
            actor=request.user, assignment=assignment, force=request.POST.get("force") == "on"
        )
    except SHOWN as exc:
        return _refused(request, assignment, exc)
    messages.success(request, _("The assignment is no longer released."))
    return redirect(_back(assignment))


@require_POST
@page_view
def release(request: HttpRequest, course_code: str) -> HttpResponse:
    """Release (or release again) an assignment from files chosen on the page; releasing
    over an assignment that students fetched or submitted needs the box ticked, as ``force``
    does in the API."""
    course, _role = get_course_for(request.user, course_code, Action.RELEASE)
    code = request.POST.get("code", "").strip()
    files = request.FILES.getlist("files")
    existing = selectors_deadlines.assignment_named(course, code)
    try:
        if not files:
            raise BadRequest(_("Choose the assignment's files."))
        assignment = services.release_assignment(
            actor=request.user,
            course=course,
            code=code,
            upload=upload_of_files((f.name, f) for f in files),
            force=request.POST.get("force") == "on",
        )
    except SHOWN as exc:
        return _refused_release(request, course, existing, exc)
    messages.success(
        request,
        _("%(assignment)s is released with %(count)d file(s).")
        % {"assignment": assignment.code, "count": len(files)},
    )
    return redirect(_back(assignment))


def _refused_release(
    request: HttpRequest, course: Course, existing: Assignment | None, exc: ExchangeError
) -> HttpResponse:
    back = _back(existing) if existing else reverse("web:course", args=[course.code])
    return render(
        request,
        "web/manage_refused.html",
        {
            "course": course,
            "assignment": existing,
            "detail": exc.detail,
            "back": back,
            # The API's "force" is a box on the page.
            "in_use": exc.code == "in_use",
        },
        status=exc.status_code,
    )
