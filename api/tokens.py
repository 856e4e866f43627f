"""Making, checking and revoking standalone API tokens.

A token is ``nbx_`` followed by 43 random URL-safe characters. The prefix lets the
JupyterHub authentication recognise our own tokens and never send them to the hub.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from .models import ApiToken

TOKEN_PREFIX = "nbx_"
# Writing last_used_at on every request would make each read a write; once a minute is enough.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def hash_token(token: str) -> str:
    """The SHA-256 of a token, as stored and as used for cache keys."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def is_api_token(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX)


def create_api_token(*, user: AbstractBaseUser) -> str:
    """A new token for the user; only its hash is kept, so this is the one time it is seen."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, token_hash=hash_token(token))
    return token


@transaction.atomic
def revoke_api_tokens(
    *,
    user: AbstractBaseUser,
    actor: AbstractBaseUser | None = None,
    token_ids: Iterable[int] | None = None,
) -> int:
    """Revoke the user's live tokens (all, or those of ``token_ids``); returns how many were
    revoked. A revocation is audited; ``actor=None`` is the operator at the command line."""
    from courses.models import AuditEvent
    from courses.services import record_event

    tokens = ApiToken.objects.filter(user=user, revoked_at__isnull=True)
    if token_ids is not None:
        tokens = tokens.filter(pk__in=list(token_ids))
    count = tokens.update(revoked_at=timezone.now())
    if count:
        record_event(
            action=AuditEvent.Action.TOKENS_REVOKED, actor=actor, student=user, tokens=count
        )
    return count


def user_for_api_token(token: str) -> AbstractBaseUser | None:
    """The active user a live token belongs to, or None."""
    api_token = (
        ApiToken.objects.select_related("user")
        .filter(token_hash=hash_token(token), revoked_at__isnull=True)
        .first()
    )
    if api_token is None or not api_token.user.is_active:
        return None
    now = timezone.now()
    if api_token.last_used_at is None or now - api_token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=now)
    return api_token.user
