"""Provider disputes (card chargebacks, PayPal cases) for Finance and Support: read-only —
the channel's notices keep them up to date; evidence is answered at the channel."""

from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from payments.admin.common import ReadOnlyMixin, money_column
from payments.admin.ledger import entries_link, reference_admin_url
from payments.models import ProviderDispute

# The channels' dispute reasons (Stripe's Dispute.reason, PayPal's dispute reason), as a clerk
# reads them; the channel's own word stays beside, to match its dashboard.
REASONS = {
    "fraudulent": _("Fraud: the cardholder did not make it"),
    "unauthorised": _("Fraud: the cardholder did not make it"),
    "unrecognized": _("The cardholder does not recognise it"),
    "product_not_received": _("Goods not received"),
    "merchandise_or_service_not_received": _("Goods not received"),
    "product_unacceptable": _("Goods not as described"),
    "merchandise_or_service_not_as_described": _("Goods not as described"),
    "duplicate": _("Charged twice"),
    "duplicate_transaction": _("Charged twice"),
    "credit_not_processed": _("Refund not received"),
    "incorrect_amount": _("Wrong amount"),
}


@admin.register(ProviderDispute)
class ProviderDisputeAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "provider_id",
        "order_link",
        "account",
        money_column("amount", _("disputed amount")),
        "reason_shown",
        "outcome",
        "status",
        "due",
        "opened_at",
    )
    list_select_related = ("payment", "account")
    list_filter = ("outcome", "account__backend", "account", "funds_withdrawn")
    search_fields = ("provider_id", "payment__reference", "attempt__out_trade_no")
    date_hierarchy = "opened_at"
    readonly_fields = ("journal",)

    @admin.display(description=_("reason"), ordering="reason")
    def reason_shown(self, obj):
        label = REASONS.get(obj.reason.lower())
        return format_html("{} <small>({})</small>", label, obj.reason) if label else obj.reason

    @admin.display(description=_("order / payment"), ordering="payment__reference")
    def order_link(self, obj):
        reference = obj.payment.reference
        kind, _sep, rest = reference.partition(":")
        label = rest if kind == "order" and rest else reference
        url = reference_admin_url(reference)
        return format_html('<a href="{}">{}</a>', url, label) if url else label

    @admin.display(description=_("evidence due"), ordering="evidence_due_by")
    def due(self, obj):
        if not obj.evidence_due_by:
            return "—"
        when = timezone.localtime(obj.evidence_due_by).strftime("%Y-%m-%d %H:%M")
        if obj.is_open and obj.evidence_due_by < timezone.now():
            return format_html('<strong class="errornote">{}</strong>', when)
        return when

    @admin.display(description=_("journal entries"))
    def journal(self, obj):
        return entries_link(obj.payment.reference)
