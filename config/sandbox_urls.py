"""URLs of the simulators' own process under `make serve` (PAYMENTS_SANDBOX=true): the
providers' endpoints and pages first; the site's own URLs after them only so the shared base
template's links (log-in, language) resolve on the simulators' pages."""

from django.urls import include, path

from config import urls as site_urls

urlpatterns = [
    path("sandbox/sms/", include("risk.sms_sandbox")),
    path("sandbox/", include("payments.sandbox.urls")),
    *site_urls.urlpatterns,
]
