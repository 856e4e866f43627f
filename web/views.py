"""The web pages. Thin: each view finds what it shows through the access helpers of
``courses.permissions`` (a non-member gets 404, exactly as for something that does not exist),
reads through ``courses.selectors``, writes through ``courses.services``, and renders a
template."""

from __future__ import annotations

import functools
import posixpath
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from courses import blobstore, grades, selectors, services
from courses.exceptions import NotFound, PermissionDenied
from courses.models import BundleEntry, Submission
from courses.permissions import (
    Action,
    get_assignment_for,
    get_course_for,
    get_submission_for,
    may,
)
from courses.zips import iter_zip_members

from . import previews, rendering

AUDIT_PAGE_SIZE = 50
STATUS_FILTERS = ("all", "submitted", "missing", "late", "on_time", "feedback", "no_feedback")


def page_view(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """A page for signed-in people, where the domain's NotFound is a 404 page and its
    PermissionDenied a 403 page."""

    @login_required
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return view(request, *args, **kwargs)
        except NotFound as exc:
            raise Http404(exc.detail) from exc
        except PermissionDenied as exc:
            raise DjangoPermissionDenied(exc.detail) from exc

    return wrapper


# --- signing in and out -----------------------------------------------------------------


class ExchangeLoginView(LoginView):
    """Django's own login form; with JupyterHub configured, straight to the hub instead."""

    template_name = "web/login.html"
    redirect_authenticated_user = True

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if settings.EXCHANGE_HUB_LOGIN and not request.user.is_authenticated:
            begin = reverse("social:begin", args=["jupyterhub"])
            next_url = self.get_redirect_url()
            if next_url:
                begin += "?" + urlencode({"next": next_url}, safe="/")
            return HttpResponseRedirect(begin)
        return super().dispatch(request, *args, **kwargs)


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("web:logged-out")


@require_GET
def logged_out(request: HttpRequest) -> HttpResponse:
    return render(request, "web/logged_out.html")


@require_GET
def login_failed(request: HttpRequest) -> HttpResponse:
    return render(request, "web/login_failed.html", status=403)


def admin_login(request: HttpRequest) -> HttpResponse:
    """The admin site signs in like every page (through the hub when there is one).

    Someone already signed in who may not use the admin site gets a 403 page saying why:
    sending them to the login page would send them straight back to /admin/, which sends
    them here again, without end."""
    next_url = request.GET.get("next", "")
    if not next_url or not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}
    ):
        next_url = reverse("admin:index")
    if request.user.is_authenticated:
        if admin.site.has_permission(request):
            return redirect(next_url)
        return render(request, "web/admin_denied.html", status=403)
    return redirect(reverse("web:login") + "?" + urlencode({"next": next_url}, safe="/"))


# --- pages ------------------------------------------------------------------------------


@require_GET
@page_view
def home(request: HttpRequest) -> HttpResponse:
    """My courses, with my role in each."""
    return render(request, "web/home.html", {"rows": selectors.my_courses(request.user)})


@require_GET
@page_view
def course_page(request: HttpRequest, course_code: str) -> HttpResponse:
    course, role = get_course_for(request.user, course_code)
    assignments = list(selectors.assignments_for(course, role))
    if not may(role, Action.VIEW_ALL_SUBMISSIONS):
        return _student_course_page(request, course, role, assignments)
    context = {
        "course": course,
        "role": role,
        "roster": selectors.roster_counts(course),
        "rows": selectors.assignment_rows(assignments, role=role, user=request.user),
        "may_view_audit": may(role, Action.VIEW_AUDIT),
    }
    return render(request, "web/course.html", context)


def _student_course_page(
    request: HttpRequest, course: Any, role: str, assignments: list[Any]
) -> HttpResponse:
    """A student's view of a course: their own submissions, newest first, with feedback."""
    rows = selectors.my_submissions_in(course, request.user, assignments)
    return render(
        request, "web/student_course.html", {"course": course, "role": role, "rows": rows}
    )


def _filtered(rows: list[selectors.StudentRow], status: str, query: str) -> list[Any]:
    tests: dict[str, Callable[[selectors.StudentRow], bool]] = {
        "all": lambda r: True,
        "submitted": lambda r: r.latest is not None,
        "missing": lambda r: r.latest is None,
        "late": lambda r: r.is_late,
        "on_time": lambda r: r.latest is not None and not r.is_late,
        "feedback": lambda r: r.latest_has_feedback,
        "no_feedback": lambda r: r.latest is not None and not r.latest_has_feedback,
    }
    query = query.strip().lower()
    return [
        r
        for r in rows
        if tests[status](r)
        and (not query or query in r.username.lower() or query in r.full_name.lower())
    ]


@require_GET
@page_view
def assignment_page(request: HttpRequest, course_code: str, assignment_code: str) -> HttpResponse:
    assignment, role = get_assignment_for(request.user, course_code, assignment_code)
    if not may(role, Action.VIEW_ALL_SUBMISSIONS):
        submissions = list(selectors.submissions_of(request.user, assignment).reverse())
        return render(
            request,
            "web/student_assignment.html",
            {"course": assignment.course, "assignment": assignment, "submissions": submissions},
        )
    status = request.GET.get("status", "all")
    if status not in STATUS_FILTERS:
        status = "all"
    query = request.GET.get("q", "")
    all_rows = selectors.student_rows(assignment)
    context = {
        "course": assignment.course,
        "assignment": assignment,
        "role": role,
        "rows": _filtered(all_rows, status, query),
        "total": len(all_rows),
        "status": status,
        "query": query,
        "filters": [
            ("all", _("everyone")),
            ("submitted", _("submitted")),
            ("missing", _("not submitted")),
            ("late", _("late")),
            ("on_time", _("on time")),
            ("feedback", _("feedback released")),
            ("no_feedback", _("awaiting feedback")),
        ],
        "may_collect": may(role, Action.COLLECT),
        "scores": grades.student_scores(assignment),
    }
    return render(request, "web/assignment.html", context)


@require_GET
@page_view
def download_latest(request: HttpRequest, course_code: str, assignment_code: str) -> HttpResponse:
    """Every student's latest submission as one zip, ``<student>/<path>``; recorded as a
    collection."""
    assignment, _role = get_assignment_for(
        request.user, course_code, assignment_code, Action.COLLECT
    )
    submissions = services.collect_submissions(
        actor=request.user, assignment=assignment, latest_only=True
    )
    members = [
        (posixpath.join(row.submission.student.get_username(), entry.path), entry)
        for row in selectors.with_files(submissions)
        for entry in row.files
    ]
    name = f"{assignment.course.code}-{assignment.code}-latest.zip"
    return _zip_response(iter_zip_members(members), name)


def _zip_response(chunks: Any, name: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type="application/zip")
    response["Content-Disposition"] = _attachment(name)
    return response


def _attachment(name: str) -> str:
    """Django's header: quotes escaped, names outside Latin-1 as RFC 5987 ``filename*``."""
    return content_disposition_header(as_attachment=True, filename=name) or "attachment"


@require_GET
@page_view
def submission_page(request: HttpRequest, submission_id: int) -> HttpResponse:
    submission, role = get_submission_for(request.user, submission_id)
    feedback = getattr(submission, "feedback", None)
    files = _file_rows(selectors.bundle_entries(submission.bundle))
    feedback_files = _file_rows(selectors.bundle_entries(feedback.bundle)) if feedback else []
    context = {
        "submission": submission,
        "assignment": submission.assignment,
        "course": submission.assignment.course,
        "role": role,
        "is_staff_view": may(role, Action.VIEW_ALL_SUBMISSIONS),
        "files": files,
        "feedback": feedback,
        "feedback_files": feedback_files,
        "score": grades.feedback_total(feedback) if feedback else None,
        "preview_limit": settings.EXCHANGE_RENDER_MAX_SIZE,
        # While a notebook's preview is being made, the page refreshes (the sandboxed frame
        # cannot refresh itself).
        "refresh_seconds": previews.REFRESH_SECONDS
        if any(f["preview"] and f["preview"].pending for f in files + feedback_files)
        else None,
        "count": selectors.submission_count(submission.assignment, submission.student),
    }
    return render(request, "web/submission.html", context)


def _file_rows(entries: Any) -> list[dict[str, Any]]:
    """Each file with the state of its preview (a notebook's is started if missing)."""
    return [
        {
            "path": e.path,
            "size": e.blob.size,
            "preview": previews.preview(e) if rendering.renderable(e.path) else None,
        }
        for e in entries
    ]


def _entry(submission: Submission, which: str, path: str) -> BundleEntry:
    if which not in ("submission", "feedback"):
        raise NotFound(_("There is no such file."))
    if which == "feedback":
        feedback = getattr(submission, "feedback", None)
        if feedback is None:
            raise NotFound(_("This submission has no feedback yet."))
        bundle = feedback.bundle
    else:
        bundle = submission.bundle
    entry = selectors.bundle_entry(bundle, path)
    if entry is None:
        raise NotFound(_("There is no such file."))
    return entry


@require_GET
@page_view
def submission_file(
    request: HttpRequest, submission_id: int, which: str, path: str
) -> HttpResponse:
    """One file of a submission or of its feedback, downloaded as it is."""
    submission, _role = get_submission_for(request.user, submission_id)
    entry = _entry(submission, which, path)
    response = StreamingHttpResponse(
        blobstore.iter_blob(entry.blob_id), content_type="application/octet-stream"
    )
    response["Content-Length"] = str(entry.blob.size)
    response["Content-Disposition"] = _attachment(posixpath.basename(path))
    return response


@require_GET
@xframe_options_sameorigin
@page_view
def submission_file_view(
    request: HttpRequest, submission_id: int, which: str, path: str
) -> HttpResponseBase:
    """One file shown read-only, sandboxed, for the page's iframe; a notebook's preview comes
    from the render worker (never made here), or a sentence says why it is not there yet."""
    submission, _role = get_submission_for(request.user, submission_id)
    entry = _entry(submission, which, path)
    return previews.response_for(entry)


@require_GET
@page_view
def submission_zip(request: HttpRequest, submission_id: int) -> HttpResponse:
    submission, _role = get_submission_for(request.user, submission_id)
    entries = selectors.bundle_entries(submission.bundle)
    stamp = submission.timestamp.strftime("%Y%m%d-%H%M%S")
    name = f"{submission.assignment.code}-{submission.student.get_username()}-{stamp}.zip"
    return _zip_response(iter_zip_members([(e.path, e) for e in entries]), name)


@require_http_methods(["GET"])
@page_view
def audit_page(request: HttpRequest, course_code: str) -> HttpResponse:
    course, role = get_course_for(request.user, course_code, Action.VIEW_AUDIT)
    paginator = Paginator(selectors.audit_events(course), AUDIT_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    return render(request, "web/audit.html", {"course": course, "role": role, "page": page})
