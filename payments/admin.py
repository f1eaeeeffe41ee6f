"""Finance's back office for the payment platform. Secrets are write-only; money records
are read-only (changes go through services: refunds, corrections as new entries)."""

import json
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.db.models import Sum
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from payments import services
from payments.channels.registry import backend_codes
from payments.models import (
    Attempt,
    BreakerEvent,
    ChannelAccount,
    ChannelHealth,
    ErrorCode,
    JournalEntry,
    JournalLine,
    LedgerAccount,
    Method,
    Notification,
    NotificationRefusal,
    Payment,
    Refund,
)
from payments.states import RefundStatus


def _each(modeladmin, request, queryset, act, done: str, *, name) -> None:
    """Apply ``act`` to each selected object: each refusal named with its reason, the rest
    counted in ``done``."""
    ok = 0
    for obj in queryset:
        try:
            act(obj)
        except services.PaymentError as exc:
            modeladmin.message_user(request, f"{name(obj)}: {exc}", messages.ERROR)
        else:
            ok += 1
    if ok:
        modeladmin.message_user(request, done % {"n": ok}, messages.SUCCESS)


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ChannelAccountForm(forms.ModelForm):
    backend = forms.ChoiceField(choices=[])
    methods = forms.MultipleChoiceField(choices=Method.choices, widget=forms.CheckboxSelectMultiple)
    new_credentials = forms.CharField(
        label=_("Replace credentials (JSON)"), required=False, widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("Write-only: stored encrypted, never shown back. Leave empty to keep the current ones."),
    )

    class Meta:
        model = ChannelAccount
        fields = (
            "code", "name", "backend", "methods", "enabled", "weight", "currency", "fee_percent", "fee_fixed",
            "min_amount", "max_amount", "daily_cap", "settlement_days", "merchant_id", "app_id", "base_url",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["backend"].choices = [(c, c) for c in backend_codes()]

    def clean_new_credentials(self):
        raw = self.cleaned_data["new_credentials"].strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(_("Not valid JSON: %(error)s") % {"error": exc}) from exc
        if not isinstance(value, dict):
            raise forms.ValidationError(_("Credentials must be a JSON object."))
        return value

    def save(self, commit=True):
        account = super().save(commit=False)
        if self.cleaned_data.get("new_credentials") is not None:
            account.credentials = self.cleaned_data["new_credentials"]
        if commit:
            account.save()
        return account


@admin.register(ChannelAccount)
class ChannelAccountAdmin(admin.ModelAdmin):
    form = ChannelAccountForm
    list_display = ("code", "name", "backend", "methods", "enabled", "fee_percent", "fee_fixed", "settlement_days", "breaker", "success_rate")
    list_filter = ("backend", "enabled")
    readonly_fields = ("credential_keys", "notify_url_display")
    fieldsets = (
        (None, {"fields": ("code", "name", "backend", "methods", "enabled", "weight")}),
        (_("Money"), {"fields": ("currency", "fee_percent", "fee_fixed", "min_amount", "max_amount", "daily_cap", "settlement_days")}),
        (_("Provider"), {"fields": ("merchant_id", "app_id", "base_url", "notify_url_display", "credential_keys", "new_credentials")}),
    )

    @admin.display(description=_("stored credential fields"))
    def credential_keys(self, obj):
        try:
            keys = sorted(obj.credentials)
        except ValueError as exc:
            return str(exc)
        return ", ".join(keys) or "—"

    @admin.display(description=_("notify URL to register"))
    def notify_url_display(self, obj):
        return obj.notify_url() if obj.pk else "—"

    @admin.display(description=_("breaker"))
    def breaker(self, obj):
        from payments.health import breaker_states

        return breaker_states([obj.code])[obj.code]

    @admin.display(description=_("recent success"))
    def success_rate(self, obj):
        recent = obj.attempts.order_by("-created_at")[:200]
        done = [a.status for a in recent if a.status in ("succeeded", "failed", "expired", "cancelled")]
        if not done:
            return "—"
        return f"{100 * done.count('succeeded') / len(done):.0f}% of {len(done)}"


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = ("out_trade_no", "account", "status", "amount", "fee", "error_code", "flagged", "routing_summary", "created_at")
    readonly_fields = fields

    @admin.display(description=_("routing"))
    def routing_summary(self, obj):
        routing = obj.routing or {}
        rows = format_html_join(
            "", "<li>{} — score {} est {} fee {} {}</li>",
            ((c.get("code"), c.get("score"), c.get("estimate"), c.get("fee"), c.get("excluded") or c.get("note") or "") for c in routing.get("candidates", [])),
        )
        return format_html("<b>{}</b> → {}<ul>{}</ul>", routing.get("approach", "—"), routing.get("winner", "—"), rows)

    def has_add_permission(self, request, obj=None):
        return False


class RefundInline(admin.TabularInline):
    model = Refund
    extra = 0
    can_delete = False
    fields = ("refund_no", "amount", "status", "origin", "reason", "error", "created_at", "settled_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class RefundForm(forms.Form):
    amount = forms.DecimalField(min_value=Decimal("0.01"), decimal_places=2)
    reason = forms.CharField(max_length=255)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "created_at", "reference", "buyer", "method", "amount", "currency", "status", "refunded_amount", "risk_summary",
    )
    list_filter = ("status", "method", "currency")
    search_fields = ("reference", "public_id", "attempts__out_trade_no", "attempts__channel_trade_no", "buyer__username")
    inlines = [AttemptInline, RefundInline]
    actions = ["refund_in_full", "release_held", "block_held"]
    date_hierarchy = "created_at"

    change_form_template = "admin/payments/payment/change_form.html"

    def get_urls(self):
        from django.urls import path

        return [
            path("<int:pk>/refund/", self.admin_site.admin_view(self.refund_view), name="payments_payment_refund"),
            *super().get_urls(),
        ]

    def refund_view(self, request, pk):
        """Finance refunds part or all of a paid payment; Support opens a refund for Finance to
        approve. The service enforces the limits."""
        from django.core.exceptions import PermissionDenied
        from django.shortcuts import get_object_or_404, redirect
        from django.template.response import TemplateResponse

        if not self.has_refund_permission(request):
            raise PermissionDenied
        payment = get_object_or_404(Payment, pk=pk)
        form = RefundForm(request.POST or None, initial={"amount": payment.refundable_amount})
        if request.method == "POST" and form.is_valid():
            try:
                refund = services.refund_request(
                    payment=payment, amount=form.cleaned_data["amount"], reason=form.cleaned_data["reason"],
                    origin=Refund.Origin.STAFF, requested_by=request.user, needs_approval=self._needs_approval(request),
                )
            except services.PaymentError as exc:
                form.add_error("amount", str(exc))
            else:
                if refund.status == RefundStatus.REQUESTED:
                    self.message_user(request, _("Refund opened; Finance will approve it before it is sent."), messages.SUCCESS)
                else:
                    self.message_user(request, _("Refund requested."), messages.SUCCESS)
                return redirect("admin:payments_payment_change", payment.pk)
        context = {**self.admin_site.each_context(request), "title": _("Refund %(ref)s") % {"ref": payment.reference},
                   "payment": payment, "form": form, "opts": self.model._meta}
        return TemplateResponse(request, "admin/payments/payment/refund.html", context)

    @admin.action(description=_("Refund in full (what is left)"), permissions=["refund"])
    def refund_in_full(self, request, queryset):
        needs_approval = self._needs_approval(request)
        _each(
            self, request, queryset, lambda payment: services.refund_request(
                payment=payment, amount=payment.refundable_amount, reason="refund in full", origin=Refund.Origin.STAFF,
                requested_by=request.user, needs_approval=needs_approval,
            ),
            _("%(n)d refund(s) requested."), name=lambda payment: payment.reference,
        )

    def has_refund_permission(self, request):
        return request.user.has_perm("payments.add_refund")

    def _needs_approval(self, request) -> bool:
        return not request.user.has_perm("payments.approve_refund")

    @admin.display(description=_("risk"))
    def risk_summary(self, obj):
        risk = obj.risk or {}
        if not risk:
            return "—"
        return f"{risk.get('score', '?')} {risk.get('decision', '')}: {', '.join(risk.get('reasons') or []) or '—'}"

    # The review queue: the list filtered on status "held for review", these two actions.

    @admin.action(description=_("Release for payment (held for review)"), permissions=["review"])
    def release_held(self, request, queryset):
        self._review(request, queryset, approve=True)

    @admin.action(description=_("Block (held for review)"), permissions=["review"])
    def block_held(self, request, queryset):
        self._review(request, queryset, approve=False)

    def _review(self, request, queryset, *, approve: bool):
        reviewer = request.user.get_username()
        _each(
            self, request, queryset,
            lambda payment: services.payment_review_decide(payment=payment, approve=approve, reviewer=reviewer),
            _("%(n)d payment(s) released.") if approve else _("%(n)d payment(s) blocked."),
            name=lambda payment: payment.reference,
        )

    def has_review_permission(self, request):
        return request.user.has_perm("payments.review_payment")


@admin.register(Refund)
class RefundAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("created_at", "refund_no", "payment", "amount", "status", "origin", "reason", "requested_by", "approved_by", "error")
    list_filter = ("status", "origin")
    search_fields = ("refund_no", "payment__reference")
    actions = ["approve_requested", "decline_requested"]

    # Refunds Support opened wait here (status "awaiting Finance approval") for Finance.

    @admin.action(description=_("Approve and send (awaiting approval)"), permissions=["approve"])
    def approve_requested(self, request, queryset):
        self._decide(request, queryset, approve=True)

    @admin.action(description=_("Decline (awaiting approval)"), permissions=["approve"])
    def decline_requested(self, request, queryset):
        self._decide(request, queryset, approve=False)

    def _decide(self, request, queryset, *, approve: bool):
        _each(
            self, request, queryset,
            lambda refund: services.refund_decide(refund=refund, approve=approve, by=request.user),
            _("%(n)d refund(s) approved and sent.") if approve else _("%(n)d refund(s) declined."),
            name=lambda refund: refund.refund_no,
        )

    def has_approve_permission(self, request):
        return request.user.has_perm("payments.approve_refund")


@admin.register(Attempt)
class AttemptAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("created_at", "out_trade_no", "account", "method", "amount", "status", "error_code", "flagged")
    list_filter = ("status", "account", "method")
    search_fields = ("out_trade_no", "channel_trade_no", "payment__reference")
    readonly_fields = ("routing_pretty",)

    @admin.display(description=_("routing decision"))
    def routing_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.routing, indent=2, ensure_ascii=False))


@admin.register(Notification)
class NotificationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("received_at", "channel_code", "outcome", "flagged", "attempt", "refund", "remote_addr", "detail")
    list_filter = ("outcome", "flagged", "channel_code")
    search_fields = ("detail", "attempt__out_trade_no")
    exclude = ("body",)
    readonly_fields = ("body_text",)

    @admin.display(description=_("body"))
    def body_text(self, obj):
        return format_html("<pre>{}</pre>", bytes(obj.body)[:20000].decode("utf-8", "replace"))


@admin.register(NotificationRefusal)
class NotificationRefusalAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Notify requests refused unread (docs/security.md): counted, never stored."""

    list_display = (
        "day", "channel_code", "reason", "count", "bytes", "last_at", "last_remote_addr",
    )
    list_filter = ("reason", "channel_code")
    date_hierarchy = "day"


@admin.register(ErrorCode)
class ErrorCodeAdmin(admin.ModelAdmin):
    list_display = ("backend", "code", "action", "counts_against_channel", "reason_zh", "reason_en")
    list_filter = ("backend", "action", "counts_against_channel")
    search_fields = ("code", "reason_zh", "reason_en")


@admin.register(ChannelHealth)
class ChannelHealthAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("account", "breaker", "opened_at", "updated_at")
    readonly_fields = ("state_pretty",)

    @admin.display(description=_("state"))
    def state_pretty(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.state, indent=2, ensure_ascii=False))


@admin.register(BreakerEvent)
class BreakerEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("at", "account", "from_state", "to_state", "reason")
    list_filter = ("account", "to_state")


class JournalLineInline(admin.TabularInline):
    model = JournalLine
    extra = 0
    can_delete = False
    readonly_fields = ("account", "amount", "currency")

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("posted_at", "kind", "key", "reference", "memo")
    list_filter = ("kind",)
    search_fields = ("key", "reference")
    inlines = [JournalLineInline]


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("code", "kind", "currency", "owner", "balance")
    list_filter = ("kind",)
    search_fields = ("code",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_balance=Sum("lines__amount"))

    @admin.display(description=_("balance (debit +)"), ordering="_balance")
    def balance(self, obj):
        return obj._balance or Decimal("0.00")
