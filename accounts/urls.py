from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import throttles, views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    # Each reset sends an e-mail: rated per address so the form cannot bomb an inbox.
    path(
        "password_reset/",
        throttles.throttle(throttles.PASSWORD_RESET)(auth_views.PasswordResetView.as_view()),
        name="password_reset",
    ),
    path("settings/", views.account_settings, name="account_settings"),
    path("", include("django.contrib.auth.urls")),
]
