"""POST /api/v1/auth/token/: username + password → ``{"token": …}``, under the same lock-out
as the site's log-in (django-axes, through ``authenticate`` with the plain request)."""

from django.contrib.auth import authenticate
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import tokens
from accounts.lockout import lockout_response


class TokenRequest(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)


class ObtainToken(APIView):
    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]
    throttle_classes: list = []  # the log-in rate is applied in accounts.middleware

    @extend_schema(
        request=TokenRequest,
        responses={200: inline_serializer("Token", {"token": serializers.CharField()})},
    )
    def post(self, request):
        data = TokenRequest(data=request.data)
        data.is_valid(raise_exception=True)
        # axes flags the Django request it is given; hand it the plain one so the lock-out is
        # seen here and by its middleware alike.
        plain = request._request
        credentials = data.validated_data
        user = authenticate(
            plain, username=credentials["username"], password=credentials["password"]
        )
        if getattr(plain, "axes_locked_out", False):
            return lockout_response(plain)
        if user is None or not user.is_active:
            return Response(
                {"non_field_errors": [gettext("Unable to log in with provided credentials.")]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response({"token": tokens.token_issue(user=user).key})
