"""Payment-platform API routes (the order pay call lives with orders in marketplace)."""

from django.urls import path

from payments import api

urlpatterns = [
    path("payments/<uuid:public_id>/", api.PaymentDetail.as_view(), name="api-payment"),
    path(
        "payments/<uuid:public_id>/challenge/",
        api.PaymentChallenge.as_view(),
        name="api-payment-challenge",
    ),
]
