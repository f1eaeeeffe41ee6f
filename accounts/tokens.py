"""API token policy: one token per user, replaced when it expires, gone when the password
changes (docs/security.md)."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework.authtoken.models import Token


def token_expired(token: Token) -> bool:
    ttl = settings.API_TOKEN_TTL
    return ttl > 0 and token.created + timedelta(seconds=ttl) <= timezone.now()


def token_issue(*, user) -> Token:
    """The user's current token, or a new one if they have none or theirs has expired."""
    token = Token.objects.filter(user=user).first()
    if token is not None and token_expired(token):
        token.delete()
        token = None
    return token or Token.objects.create(user=user)


def tokens_revoke(*, user) -> int:
    """Drop the user's API tokens (a password change): a stolen token dies with the old
    password."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted
