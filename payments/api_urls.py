from django.urls import path

from payments import api

urlpatterns = [
    path("orders/<str:number>/pay/", api.OrderPayView.as_view(), name="api-order-pay"),
]
