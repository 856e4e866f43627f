"""The Django admin for IT staff: rosters and due dates editable, submissions, feedback and
the audit trail read-only (but deletable). Every write made here (roster and due-date edits,
deletes) goes through the same services as everywhere else, so it is checked and audited,
and deleting frees storage through ``gc_blobs``; a change a service refuses is shown as an
error message on the page."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from . import deadlines, services
from .admin_base import ReadOnlyAdmin, ServiceAdmin, bundle_files
from .admin_roster import RosterUploadMixin
from .exceptions import ExchangeError
from .models import (
    Assignment,
    AuditEvent,
    Course,
    Extension,
    Feedback,
    Membership,
    Submission,
)

User = get_user_model()


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    raw_id_fields = ["user"]
    fields = ["user", "role", "first_name", "last_name", "email", "created_at"]
    readonly_fields = ["created_at"]


def _member_fields(membership: Membership) -> dict[str, str]:
    """What the admin's membership form says about the member, for ``add_member``."""
    return {
        "role": membership.role,
        "first_name": membership.first_name,
        "last_name": membership.last_name,
        "email": membership.email,
    }


class FolderNameMixin:
    """A name given here, new or changed, must be one folder name (``username_problem``):
    Django's own rule allows ``.`` and ``..``. An unchanged name is left alone, so an
    account made before the rule can still be edited."""

    def clean_username(self) -> str | None:
        clean = getattr(super(), "clean_username", None)
        username = clean() if clean is not None else self.cleaned_data.get("username")
        if username and username != self.initial.get("username"):
            problem = services.username_problem(username)
            if problem is not None:
                raise ValidationError(problem[0].upper() + problem[1:] + ".")
        return username


class ExchangeUserCreationForm(FolderNameMixin, AdminUserCreationForm):
    pass


class ExchangeUserChangeForm(FolderNameMixin, UserChangeForm):
    pass


class ExchangeUserAdmin(ServiceAdmin, UserAdmin):
    """Django's user pages, but a new or changed user name must be one folder name, and
    deleting an account goes through ``delete_user``: its submissions' files are left for
    ``gc_blobs`` and the deletion is audited."""

    add_form = ExchangeUserCreationForm
    form = ExchangeUserChangeForm

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.delete_user(actor=request.user, user=obj)


admin.site.unregister(User)
admin.site.register(User, ExchangeUserAdmin)


@admin.register(Course)
class CourseAdmin(RosterUploadMixin, ServiceAdmin):
    list_display = ["code", "title", "member_count", "assignment_count", "created_at"]
    search_fields = ["code", "title"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [MembershipInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Course]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                _members=Count("memberships", distinct=True),
                _assignments=Count("assignments", distinct=True),
            )
        )

    @admin.display(description=_("members"), ordering="_members")
    def member_count(self, course: Course) -> int:
        return course._members  # type: ignore[attr-defined]

    @admin.display(description=_("assignments"), ordering="_assignments")
    def assignment_count(self, course: Course) -> int:
        return course._assignments  # type: ignore[attr-defined]

    def get_readonly_fields(self, request: HttpRequest, obj: Course | None = None):  # type: ignore[no-untyped-def]
        # nbgrader knows a course by its id: renaming it would cut every student off.
        return ["code", *self.readonly_fields] if obj is not None else self.readonly_fields

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        if change:
            return super().save_model(request, obj, form, change)
        created = services.create_course(code=obj.code, title=obj.title, actor=request.user)
        obj.pk = created.pk
        return None

    def delete_model(self, request: HttpRequest, obj: Course) -> None:
        services.delete_course(actor=request.user, course=obj)

    def save_formset(self, request, form, formset, change):  # type: ignore[no-untyped-def]
        """Roster edits go through the roster services, so they are audited like any other."""
        if formset.model is not Membership:
            return super().save_formset(request, form, formset, change)
        course = form.instance
        formset.save(commit=False)
        for obj in formset.deleted_objects:
            services.remove_member(course=course, username=obj.user.username, actor=request.user)
        for membership in [
            *formset.new_objects,
            *(obj for obj, _fields in formset.changed_objects),
        ]:
            saved = services.add_member(
                course=course,
                username=membership.user.username,
                actor=request.user,
                **_member_fields(membership),
            )
            membership.pk = saved.pk
        return None


@admin.register(Membership)
class MembershipAdmin(ServiceAdmin):
    list_display = ["user", "course", "role", "first_name", "last_name", "created_at"]
    list_filter = ["role", "course"]
    search_fields = ["user__username", "first_name", "last_name", "email", "course__code"]
    fields = ["user", "course", "role", "first_name", "last_name", "email"]
    list_select_related = ["user", "course"]
    raw_id_fields = ["user", "course"]
    actions = ["make_student", "make_grader", "make_instructor", "remove_from_course"]

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        saved = services.add_member(
            course=obj.course, username=obj.user.username, actor=request.user, **_member_fields(obj)
        )
        obj.pk = saved.pk

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None):  # type: ignore[no-untyped-def]
        # Moving a membership to another user or course is a remove plus an add.
        return ["user", "course"] if obj is not None else []

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        services.remove_member(course=obj.course, username=obj.user.username, actor=request.user)

    def _set_role(self, request: HttpRequest, queryset: QuerySet[Membership], role: str) -> None:
        changed = 0
        for membership in queryset.select_related("course", "user"):
            try:
                services.add_member(
                    course=membership.course,
                    username=membership.user.username,
                    role=role,
                    actor=request.user,
                )
                changed += 1
            except ExchangeError as exc:
                self.message_user(request, exc.detail, messages.ERROR)
        self.message_user(
            request, _("%(n)d memberships set to %(role)s.") % {"n": changed, "role": role}
        )

    @admin.action(description=_("Make selected members students"))
    def make_student(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        self._set_role(request, queryset, Membership.Role.STUDENT)

    @admin.action(description=_("Make selected members graders"))
    def make_grader(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        self._set_role(request, queryset, Membership.Role.GRADER)

    @admin.action(description=_("Make selected members instructors"))
    def make_instructor(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        self._set_role(request, queryset, Membership.Role.INSTRUCTOR)

    @admin.action(description=_("Remove selected members from their course"))
    def remove_from_course(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        count = queryset.count()
        self.delete_queryset(request, queryset.select_related("course", "user"))
        self.message_user(request, _("%(n)d memberships removed.") % {"n": count})


class SubmissionInline(admin.TabularInline):
    model = Submission
    extra = 0
    fields = ["student", "timestamp"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Assignment)
class AssignmentAdmin(ServiceAdmin):
    list_display = [
        "code",
        "course",
        "is_released",
        "released_at",
        "released_by",
        "due_date",
        "accept_until",
    ]
    list_filter = ["course", ("released_at", admin.EmptyFieldListFilter)]
    search_fields = ["code", "course__code"]
    list_select_related = ["course", "released_by"]
    raw_id_fields = ["course"]
    fields = [
        "course",
        "code",
        "due_date",
        "accept_until",
        "released_at",
        "released_by",
        "release_files",
    ]
    readonly_fields = ["released_at", "released_by", "release_files"]

    def get_readonly_fields(self, request: HttpRequest, obj: Assignment | None = None):  # type: ignore[no-untyped-def]
        # Releases come from nbgrader through the exchange; here only the dates are edited.
        base = list(self.readonly_fields)
        return ["course", "code", *base] if obj is not None else base

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Assignments come from nbgrader's release through the exchange.
        return False

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        deadlines.set_deadlines(
            actor=request.user,
            assignment=obj,
            due_date=form.cleaned_data["due_date"],
            accept_until=form.cleaned_data["accept_until"],
        )

    def delete_model(self, request: HttpRequest, obj: Assignment) -> None:
        services.delete_assignment(actor=request.user, assignment=obj)

    @admin.display(boolean=True, description=_("released"))
    def is_released(self, assignment: Assignment) -> bool:
        return assignment.is_released

    @admin.display(description=_("released files"))
    def release_files(self, assignment: Assignment) -> str:
        return bundle_files(assignment.release)


@admin.register(Extension)
class ExtensionAdmin(ServiceAdmin):
    """Extensions are granted, changed and revoked through ``courses.deadlines`` (audited)."""

    list_display = ["assignment", "student", "due_date", "accept_until", "granted_by", "granted_at"]
    list_filter = ["assignment__course"]
    search_fields = ["student__username", "assignment__code", "assignment__course__code"]
    list_select_related = ["assignment__course", "student", "granted_by"]
    raw_id_fields = ["assignment", "student"]
    fields = ["assignment", "student", "due_date", "accept_until", "granted_by", "granted_at"]
    readonly_fields = ["granted_by", "granted_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Extension | None = None):  # type: ignore[no-untyped-def]
        base = list(self.readonly_fields)
        return ["assignment", "student", *base] if obj is not None else base

    def save_model(self, request, obj, form, change):  # type: ignore[no-untyped-def]
        extension, _ = deadlines.grant_extension(
            actor=request.user,
            assignment=obj.assignment,
            username=obj.student.get_username(),
            due_date=form.cleaned_data["due_date"],
            accept_until=form.cleaned_data["accept_until"],
        )
        obj.pk = extension.pk

    def delete_model(self, request: HttpRequest, obj: Extension) -> None:
        deadlines.revoke_extension(
            actor=request.user, assignment=obj.assignment, username=obj.student.get_username()
        )


@admin.register(Submission)
class SubmissionAdmin(ReadOnlyAdmin):
    list_display = ["assignment", "student", "timestamp", "late", "file_count", "total_size"]
    list_filter = ["assignment__course", "assignment__code"]
    search_fields = ["student__username", "assignment__code", "assignment__course__code"]
    list_select_related = ["assignment__course", "student", "bundle"]
    date_hierarchy = "timestamp"
    fields = ["assignment", "student", "timestamp", "late", "files"]
    readonly_fields = fields

    def delete_model(self, request: HttpRequest, obj: Submission) -> None:
        services.delete_submission(actor=request.user, submission=obj)

    @admin.display(boolean=True, description=_("late"))
    def late(self, submission: Submission) -> bool:
        return submission.is_late

    @admin.display(description=_("files"))
    def file_count(self, submission: Submission) -> int:
        return submission.bundle.file_count

    @admin.display(description=_("bytes"))
    def total_size(self, submission: Submission) -> int:
        return submission.bundle.total_size

    @admin.display(description=_("files"))
    def files(self, submission: Submission) -> str:
        return bundle_files(submission.bundle)


@admin.register(Feedback)
class FeedbackAdmin(ReadOnlyAdmin):
    list_display = ["submission", "released_by", "released_at"]
    list_filter = ["submission__assignment__course"]
    search_fields = ["submission__student__username", "submission__assignment__code"]
    list_select_related = ["submission__assignment__course", "submission__student", "released_by"]
    fields = ["submission", "released_by", "released_at", "files"]
    readonly_fields = fields

    def delete_model(self, request: HttpRequest, obj: Feedback) -> None:
        services.delete_feedback(actor=request.user, feedback=obj)

    @admin.display(description=_("files"))
    def files(self, feedback: Feedback) -> str:
        return bundle_files(feedback.bundle)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor_name", "action", "course_code", "assignment_code", "student_name"]
    list_filter = ["action", "course_code"]
    search_fields = ["actor_name", "course_code", "assignment_code", "student_name"]
    date_hierarchy = "at"
    readonly_fields = [
        "at",
        "action",
        "actor_name",
        "course_code",
        "assignment_code",
        "student_name",
        "submission",
        "detail",
    ]
    fields = readonly_fields

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
