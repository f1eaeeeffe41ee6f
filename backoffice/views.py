"""Staff views of the back office that are not a model's admin page."""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts import audit
from backoffice.exports import EXPORTS, csv_stream, xlsx_file

RANGE_PARAMS = ("since", "until")


def _day(value: str, name: str) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Http404(
            _("%(name)s is not a date (YYYY-MM-DD): %(value)s") % {"name": name, "value": value}
        )


def export_list(request, label: str, fmt: str):
    """The admin list ``label`` (``app.model``) exactly as filtered on screen — same filters,
    search and ordering — as CSV or XLSX; ``since``/``until`` (dates, inclusive) narrow it to
    a date range. Finance only; each export is recorded in the audit trail."""
    export = EXPORTS.get(label)
    if export is None or fmt not in {"csv", "xlsx"}:
        raise Http404(_("Nothing to export here."))
    app_label, model_name = label.split(".")
    model_admin = next(
        (ma for model, ma in admin.site._registry.items() if model._meta.label_lower == label), None
    )
    if model_admin is None or not model_admin.has_view_permission(request):
        raise PermissionDenied
    if not request.user.has_perm("backoffice.export_data"):
        raise PermissionDenied
    params = request.GET.copy()
    since, until = (_day(params.pop(name, [""])[0], name) for name in RANGE_PARAMS)
    request.GET = params
    changelist = model_admin.get_changelist_instance(request)
    queryset = changelist.queryset
    tz = timezone.get_current_timezone()
    if since:
        queryset = queryset.filter(
            **{f"{export.date_field}__gte": dt.datetime.combine(since, dt.time.min, tzinfo=tz)}
        )
    if until:
        queryset = queryset.filter(
            **{
                f"{export.date_field}__lt": dt.datetime.combine(
                    until + dt.timedelta(days=1), dt.time.min, tzinfo=tz
                )
            }
        )
    audit.record(
        actor=request.user,
        event="export",
        model=model_admin.model,
        detail=f"{export.title} {fmt.upper()}",
        remote_addr=audit.client_ip(request),
        filters=request.META.get("QUERY_STRING", ""),
        rows=queryset.count(),
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    filename = f"{export.name}-{stamp}.{fmt}"
    if fmt == "csv":
        response = StreamingHttpResponse(
            csv_stream(export, queryset), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response
    return FileResponse(
        xlsx_file(export, queryset),
        as_attachment=True,
        filename=filename,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
