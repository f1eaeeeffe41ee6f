from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import staff_otp
from backoffice import views as backoffice_views
from config import metrics, views
from payments import urls as payments_urls

# A database that is away answers 503 with Retry-After, not a bare 500 (config/errors.py).
handler500 = "config.errors.server_error"

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path(
        "admin/export/<str:label>.<str:fmt>",
        admin.site.admin_view(backoffice_views.export_list),
        name="backoffice-export",
    ),
    # Browsers ask for /favicon.ico whatever the page says.
    path("favicon.ico", views.favicon),
    path("admin/otp/verify/", staff_otp.verify, name="staff-otp-verify"),
    path("admin/otp/enroll/", staff_otp.enroll, name="staff-otp-enroll"),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("accounts/", include("accounts.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("config.api_urls")),
    path("payments/", include("payments.urls")),
    path("wallet/", include((payments_urls.wallet_urlpatterns, "payments"), namespace="wallet")),
    path("risk/", include("risk.urls")),
    path("", include("marketplace.urls")),
]

# Simulators served apart (SANDBOX_URL, `make serve`) are mounted in their own process only.
if settings.PAYMENTS_SANDBOX and not settings.SANDBOX_URL:
    urlpatterns.insert(0, path("sandbox/", include("payments.sandbox.urls")))
    urlpatterns.insert(0, path("sandbox/sms/", include("risk.sms_sandbox")))
