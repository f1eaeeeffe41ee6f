from django.urls import path

from payments import views, wallet

app_name = "payments"

urlpatterns = [
    path("notify/<slug:account_code>/", views.notify, name="notify"),
]

wallet_urlpatterns = [
    path("", wallet.wallet, name="wallet"),
    path("topups/<uuid:public_id>/", wallet.topup, name="topup"),
]
