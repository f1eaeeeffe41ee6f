"""The staff dashboard on the admin index (``{% staff_dashboard as board %}``)."""

from django import template

from backoffice.dashboard import WINDOWS, staff_dashboard

register = template.Library()


@register.simple_tag
def staff_dashboard_for(user):
    """The dashboard for staff; nothing for anyone else (the index also lists apps)."""
    if not (user.is_active and user.is_staff):
        return None
    return staff_dashboard()


@register.simple_tag
def dashboard_windows():
    return WINDOWS


@register.simple_tag
def chart_spec(days, *series, unit="", height=180):
    """A chart spec for backoffice-charts.js from label/values pairs."""
    pairs = list(zip(series[::2], series[1::2], strict=True))
    from django.utils.translation import gettext as _

    return {
        "days": days,
        "height": height,
        "xLabel": _("date"),
        "series": [
            {"label": str(label), "values": values, "unit": unit} for label, values in pairs
        ],
    }


@register.simple_tag
def export_links(cl, request):
    """CSV and XLSX links for the list as filtered now, for those who may export it."""
    from django.urls import reverse
    from django.utils.translation import gettext as _

    from backoffice.exports import EXPORTS

    label = cl.opts.label_lower
    if label not in EXPORTS or not request.user.has_perm("backoffice.export_data"):
        return []
    query = request.GET.urlencode()
    links = []
    for fmt, text in (("csv", _("Export CSV")), ("xlsx", _("Export XLSX"))):
        url = reverse("backoffice-export", kwargs={"label": label, "fmt": fmt})
        links.append({"fmt": fmt, "label": text, "url": f"{url}?{query}" if query else url})
    return links
