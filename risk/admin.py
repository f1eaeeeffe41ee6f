from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from risk import alerts, monitoring
from risk.models import Alert, Assessment, ListEntry, Login, Monitor, Rule, Signal


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "feature",
        "operator",
        "value",
        "score",
        "action",
        "reason_code",
        "enabled",
    )
    list_editable = ("enabled",)
    list_filter = ("enabled", "action")


@admin.register(ListEntry)
class ListEntryAdmin(admin.ModelAdmin):
    list_display = ("kind", "field", "value", "note", "created_at")
    list_filter = ("kind", "field")
    search_fields = ("value",)


class SubjectKindFilter(admin.SimpleListFilter):
    """What was scored: the part of the subject before the colon (payment, listing-upload)."""

    title = _("subject")
    parameter_name = "subject_kind"

    def lookups(self, request, model_admin):
        return [("payment", _("payments")), ("listing-upload", _("seller uploads"))]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(subject__startswith=f"{self.value()}:")
        return queryset


@admin.register(Assessment)
class AssessmentAdmin(admin.ModelAdmin):
    list_display = ("created_at", "subject", "user_ref", "score", "decision", "reasons")
    list_filter = (
        "decision",
        SubjectKindFilter,
        "review_outcome",
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("=subject", "=user_ref", "subject")
    date_hierarchy = "created_at"
    readonly_fields = (
        "subject",
        "user_ref",
        "score",
        "decision",
        "reasons",
        "features",
        "created_at",
    )
    show_full_result_count = False  # the biggest risk table: no COUNT(*) per page


@admin.register(Monitor)
class MonitorAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "metric",
        "dimensions",
        "lower_bound",
        "upper_bound",
        "min_sample",
        "window_hours",
        "enabled",
        "open_alerts",
    )
    list_editable = ("enabled",)
    list_filter = ("enabled", "metric")
    search_fields = ("name", "metric")
    fieldsets = (
        (None, {"fields": ("name", "metric", "enabled")}),
        (
            _("What is judged"),
            {"fields": ("dimensions", "per_dimension", "window_hours", "min_sample")},
        ),
        (_("Bounds (%)"), {"fields": ("lower_bound", "upper_bound")}),
        (_("Where alerts go (always logged)"), {"fields": ("alert_emails", "webhook_url")}),
    )

    def get_queryset(self, request):
        from django.db.models import Count, Q

        return (
            super()
            .get_queryset(request)
            .annotate(_open_alerts=Count("alerts", filter=Q(alerts__resolved_at__isnull=True)))
        )

    @admin.display(description=_("open alerts"), ordering="_open_alerts")
    def open_alerts(self, obj):
        return obj._open_alerts

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "metric" and field is not None:
            names = ", ".join(monitoring.metric_names())
            field.help_text = _("One of: %(names)s") % {"names": names}
        return field


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Alerts are written by the evaluation only; people with ``change_alert`` may resolve
    them (the form itself stays read-only)."""

    list_display = (
        "opened_at",
        "monitor",
        "dimensions_key",
        "value",
        "bound",
        "threshold",
        "denominator",
        "resolved_at",
        "resolved_by",
    )
    list_filter = (("resolved_at", admin.EmptyFieldListFilter), "bound", "monitor")
    list_select_related = ("monitor",)
    search_fields = ("dimensions_key", "monitor__name")
    date_hierarchy = "opened_at"
    actions = ["resolve"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_resolve_permission(self, request):
        return request.user.has_perm("risk.change_alert")

    @admin.action(description=_("Resolve the selected alerts"), permissions=["resolve"])
    def resolve(self, request, queryset):
        resolved = sum(
            alerts.alert_resolve(alert=alert, by=request.user.get_username()) for alert in queryset
        )
        self.message_user(
            request,
            ngettext("%(n)d alert resolved.", "%(n)d alerts resolved.", resolved) % {"n": resolved},
            messages.SUCCESS,
        )


@admin.register(Login)
class LoginAdmin(admin.ModelAdmin):
    """Log-ins as risk scored them; the unusual ones (challenge or worse) first to look at."""

    list_display = ("created_at", "user_ref", "decision", "score", "reasons", "region", "ip")
    list_filter = ("decision", "region")
    search_fields = ("user_ref", "ip", "device")
    exclude = ("session_key",)  # a live session key is a credential
    readonly_fields = [
        "user_ref",
        "device",
        "device_label",
        "ip",
        "region",
        "score",
        "decision",
        "reasons",
        "ended_at",
        "created_at",
    ]

    def has_add_permission(self, request):
        return False


@admin.register(Signal)
class SignalAdmin(admin.ModelAdmin):
    """Decaying evidence on buyers, devices, addresses and payment accounts."""

    list_display = ("created_at", "reason", "field", "value", "source", "weight", "cleared_at")
    list_filter = ("reason", "field")
    search_fields = ("value", "source")
    readonly_fields = ("created_at",)
