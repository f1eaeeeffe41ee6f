from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import Case, When
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from reconciliation.models import Discrepancy, SettlementFile, Statement


@admin.register(SettlementFile)
class SettlementFileAdmin(admin.ModelAdmin):
    list_display = ("channel_code", "day", "name", "size", "status", "received_at")
    list_filter = ("channel_code", "status")
    exclude = ("content",)
    readonly_fields = ("channel_code", "day", "name", "sha256", "size", "status", "error", "received_at")


@admin.register(Statement)
class StatementAdmin(admin.ModelAdmin):
    list_display = ("account", "day", "count", "gross", "refunded", "fees", "net", "expected_settlement_date", "matched", "discrepancies")
    list_filter = ("account", "day")
    date_hierarchy = "day"
    readonly_fields = [f.name for f in Statement._meta.fields]

    def has_add_permission(self, request):
        return False


class NoteActionForm(ActionForm):
    note = forms.CharField(label=_("note"), required=False, widget=forms.TextInput(attrs={"size": 40}))


@admin.register(Discrepancy)
class DiscrepancyAdmin(admin.ModelAdmin):
    """The exceptions queue: open items first; resolve or write off with a note."""

    list_display = ("created_at", "kind", "status", "file", "attempt", "refund", "expected", "actual", "note")
    list_filter = ("status", "kind", "file__channel_code", "file__day")
    search_fields = ("attempt__out_trade_no", "refund__refund_no", "line__out_trade_no", "note")
    list_select_related = ("file", "attempt", "refund")
    raw_id_fields = ("attempt", "refund", "line", "file")
    readonly_fields = ("file", "kind", "attempt", "refund", "line", "expected", "actual", "resolved_by", "resolved_at", "created_at")
    action_form = NoteActionForm
    actions = ["mark_resolved", "write_off"]

    def get_queryset(self, request):
        return super().get_queryset(request).order_by(Case(When(status="open", then=0), default=1), "-created_at")

    def has_add_permission(self, request):
        return False

    def _close(self, request, queryset, status, verb):
        note = (request.POST.get("note") or "").strip()
        if not note:
            self.message_user(request, _("Give a note saying why."), level=messages.ERROR)
            return
        done = 0
        for item in queryset.filter(status=Discrepancy.Status.OPEN):
            item.status, item.resolved_by, item.resolved_at = status, request.user, timezone.now()
            item.note = f"{item.note}\n{verb}: {note}".strip()
            item.save(update_fields=["status", "resolved_by", "resolved_at", "note"])
            done += 1
        self.message_user(request, _("%(count)d discrepancies %(verb)s.") % {"count": done, "verb": verb})

    @admin.action(description=_("Mark resolved (note required)"))
    def mark_resolved(self, request, queryset):
        self._close(request, queryset, Discrepancy.Status.RESOLVED, "resolved")

    @admin.action(description=_("Write off (note required)"))
    def write_off(self, request, queryset):
        self._close(request, queryset, Discrepancy.Status.WRITTEN_OFF, "written off")
