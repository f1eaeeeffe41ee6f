from django.urls import include, path

from marketplace import views

app_name = "marketplace"

urlpatterns = [
    path("", views.catalogue, name="catalogue"),
    path("listings/<int:listing_id>/", views.listing_detail, name="listing_detail"),
    path("orders/", views.my_orders, name="my_orders"),
    path("orders/<str:number>/cancel/", views.order_cancel, name="order_cancel"),
    path("orders/<str:number>/dispute/", views.order_dispute, name="order_dispute"),
    path(
        "disputes/<int:dispute_id>/evidence/<int:evidence_id>/",
        views.dispute_evidence,
        name="dispute_evidence",
    ),
    path("sell/", views.seller_dashboard, name="seller_dashboard"),
    path("sell/new/", views.listing_new, name="listing_new"),
    path("sell/net/", views.net_preview, name="net_preview"),
    path("sell/listings/<int:listing_id>/", views.seller_listing, name="seller_listing"),
    path(
        "sell/listings/<int:listing_id>/update/",
        views.seller_listing_update,
        name="seller_listing_update",
    ),
    path(
        "sell/listings/<int:listing_id>/codes/<int:code_id>/withdraw/",
        views.seller_code_withdraw,
        name="seller_code_withdraw",
    ),
    path(
        "sell/disputes/<int:dispute_id>/answer/",
        views.seller_dispute_answer,
        name="seller_dispute_answer",
    ),
    path("sell/payouts/destinations/", views.payout_destination_add, name="payout_destination_add"),
    path("sell/payouts/request/", views.payout_request, name="payout_request"),
    path("", include("marketplace.checkout_urls")),
]
