"""API tokens in the admin: who has one, when it was last used, and revoking them.

Tokens are made with ``manage.py create_api_token`` (the token is shown once, there), not
here: the admin only ever sees their hashes.
"""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .models import ApiToken
from .tokens import revoke_api_tokens


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["user", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    readonly_fields = [
        "user",
        "token_hash",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    ]
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # A token is revoked, not deleted: the row says who had one and when it stopped.
        return False

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        tokens = list(queryset.select_related("user"))
        count = 0
        for user in {token.user_id: token.user for token in tokens}.values():
            mine = [token.pk for token in tokens if token.user_id == user.pk]
            count += revoke_api_tokens(user=user, actor=request.user, token_ids=mine)
        self.message_user(request, _("Revoked %(count)d token(s).") % {"count": count})
