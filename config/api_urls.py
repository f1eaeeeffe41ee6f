"""REST API v1: each app contributes its routes."""

from django.urls import include, path
from rest_framework.authtoken.views import obtain_auth_token

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("", include("payments.api_urls")),
    path("", include("marketplace.api_urls")),
]
