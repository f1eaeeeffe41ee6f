"""Shop routes of REST API v1 (included at /api/v1/)."""

from django.urls import path

from marketplace import api, api_paypal

urlpatterns = [
    path("brands/", api.BrandList.as_view(), name="api-brands"),
    path("listings/", api.ListingListCreate.as_view(), name="api-listings"),
    path("orders/", api.OrderListCreate.as_view(), name="api-orders"),
    path("orders/<str:number>/", api.OrderDetail.as_view(), name="api-order"),
    path("orders/<str:number>/pay/", api.OrderPay.as_view(), name="api-order-pay"),
    path("orders/<str:number>/cancel/", api.OrderCancel.as_view(), name="api-order-cancel"),
    path(
        "orders/<str:number>/paypal/order/",
        api_paypal.OrderPayPalOrder.as_view(),
        name="api-order-paypal-order",
    ),
    path(
        "orders/<str:number>/paypal/capture/",
        api_paypal.OrderPayPalCapture.as_view(),
        name="api-order-paypal-capture",
    ),
    path(
        "orders/<str:number>/paypal/cancel/",
        api_paypal.OrderPayPalCancel.as_view(),
        name="api-order-paypal-cancel",
    ),
]
