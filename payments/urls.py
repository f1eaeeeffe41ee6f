from django.urls import path

from payments import views, wallet, wechat_oauth

app_name = "payments"

urlpatterns = [
    path("notify/<slug:account_code>/", views.notify, name="notify"),
    path("wechat/oauth/", wechat_oauth.wechat_oauth_start, name="wechat_oauth_start"),
    path(
        "wechat/oauth/callback/", wechat_oauth.wechat_oauth_callback, name="wechat_oauth_callback"
    ),
]

wallet_urlpatterns = [
    path("", wallet.wallet, name="wallet"),
    path("topups/<uuid:public_id>/", wallet.topup, name="topup"),
]
