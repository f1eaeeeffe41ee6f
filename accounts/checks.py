"""Deployment checks for the protections in docs/security.md."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def throttles_share_a_cache(app_configs, **kwargs):
    """Rates counted in a per-process cache do not hold under several web processes."""
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if backend.endswith(("LocMemCache", "DummyCache")):
        return [
            Warning(
                "The default cache is local to each process: throttles (THROTTLE_RATES) are "
                "counted per web process, not for the whole site.",
                hint="Set CACHE_URL to a shared cache, e.g. redis://127.0.0.1:6379/1.",
                id="accounts.W001",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def staff_second_factor_required(app_configs, **kwargs):
    """Admin holds money movements: in production a password alone should not open it."""
    if not settings.STAFF_TOTP_REQUIRED:
        return [
            Warning(
                "Staff may enter admin with a password alone (STAFF_TOTP_REQUIRED is off): "
                "only staff who enrolled an authenticator are asked for its code.",
                hint="Set STAFF_TOTP_REQUIRED=true once staff have enrolled (docs/risk.md).",
                id="accounts.W002",
            )
        ]
    return []
