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
