"""Bearer tokens: generating them, and finding the ApiToken row a raw token belongs to.

Tokens are 256 random bits, so one SHA-256 is enough to store them safely: a slow password hash
protects guessable secrets, and would cost every API request its time for nothing here.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from django.utils import timezone

if TYPE_CHECKING:
    from django_dataflow.models import ApiToken

#: Every raw token starts with this, so secret scanners and people can tell what it is.
TOKEN_PREFIX = "dft_"
#: Characters of the raw token kept in the clear (ApiToken.prefix) to tell tokens apart.
SHOWN = 12
#: last_used_at is written at most this often per token: not one UPDATE per request.
TOUCH_EVERY = timedelta(minutes=1)


def generate() -> str:
    """A new raw token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(raw: str) -> str:
    """The stored form of a raw token (hex SHA-256)."""
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def prefix(raw: str) -> str:
    """The part of a raw token shown in the admin and in listings."""
    return raw[:SHOWN]


class TokenRefused(Exception):
    """The token is unknown, revoked or expired (the message says which, never the token)."""


def authenticate(raw: str, *, using: str) -> ApiToken:
    """The active ApiToken of a raw token (its user loaded); TokenRefused otherwise."""
    from django_dataflow.models import ApiToken

    token = (
        ApiToken.objects.using(using).select_related("user").filter(key_hash=digest(raw)).first()
    )
    if token is None:
        raise TokenRefused("unknown API token")
    now = timezone.now()
    if token.revoked_at is not None:
        raise TokenRefused(f"API token {token.prefix}... was revoked")
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenRefused(f"API token {token.prefix}... expired")
    if not token.user.is_active:
        raise TokenRefused(f"the user of API token {token.prefix}... is inactive")
    if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
        ApiToken.objects.using(using).filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
