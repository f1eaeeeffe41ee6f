"""The order page's PayPal buttons: the script that renders them, and the page's
Content-Security-Policy widened for exactly what PayPal's JS SDK loads (settings
PAYPAL_SDK_CSP), plus the simulator's origin when the sandbox runs apart (``SANDBOX_URL``)
and serves the stand-in SDK there."""

from urllib.parse import urlsplit

from django import template
from django.conf import settings
from django.templatetags.static import static
from django.utils.html import format_html

from config.middleware import csp_allow

register = template.Library()


def _sources() -> dict[str, list[str]]:
    sources = {name: list(values) for name, values in settings.PAYPAL_SDK_CSP.items()}
    if settings.PAYMENTS_SANDBOX and settings.SANDBOX_URL:
        parts = urlsplit(settings.SANDBOX_URL)
        origin = f"{parts.scheme}://{parts.netloc}"
        for directive in ("script-src", "connect-src"):
            sources.setdefault(directive, []).append(origin)
    return sources


@register.simple_tag(takes_context=True)
def paypal_buttons_script(context):
    """``<script>`` of static/js/paypal-buttons.js, carrying the response's CSP nonce, which
    it hands on to PayPal's SDK (``data-csp-nonce``). PayPal's approval window is a popup the
    SDK must keep talking to, hence ``same-origin-allow-popups`` on this page."""
    request = context.get("request")
    if request is None or not hasattr(request, "csp_nonce"):
        return ""
    csp_allow(request, _sources(), nonce=True, popups=True)
    return format_html(
        '<script src="{}" nonce="{}" data-csp-nonce="{}" defer></script>',
        static("js/paypal-buttons.js"),
        request.csp_nonce,
        request.csp_nonce,
    )
