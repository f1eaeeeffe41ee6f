"""Payments and their attempts: the refund form, the bulk refund, the review queue."""

from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from payments import services
from payments.admin.common import ReadOnlyMixin, _each, money_column
from payments.admin.ledger import entries_link
from payments.explain import risk_table, routing_table
from payments.fx import rate_text
from payments.models import Attempt, Payment, Refund
from payments.money import format_money
from payments.states import RefundStatus


class AttemptInline(admin.TabularInline):
    model = Attempt
    extra = 0
    can_delete = False
    fields = (
        "out_trade_no",
        "account",
        "status",
        "amount",
        "charged",
        "fee",
        "error_code",
        "flagged",
        "routing_summary",
        "created_at",
    )
    readonly_fields = fields

    @admin.display(description=_("charged as"))
    def charged(self, obj):
        """The foreign amount the channel was asked for, at which rate, of when."""
        if not obj.foreign:
            return ""
        return _("%(amount)s at %(rate)s (%(source)s, %(at)s)") % {
            "amount": format_money(obj.charge_amount, obj.charge_currency),
            "rate": rate_text(obj.fx_rate),
            "source": obj.fx_source,
            "at": date_format(timezone.localtime(obj.fx_rate_at), "SHORT_DATETIME_FORMAT"),
        }

    @admin.display(description=_("routing"))
    def routing_summary(self, obj):
        return routing_table(obj.routing or {})

    def has_add_permission(self, request, obj=None):
        return False


class RefundInline(admin.TabularInline):
    model = Refund
    extra = 0
    can_delete = False
    fields = (
        "refund_no",
        "amount",
        "charge_amount",
        "charge_currency",
        "status",
        "origin",
        "reason",
        "requested_by",
        "approved_by",
        "declined_by",
        "decision_note",
        "error",
        "created_at",
        "settled_at",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("requested_by", "approved_by", "declined_by")
        )

    def has_add_permission(self, request, obj=None):
        return False


class RefundForm(forms.Form):
    amount = forms.DecimalField(label=_("amount"), min_value=Decimal("0.01"), decimal_places=2)
    reason = forms.CharField(label=_("reason"), max_length=255)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "reference",
        "buyer",
        "method",
        money_column("amount", _("amount")),
        "status",
        money_column("refunded_amount", _("refunded")),
        "risk_summary",
    )
    list_filter = ("status", "method", "currency")
    search_fields = (
        "reference",
        "public_id",
        "attempts__out_trade_no",
        "attempts__channel_trade_no",
        "buyer__username",
    )
    inlines = [AttemptInline, RefundInline]
    actions = ["refund_in_full", "release_held", "block_held"]
    date_hierarchy = "created_at"
    exclude = ("risk", "client")
    readonly_fields = ("risk_explained", "client_explained", "journal")

    @admin.display(description=_("journal entries"))
    def journal(self, obj):
        return entries_link(obj.reference)

    @admin.display(description=_("risk assessment"))
    def risk_explained(self, obj):
        return risk_table(obj.risk or {})

    @admin.display(description=_("client"))
    def client_explained(self, obj):
        return risk_table(obj.client or {})

    change_form_template = "admin/payments/payment/change_form.html"

    def get_urls(self):
        from django.urls import path

        return [
            path(
                "<int:pk>/refund/",
                self.admin_site.admin_view(self.refund_view),
                name="payments_payment_refund",
            ),
            *super().get_urls(),
        ]

    def refund_view(self, request, pk):
        """Staff ask for a refund of part or all of a paid payment. The service decides
        whether it leaves at once (Finance, up to the self-approval limit) or waits for
        Finance's approval, and enforces the limits."""
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
                    payment=payment,
                    amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    origin=Refund.Origin.STAFF,
                    requested_by=request.user,
                )
            except services.PaymentError as exc:
                form.add_error("amount", str(exc))
            else:
                self.message_user(request, _refund_outcome(refund), messages.SUCCESS)
                return redirect("admin:payments_payment_change", payment.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Refund %(ref)s") % {"ref": payment.reference},
            "payment": payment,
            "form": form,
            "opts": self.model._meta,
            "self_approval_limit": services.self_approval_limit(),
        }
        return TemplateResponse(request, "admin/payments/payment/refund.html", context)

    @admin.action(description=_("Refund in full (what is left)"), permissions=["refund"])
    def refund_in_full(self, request, queryset):
        _each(
            self,
            request,
            queryset,
            lambda payment: services.refund_request(
                payment=payment,
                amount=payment.refundable_amount,
                reason=str(_("refund in full")),
                origin=Refund.Origin.STAFF,
                requested_by=request.user,
            ),
            _("%(n)d refund(s) asked for; those above your own limit wait for approval."),
            name=lambda payment: payment.reference,
        )

    def has_refund_permission(self, request):
        return request.user.has_perm("payments.add_refund")

    @admin.display(description=_("risk"))
    def risk_summary(self, obj):
        from payments.explain import DECISIONS

        risk = obj.risk or {}
        if not risk:
            return "—"
        decision = DECISIONS.get(risk.get("decision"), risk.get("decision", ""))
        return f"{risk.get('score', '?')} {decision}：{'、'.join(risk.get('reasons') or []) or '—'}"

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
            self,
            request,
            queryset,
            lambda payment: services.payment_review_decide(
                payment=payment, approve=approve, reviewer=reviewer
            ),
            _("%(n)d payment(s) released.") if approve else _("%(n)d payment(s) blocked."),
            name=lambda payment: payment.reference,
        )

    def has_review_permission(self, request):
        return request.user.has_perm("payments.review_payment")


@admin.register(Attempt)
class AttemptAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "out_trade_no",
        "account",
        "method",
        money_column("amount", _("amount")),
        "status",
        "error_code",
        "flagged",
    )
    list_select_related = ("account",)
    list_filter = ("status", "account", "method")
    search_fields = ("out_trade_no", "channel_trade_no", "payment__reference")
    exclude = ("routing",)
    readonly_fields = ("routing_pretty",)

    @admin.display(description=_("routing decision"))
    def routing_pretty(self, obj):
        return routing_table(obj.routing or {})


def _refund_outcome(refund: Refund) -> str:
    if refund.status == RefundStatus.REQUESTED:
        return _("Refund asked for; it is sent once another member of Finance approves it.")
    return _("Refund sent.")
