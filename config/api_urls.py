"""REST API v1: each app contributes its routes."""

from django.urls import include, path

from accounts.api import ObtainToken

urlpatterns = [
    path("auth/token/", ObtainToken.as_view(), name="api-token"),
    path("", include("payments.api_urls")),
    path("", include("marketplace.api_urls")),
]
