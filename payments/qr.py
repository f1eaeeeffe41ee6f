"""QR codes for wallet payments, drawn on the server as inline SVG.

Inline SVG needs no image endpoint, no JavaScript and no ``data:`` URL, so it renders under
the site's content security policy and without scripts. The payload is what the channel
returned (WeChat Pay ``code_url``, Alipay ``qr_code``, an e-CNY deeplink …) and is never
altered: the wallet app decodes exactly that string.
"""

from __future__ import annotations

import segno
from django.utils.safestring import SafeString, mark_safe


def qr_svg(payload: str, *, title: str = "", scale: int = 4) -> SafeString:
    """The payload as an ``<svg>`` element sized by its viewBox (CSS decides the size).

    Error correction level M survives a phone camera at an angle on a glossy screen; the
    quiet zone (border) of 4 modules is what the QR standard requires for reliable scans.
    """
    if not payload:
        raise ValueError("a QR code needs a payload")
    code = segno.make(payload, error="m", micro=False)
    svg = code.svg_inline(
        scale=scale,
        border=4,
        omitsize=True,
        dark="#000",
        light="#fff",
        title=title or None,  # segno escapes it
        svgclass="qr-code",
        lineclass=None,
    )
    return mark_safe(svg.replace("<svg ", '<svg role="img" focusable="false" ', 1))  # noqa: S308 - segno escapes the title; the rest is its own markup
