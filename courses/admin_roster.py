"""The course's "Upload roster" page in the admin site: an nbgrader or Canvas CSV, a preview
of who would be added, updated and removed (a dry run: nothing changes), then Apply.

The same operation as ``manage.py import_roster`` (``roster.parse_roster`` and
``roster.import_roster``, with the signed-in person as the actor, so each change is in the
course's audit trail). The preview page carries the file's text in a hidden field, and Apply
parses and checks it again: what is applied is exactly what was previewed, or an error.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from . import roster
from .exceptions import ExchangeError
from .models import Course, Membership

# A roster of a few thousand people is well under this; larger is not a roster.
MAX_ROSTER_BYTES = 2 * 1024 * 1024
AUTO = "auto"


class RosterUploadForm(forms.Form):
    file = forms.FileField(label=_("Roster file (CSV)"), required=False)
    text = forms.CharField(widget=forms.HiddenInput, required=False)
    format = forms.ChoiceField(
        label=_("Format"),
        choices=[
            (AUTO, _("detect from the header")),
            (roster.NBGRADER, _("nbgrader (id, first_name, last_name, email)")),
            (roster.CANVAS, _("Canvas (Gradebook or SIS users export)")),
        ],
        initial=AUTO,
    )
    role = forms.ChoiceField(
        label=_("Role of everyone in the file"),
        choices=Membership.Role.choices,
        initial=Membership.Role.STUDENT,
    )
    sync = forms.BooleanField(
        label=_("Also remove the members with this role who are not in the file"),
        required=False,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            if upload.size > MAX_ROSTER_BYTES:
                raise forms.ValidationError(
                    gettext("The file is larger than %(size)d MB: that is not a roster.")
                    % {"size": MAX_ROSTER_BYTES // (1024 * 1024)}
                )
            raw = upload.read()
            try:
                data["text"] = raw.decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise forms.ValidationError(
                    gettext("The file is not UTF-8 text: save it as CSV UTF-8 and try again.")
                ) from exc
        if not data.get("text"):
            raise forms.ValidationError(gettext("Choose a roster file."))
        return data


class RosterUploadMixin:
    """Adds ``<course>/roster/`` to a ModelAdmin of Course."""

    def get_urls(self) -> list[URLPattern]:
        info = self.model._meta.app_label, self.model._meta.model_name  # type: ignore[attr-defined]
        own = [
            path(
                "<path:object_id>/roster/",
                self.admin_site.admin_view(self.roster_upload_view),  # type: ignore[attr-defined]
                name="{}_{}_roster".format(*info),
            )
        ]
        return own + super().get_urls()  # type: ignore[misc]

    def roster_upload_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        course = get_object_or_404(Course, pk=object_id)
        if not self.has_change_permission(request, course):  # type: ignore[attr-defined]
            raise PermissionDenied
        form = RosterUploadForm(request.POST or None, request.FILES or None)
        summary = None
        problems: list[tuple[int, str]] = []
        if request.method == "POST" and form.is_valid():
            apply = "apply" in request.POST
            data = form.cleaned_data
            try:
                rows = roster.parse_roster(
                    data["text"], format=None if data["format"] == AUTO else data["format"]
                )
                summary = roster.import_roster(
                    course=course,
                    rows=rows,
                    role=data["role"],
                    sync=data["sync"],
                    dry_run=not apply,
                    actor=request.user,
                )
            except roster.RosterError as exc:
                problems = exc.problems
                form.add_error(
                    None,
                    gettext("The roster has %(count)d bad row(s); nothing was changed.")
                    % {"count": len(problems)},
                )
            except ExchangeError as exc:
                form.add_error(None, exc.detail)
            else:
                if apply:
                    self.message_user(  # type: ignore[attr-defined]
                        request,
                        gettext("Roster of %(course)s imported: %(counts)s.")
                        % {"course": course.code, "counts": summary.counts()},
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(
                        reverse("admin:courses_course_change", args=[course.pk])
                    )
                # The preview's Apply sends the same text and options again.
                form = RosterUploadForm(
                    initial={
                        "text": data["text"],
                        "format": data["format"],
                        "role": data["role"],
                        "sync": data["sync"],
                    }
                )
        context = {
            **self.admin_site.each_context(request),  # type: ignore[attr-defined]
            "opts": self.model._meta,  # type: ignore[attr-defined]
            "original": course,
            "title": gettext("Upload roster for %(course)s") % {"course": course.code},
            "form": form,
            "summary": summary,
            "problems": problems,
        }
        return TemplateResponse(request, "admin/courses/course/roster_upload.html", context)
