"""Inline SVG sparklines for the monitoring page: no JavaScript, readable without them (each
row also shows its numbers, and the SVG carries a text summary)."""

from decimal import Decimal

from django import template
from django.utils.html import format_html
from django.utils.translation import gettext as _

register = template.Library()

WIDTH, HEIGHT, PAD = 120, 28, 2
MIN_SPAN = Decimal("5")  # percentage points: a flat line near 99 % is not drawn as a cliff


@register.simple_tag
def sparkline(values, label=""):
    """A polyline of the rates (gaps where nothing happened), scaled to the row's own range."""
    known = [v for v in values if v is not None]
    summary = _("%(label)s: no data") % {"label": label}
    if not known:
        return format_html(
            '<svg class="sparkline" width="{}" height="{}" role="img" '
            'aria-label="{}"><title>{}</title></svg>',
            WIDTH,
            HEIGHT,
            summary,
            summary,
        )
    low, high = min(known), max(known)
    if high - low < MIN_SPAN:
        middle = (high + low) / 2
        low, high = max(Decimal(0), middle - MIN_SPAN / 2), middle + MIN_SPAN / 2
    step = (WIDTH - 2 * PAD) / max(len(values) - 1, 1)
    path, pen_down = [], False
    for i, value in enumerate(values):
        if value is None:
            pen_down = False
            continue
        x = PAD + i * step
        y = PAD + float((high - value) / (high - low)) * (HEIGHT - 2 * PAD)
        path.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
        if not pen_down:
            path.append("h0.01")  # a lone point still shows as a dot
        pen_down = True
    summary = _(
        "%(label)s: from %(first)s%% to %(last)s%%, lowest %(low)s%%, highest %(high)s%%"
    ) % {
        "label": label,
        "first": known[0],
        "last": known[-1],
        "low": min(known),
        "high": max(known),
    }
    return format_html(
        '<svg class="sparkline" width="{}" height="{}" viewBox="0 0 {} {}" role="img" '
        'aria-label="{}">'
        '<title>{}</title><path d="{}" fill="none" stroke="currentColor" stroke-width="2" '
        'stroke-linecap="round" stroke-linejoin="round"/></svg>',
        WIDTH,
        HEIGHT,
        WIDTH,
        HEIGHT,
        summary,
        summary,
        " ".join(path),
    )
