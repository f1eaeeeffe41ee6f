from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied
from django.db.models import Case, F, Sum, Value, When
from django.db.models.functions import Coalesce
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from payments.admin import ReadOnlyMixin, money_column
from payments.money import format_money
from reconciliation import exceptions_queue, exports, treasury
from reconciliation.models import (
    AccountPolicy,
    BankAccount,
    Discrepancy,
    FundsArrival,
    Holiday,
    ReconcileRun,
    ReconciliationAlert,
    SellerClearing,
    SettlementDay,
    SettlementFile,
    Statement,
    TreasuryStatement,
)


def yuan(amount) -> str:
    """An amount as staff read it: ¥1,234.56."""
    return format_money(amount)


def run_progress(run: ReconcileRun | None) -> str:
    """A run as staff read it: stage, percent of the file read and lines so far."""
    if run is None:
        return "—"
    if run.status == ReconcileRun.Status.RUNNING:
        stage = STAGES.get(run.stage, run.stage)
        return _("%(stage)s %(percent)d%% · %(lines)s lines") % {
            "stage": stage,
            "percent": run.percent,
            "lines": f"{run.lines_read:,}",
        }
    if run.status == ReconcileRun.Status.DONE:
        return _("done · %(lines)s lines, %(matched)s matched") % {
            "lines": f"{run.lines_read:,}",
            "matched": f"{run.matched:,}",
        }
    return _("failed: %(error)s") % {"error": run.error}


STAGES = {"reading": _("reading"), "matching": _("matching"), "clearing": _("clearing")}


@admin.register(SettlementFile)
class SettlementFileAdmin(admin.ModelAdmin):
    list_display = ("channel_code", "day", "name", "size", "status", "progress", "received_at")
    list_filter = ("channel_code", "status")
    exclude = ("content",)
    readonly_fields = (
        "channel_code",
        "day",
        "name",
        "raw",
        "sha256",
        "size",
        "status",
        "progress",
        "error",
        "received_at",
    )

    @admin.display(description=_("progress"))
    def progress(self, obj):
        return run_progress(obj.runs.order_by("-started_at", "-id").first())


@admin.register(ReconcileRun)
class ReconcileRunAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Runs of reconciliation, the one in progress with how far it has got (live)."""

    list_display = (
        "file",
        "status",
        "progress",
        "lines_read",
        "started_at",
        "updated_at",
        "finished_at",
    )
    list_filter = ("status", "file__channel_code")
    list_select_related = ("file",)

    @admin.display(description=_("progress"))
    def progress(self, obj):
        return run_progress(obj)


@admin.register(SettlementDay)
class SettlementDayAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Each account's day: reconciled, still waiting for its file, refused, or missing."""

    list_display = (
        "day",
        "account",
        "status",
        "tries",
        "next_try_at",
        "deadline",
        "last_error",
        "file",
    )
    list_filter = ("status", "account", "day")
    list_select_related = ("account", "file")
    date_hierarchy = "day"


@admin.register(ReconciliationAlert)
class ReconciliationAlertAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("created_at", "account", "day", "kind", "text")
    list_filter = ("kind", "account")
    list_select_related = ("account",)


@admin.register(Holiday)
class HolidayAdmin(admin.ModelAdmin):
    """Days off and make-up working days of each business-day calendar (mainland China: CN)."""

    list_display = ("day", "calendar", "name", "workday")
    list_filter = ("calendar", "workday")
    date_hierarchy = "day"


@admin.register(AccountPolicy)
class AccountPolicyAdmin(admin.ModelAdmin):
    """Staff set each account's file deadline, retry back-off and alert thresholds."""

    list_display = (
        "account",
        "deadline_hours",
        "first_retry_minutes",
        "max_retry_minutes",
        "alert_discrepancies",
        "alert_amount",
    )


class BankStatementForm(forms.Form):
    bank_account = forms.ModelChoiceField(
        queryset=BankAccount.objects.all(), label=_("bank account")
    )
    statement = forms.FileField(label=_("bank statement (CSV)"))


@admin.register(BankAccount)
class BankAccountAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "bank", "number_tail", "currency")


@admin.register(FundsArrival)
class FundsArrivalAdmin(admin.ModelAdmin):
    """Money that reached a bank account; Finance records one by hand or imports the bank's
    statement (the link above the list)."""

    list_display = (
        "value_date",
        "bank_account",
        "money",
        "counterparty",
        "reference",
        "statement",
        "source",
    )
    list_filter = ("bank_account", "source", "value_date")
    list_select_related = ("bank_account", "statement__account")
    fields = ("bank_account", "value_date", "amount", "counterparty", "reference")
    change_list_template = "admin/reconciliation/fundsarrival_change_list.html"

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("amount"), ordering="amount")
    def money(self, obj):
        return yuan(obj.amount)

    def save_model(self, request, obj, form, change):
        """Recorded by hand: matched and posted like an imported one."""
        arrival = treasury.arrival_record(
            bank_account=obj.bank_account,
            value_date=obj.value_date,
            amount=obj.amount,
            counterparty=obj.counterparty,
            reference=obj.reference,
            by=request.user,
        )
        obj.pk, obj.statement_id = arrival.pk, arrival.statement_id

    def get_urls(self):
        urls = super().get_urls()
        view = self.admin_site.admin_view(self.import_view)
        return [path("import/", view, name="reconciliation_fundsarrival_import"), *urls]

    def import_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = BankStatementForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            try:
                arrivals = treasury.bank_statement_import(
                    bank_account=form.cleaned_data["bank_account"],
                    stream=form.cleaned_data["statement"],
                    by=request.user,
                )
            except treasury.ImportRefused as exc:
                self.message_user(
                    request,
                    _("The statement was not imported: %(error)s") % {"error": exc},
                    level=messages.ERROR,
                )
            else:
                matched = sum(1 for a in arrivals if a.statement_id)
                self.message_user(
                    request,
                    _("%(count)d arrivals imported, %(matched)d matched to a settlement.")
                    % {"count": len(arrivals), "matched": matched},
                )
                return redirect("admin:reconciliation_fundsarrival_changelist")
        context = {
            **self.admin_site.each_context(request),
            "form": form,
            "title": _("Import a bank statement"),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/reconciliation/bank_statement_import.html", context)


class PositionFilter(admin.SimpleListFilter):
    title = _("funds")
    parameter_name = "funds"

    def lookups(self, request, model_admin):
        return [
            (treasury.Status.EXPECTED, _("expected")),
            (treasury.Status.ARRIVED, _("arrived")),
            (treasury.Status.LATE, _("late")),
            (treasury.Status.SHORT, _("short")),
        ]

    def queryset(self, request, queryset):
        value, today = self.value(), timezone.localdate()
        if value == treasury.Status.ARRIVED:
            return queryset.filter(arrived_sum__gte=F("net"))
        if value == treasury.Status.SHORT:
            return queryset.filter(arrived_sum__gt=0, arrived_sum__lt=F("net"))
        if value == treasury.Status.LATE:
            return queryset.filter(arrived_sum=0, net__gt=0, expected_settlement_date__lt=today)
        if value == treasury.Status.EXPECTED:
            return queryset.filter(
                arrived_sum__lt=F("net"), arrived_sum=0, expected_settlement_date__gte=today
            )
        return queryset


@admin.register(TreasuryStatement)
class TreasuryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Treasury: per channel account and bank account, what is expected, arrived, late or short."""

    list_display = (
        "expected_settlement_date",
        "account",
        "bank",
        "day",
        "expected",
        "arrived",
        "funds",
    )
    list_filter = (PositionFilter, "account", "account__reconciliation_policy__bank_account")
    date_hierarchy = "expected_settlement_date"
    list_select_related = ("account__reconciliation_policy__bank_account",)
    ordering = ("-expected_settlement_date", "account")

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("reconciliation.view_statement")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                arrived_sum=Coalesce(
                    Sum("arrivals__amount"), Value(0), output_field=Statement._meta.get_field("net")
                ),
            )
        )

    @admin.display(description=_("bank account"))
    def bank(self, obj):
        policy = getattr(obj.account, "reconciliation_policy", None)
        return policy.bank_account if policy and policy.bank_account else "—"

    @admin.display(description=_("expected"), ordering="net")
    def expected(self, obj):
        return yuan(obj.net)

    @admin.display(description=_("arrived"), ordering="arrived_sum")
    def arrived(self, obj):
        return yuan(obj.arrived_sum)

    @admin.display(description=_("funds"))
    def funds(self, obj):
        status = treasury.statement_position(obj, arrived=obj.arrived_sum).status
        return dict(PositionFilter.lookups(None, None, None)).get(status, status)


class SellerClearingInline(ReadOnlyMixin, admin.TabularInline):
    model = SellerClearing
    fields = ("seller", "currency", "orders", "gross", "commission", "net")
    readonly_fields = fields
    extra = 0
    verbose_name_plural = _("clearing of seller amounts")


@admin.register(Statement)
class StatementAdmin(admin.ModelAdmin):
    list_display = (
        "account",
        "day",
        "count",
        "gross",
        "refunded",
        "fees",
        "net",
        "cycle",
        "expected_settlement_date",
        "matched",
        "discrepancies",
    )
    list_filter = ("account", "day")
    date_hierarchy = "day"
    readonly_fields = [f.name for f in Statement._meta.fields]
    inlines = [SellerClearingInline]
    actions = ["export_csv", "export_daily_csv", "export_daily_xlsx"]

    @admin.action(description=_("Export as CSV"), permissions=["view"])
    def export_csv(self, request, queryset):
        return _csv_response(exports.statements_csv(queryset), "statements.csv")

    @admin.action(description=_("Export the days across channels (CSV)"), permissions=["view"])
    def export_daily_csv(self, request, queryset):
        days = sorted(set(queryset.values_list("day", flat=True)))
        lines = (line for day in days for line in exports.daily_statement_csv(day))
        return _csv_response(lines, "daily-statement.csv")

    @admin.action(description=_("Export the day across channels (XLSX)"), permissions=["view"])
    def export_daily_xlsx(self, request, queryset):
        day = queryset.order_by("-day").values_list("day", flat=True).first()
        response = HttpResponse(
            exports.daily_statement_xlsx(day),
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response["Content-Disposition"] = f'attachment; filename="daily-statement-{day}.xlsx"'
        return response

    @admin.display(description=_("settlement cycle"))
    def cycle(self, obj):
        return _("T+%(days)d business days") % {"days": obj.account.settlement_days}

    def has_add_permission(self, request):
        return False


@admin.register(SellerClearing)
class SellerClearingAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Per statement and seller: the orders whose payments the channel's file settled."""

    list_display = (
        "day",
        "account",
        "seller",
        "currency",
        "orders",
        "gross",
        "commission",
        "net",
        "statement",
    )
    list_filter = ("statement__account", "statement__day", "currency")
    search_fields = ("seller__username", "seller__email")
    list_select_related = ("statement__account", "seller")
    date_hierarchy = "statement__day"
    actions = ["export_csv"]

    @admin.action(description=_("Export as CSV"), permissions=["view"])
    def export_csv(self, request, queryset):
        return _csv_response(exports.clearings_csv(queryset), "seller-clearings.csv")

    @admin.display(description=_("day"), ordering="statement__day")
    def day(self, obj):
        return obj.statement.day

    @admin.display(description=_("channel account"), ordering="statement__account")
    def account(self, obj):
        return obj.statement.account


class NoteActionForm(ActionForm):
    note = forms.CharField(
        label=_("note"), required=False, widget=forms.TextInput(attrs={"size": 40})
    )


@admin.register(Discrepancy)
class DiscrepancyAdmin(admin.ModelAdmin):
    """The exceptions queue: open items first; resolve or write off with a note."""

    list_display = (
        "created_at",
        "kind",
        "status",
        "file",
        "attempt",
        "refund",
        money_column("expected", _("expected")),
        money_column("actual", _("actual")),
        "note",
        "resolution",
    )
    list_filter = ("status", "kind", "file__channel_code", "file__day")
    search_fields = ("attempt__out_trade_no", "refund__refund_no", "line__out_trade_no", "note")
    list_select_related = ("file", "attempt", "refund")
    raw_id_fields = ("attempt", "refund", "line", "file")
    readonly_fields = (
        "file",
        "kind",
        "attempt",
        "refund",
        "line",
        "expected",
        "actual",
        "resolved_by",
        "resolved_at",
        "resolution",
        "created_at",
    )
    action_form = NoteActionForm
    actions = ["confirm_payment", "mark_resolved", "write_off"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .order_by(Case(When(status="open", then=0), default=1), "-created_at")
        )

    def has_add_permission(self, request):
        return False

    def _close(self, request, queryset, status, verb, done_message):
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
        self.message_user(request, done_message % {"count": done})

    @admin.action(description=_("Mark resolved (note required)"))
    def mark_resolved(self, request, queryset):
        self._close(
            request,
            queryset,
            Discrepancy.Status.RESOLVED,
            "resolved",
            _("%(count)d discrepancies resolved."),
        )

    @admin.action(description=_("Write off (note required)"))
    def write_off(self, request, queryset):
        self._close(
            request,
            queryset,
            Discrepancy.Status.WRITTEN_OFF,
            "written off",
            _("%(count)d discrepancies written off."),
        )

    @admin.action(description=_("Confirm payment and deliver or refund"), permissions=["change"])
    def confirm_payment(self, request, queryset):
        """For a status mismatch or a payment missing on our side: apply the channel's line as
        the payment notice. Each discrepancy is confirmed on its own, all or nothing."""
        note = (request.POST.get("note") or "").strip()
        for item in queryset.order_by("pk"):
            try:
                done = exceptions_queue.discrepancy_confirm_payment(
                    discrepancy=item, by=request.user, note=note
                )
            except exceptions_queue.DiscrepancyRefused as exc:
                self.message_user(
                    request,
                    _("Discrepancy #%(id)s was not confirmed: %(reason)s")
                    % {"id": item.pk, "reason": exc},
                    level=messages.ERROR,
                )
            else:
                self.message_user(
                    request,
                    _("Discrepancy #%(id)s confirmed: %(resolution)s")
                    % {"id": item.pk, "resolution": done.resolution},
                    level=messages.SUCCESS,
                )


def _csv_response(lines, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
