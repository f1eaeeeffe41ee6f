"""The audit trail in admin: append-only for everyone, searchable, in Chinese; and every admin
action, on every model, recorded with who ran it on which objects."""

from __future__ import annotations

import functools

from auditlog.admin import LogEntryAdmin as AuditlogEntryAdmin
from auditlog.models import LogEntry
from django.contrib import admin
from django.contrib.admin import helpers
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from accounts import audit

EVENT_LABELS = {
    "admin_action": _("admin action"),
    "export": _("export"),
    "reveal": _("secret revealed"),
    "approve": _("approved"),
    "reject": _("rejected"),
    "request": _("requested"),
}


class EventFilter(admin.SimpleListFilter):
    title = _("event")
    parameter_name = "event"

    def lookups(self, request, model_admin):
        return list(EVENT_LABELS.items())

    def queryset(self, request, queryset):
        if self.value() in EVENT_LABELS:
            return queryset.filter(additional_data__event=self.value())
        return queryset


class AuditTrailAdmin(AuditlogEntryAdmin):
    """Nobody adds, edits or deletes audit rows here, not even a superuser."""

    list_display = [
        "created",
        "resource_url",
        "action",
        "event",
        "msg_short",
        "user_url",
        "remote_addr",
    ]
    list_filter = ["action", EventFilter, "content_type", ("timestamp", admin.DateFieldListFilter)]
    search_fields = ["object_repr", "changes_text", "changes", "actor__username", "remote_addr"]
    readonly_fields = [
        "created",
        "resource_url",
        "action",
        "event",
        "user_url",
        "remote_addr",
        "msg",
        "details",
    ]
    fieldsets = [
        (None, {"fields": ["created", "user_url", "remote_addr", "resource_url"]}),
        (_("Changes"), {"fields": ["action", "event", "msg", "details"]}),
    ]

    def has_delete_permission(self, request, obj=None):
        return False

    def lookup_allowed(self, lookup, value, request=None):
        return lookup == "object_pk" or super().lookup_allowed(lookup, value, request)

    def get_actions(self, request):
        return {}

    @admin.display(description=_("event"))
    def event(self, obj):
        name = (obj.additional_data or {}).get("event", "")
        return EVENT_LABELS.get(name, name) or "—"

    @admin.display(description=_("details"))
    def details(self, obj):
        data = {k: v for k, v in (obj.additional_data or {}).items() if k != "event"}
        rows = list(data.items())
        if obj.changes_text:
            rows.insert(0, (_("note"), obj.changes_text))
        if not rows:
            return "—"
        cells = "".join(str(format_html("<tr><th>{}</th><td>{}</td></tr>", k, v)) for k, v in rows)
        return format_html("<table>{}</table>", format_html(cells))


def _audited(model_admin, response_action):
    @functools.wraps(response_action)
    def response_action_audited(request, queryset):
        response = response_action(request, queryset)
        action = request.POST.get("action", "")
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if action and (selected or request.POST.get("select_across") == "1"):
            objects = (
                queryset
                if request.POST.get("select_across") == "1"
                else (queryset.filter(pk__in=selected))
            )
            func = model_admin.get_actions(request).get(action)
            described = str(func[2]) if func else action
            audit.record_each(
                actor=request.user,
                event="admin_action",
                objects=objects,
                detail=described,
                remote_addr=audit.client_ip(request),
                action=action,
            )
        return response

    return response_action_audited


def audit_admin_actions(site: admin.AdminSite) -> None:
    """Wrap each registered admin's action dispatch so every action leaves an audit row."""
    if LogEntry in site._registry:
        site.unregister(LogEntry)
    site.register(LogEntry, AuditTrailAdmin)
    for model_admin in site._registry.values():
        if not getattr(model_admin.response_action, "_audited", False):
            wrapped = _audited(model_admin, model_admin.response_action)
            wrapped._audited = True
            model_admin.response_action = wrapped
