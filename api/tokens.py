"""Making, checking and revoking standalone API tokens.

A token is ``nbx_`` followed by 43 random URL-safe characters. The prefix lets the
JupyterHub authentication recognise our own tokens and never send them to the hub.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable
from types import EllipsisType

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from courses.prepared import Prepared

from .models import ApiToken

TOKEN_PREFIX = "nbx_"
# A live token's user is cached under this prefix and the token's SHA-256, for
# EXCHANGE_API_TOKEN_CACHE_SECONDS: most API calls then need no query to authenticate.
CACHE_PREFIX = "api-token:"
# Writing last_used_at on every request would make each read a write; once a minute is enough.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def hash_token(token: str) -> str:
    """The SHA-256 of a token, as stored and as used for cache keys."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def is_api_token(token: str) -> bool:
    return token.startswith(TOKEN_PREFIX)


class InvalidToken(Exception):
    """An API token that is not accepted; ``str()`` says why, as one sentence."""


# Passed as ``expires_at`` for a token that never expires.
NEVER = None


def default_expiry() -> dt.datetime:
    return timezone.now() + dt.timedelta(days=settings.EXCHANGE_API_TOKEN_DAYS)


def create_api_token(
    *, user: AbstractBaseUser, expires_at: dt.datetime | None | EllipsisType = ...
) -> str:
    """A new token for the user; only its hash is kept, so this is the one time it is seen.

    ``expires_at`` defaults to EXCHANGE_API_TOKEN_DAYS from now; ``NEVER`` (None) makes a
    token that lives until it is revoked.
    """
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expiry = default_expiry() if expires_at is ... else expires_at
    ApiToken.objects.create(user=user, token_hash=hash_token(token), expires_at=expiry)
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
    hashes = list(tokens.values_list("token_hash", flat=True))
    count = tokens.update(revoked_at=timezone.now())
    # Shared caches (EXCHANGE_CACHE_URL) forget them at once; each process's own cache
    # within EXCHANGE_API_TOKEN_CACHE_SECONDS.
    cache.delete_many([CACHE_PREFIX + h for h in hashes])
    if count:
        record_event(
            action=AuditEvent.Action.TOKENS_REVOKED, actor=actor, student=user, tokens=count
        )
    return count


# A token not in the cache (each worker's first call with it, then one every
# EXCHANGE_API_TOKEN_CACHE_SECONDS): compiled once, as every request's other hot reads.
_TOKEN = Prepared(
    lambda token_hash: ApiToken.objects.select_related("user").filter(token_hash=token_hash)[:1],
    str,
)


def user_for_api_token(token: str) -> AbstractBaseUser:
    """The active user a live token belongs to; InvalidToken says why it is refused.

    A token found live is trusted for EXCHANGE_API_TOKEN_CACHE_SECONDS without asking the
    database again (never past its expiry): a revocation, or the account being disabled,
    takes effect within that time (at once with a shared cache, for revocations)."""
    key = CACHE_PREFIX + hash_token(token)
    seconds = settings.EXCHANGE_API_TOKEN_CACHE_SECONDS
    cached = cache.get(key) if seconds else None
    if cached is not None:
        user, expires_at = cached
        if expires_at is None or timezone.now() < expires_at:
            return user
    found = _TOKEN(hash_token(token))
    api_token = found[0] if found else None
    if api_token is None:
        raise InvalidToken("The token is not valid: the exchange does not know it.")
    if api_token.is_revoked:
        raise InvalidToken(
            "The token was revoked; ask the exchange's administrators for a new one."
        )
    now = timezone.now()
    if api_token.is_expired(now):
        assert api_token.expires_at is not None
        raise InvalidToken(
            f"The token expired on {api_token.expires_at:%Y-%m-%d %H:%M} UTC; ask the "
            "exchange's administrators for a new one (manage.py create_api_token)."
        )
    if not api_token.user.is_active:
        raise InvalidToken(f"The account {api_token.user} is disabled.")
    if api_token.last_used_at is None or now - api_token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=now)
    if seconds:
        trust = seconds
        if api_token.expires_at is not None:
            trust = min(seconds, max(1, int((api_token.expires_at - now).total_seconds())))
        cache.set(key, (api_token.user, api_token.expires_at), trust)
    return api_token.user
