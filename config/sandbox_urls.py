"""URLs of the simulators' own process under `make serve` (PAYMENTS_SANDBOX=true): the
providers' endpoints and pages, and the health check — nothing of the shop, as a real
provider's site has nothing of it (settings gives this process the middleware that suits)."""

from django.urls import include, path

from config import views

urlpatterns = [
    path("sandbox/sms/", include("risk.sms_sandbox")),
    path("sandbox/", include("payments.sandbox.urls")),
    path("healthz", views.healthz, name="healthz"),
]

handler400 = "config.errors.provider_bad_request"
handler403 = "config.errors.provider_forbidden"
handler404 = "config.errors.provider_not_found"
handler500 = "config.errors.provider_server_error"
