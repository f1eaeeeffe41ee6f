"""The buyer's order page: checkout, live status and delivered codes on one page."""

from django.urls import path

from marketplace import checkout

urlpatterns = [
    path("orders/<str:number>/", checkout.order_detail, name="order_detail"),
    path("orders/<str:number>/pay/", checkout.order_pay_view, name="order_pay"),
    path("orders/<str:number>/status/", checkout.order_status, name="order_status"),
    path("orders/<str:number>/challenge/", checkout.order_challenge, name="order_challenge"),
    path("orders/<str:number>/check/", checkout.order_check, name="order_check"),
]
