"""Deployment check: the simulators approve payments for anyone who asks, so a production
site (DEBUG off) with them mounted is almost always a mistake — load tests excepted."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

W001 = Warning(
    "PAYMENTS_SANDBOX is on with DEBUG off: /sandbox/ is mounted and its cashier approves "
    "payments without a log-in.",
    hint="Unset PAYMENTS_SANDBOX (it defaults to DEBUG) unless this is a load test.",
    id="sandbox.W001",
)


@register(Tags.security, deploy=True)
def sandbox_off_in_production(app_configs, **kwargs):
    return [W001] if settings.PAYMENTS_SANDBOX and not settings.DEBUG else []
