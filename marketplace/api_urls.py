"""Shop routes of REST API v1 (included at /api/v1/)."""

from django.urls import path

from marketplace import api

urlpatterns = [
    path("brands/", api.BrandList.as_view(), name="api-brands"),
    path("listings/", api.ListingListCreate.as_view(), name="api-listings"),
    path("orders/", api.OrderListCreate.as_view(), name="api-orders"),
    path("orders/<str:number>/", api.OrderDetail.as_view(), name="api-order"),
    path("orders/<str:number>/pay/", api.OrderPay.as_view(), name="api-order-pay"),
    path("orders/<str:number>/cancel/", api.OrderCancel.as_view(), name="api-order-cancel"),
]
