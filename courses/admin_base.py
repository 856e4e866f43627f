"""What every admin page of the exchange shares: writes that go through the services, with
a refusal shown as a message; read-only pages for what only the exchange writes; a bundle's
files listed."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html_join

from . import selectors
from .exceptions import ExchangeError
from .models import Bundle


class ServiceAdmin(admin.ModelAdmin):
    """An admin whose writes call the services: a refused change (an ExchangeError, such as
    removing the last instructor) rolls back and shows its sentence, not a server error."""

    def _refused(self, request: HttpRequest, exc: ExchangeError, to: str) -> HttpResponse:
        self.message_user(request, exc.detail, messages.ERROR)
        return HttpResponseRedirect(to)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ExchangeError as exc:
            return self._refused(request, exc, request.get_full_path())

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except ExchangeError as exc:
            opts = self.model._meta
            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id])
            return self._refused(request, exc, change)

    def response_action(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        # One transaction for a whole action (a bulk delete): all of it or none of it.
        try:
            with transaction.atomic():
                return super().response_action(request, queryset)
        except ExchangeError as exc:
            return self._refused(request, exc, request.get_full_path())

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


class ReadOnlyAdmin(ServiceAdmin):
    """Records that only the exchange itself writes; site admins may delete them."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def bundle_files(bundle: Bundle | None) -> str:
    """A bundle's files with their sizes, one a line, for a read-only field."""
    if bundle is None:
        return "-"
    rows = [(entry.path, entry.blob.size) for entry in selectors.bundle_entries(bundle)]
    if not rows:
        return "-"
    return format_html_join("", "<div><code>{}</code> ({} bytes)</div>", rows)
