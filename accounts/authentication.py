"""API token authentication with an optional lifetime (settings.API_TOKEN_TTL)."""

from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from accounts import tokens


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's ``Authorization: Token …``, refusing a token older than API_TOKEN_TTL."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if tokens.token_expired(token):
            token.delete()
            raise exceptions.AuthenticationFailed(
                _("Your API token has expired. Fetch a new one from /api/v1/auth/token/.")
            )
        return user, token
