"""Refunds: the list, and the decisions on those awaiting approval."""

from urllib.parse import urlencode

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from payments import services
from payments.admin.common import ReadOnlyMixin, _each, money_column
from payments.models import Refund


@admin.register(Refund)
class RefundAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = (
        "created_at",
        "refund_no",
        "payment",
        money_column("amount", _("amount")),
        "status",
        "origin",
        "reason",
        "requested_by",
        "approved_by",
        "error",
    )
    list_select_related = ("payment", "requested_by", "approved_by")
    list_filter = ("status", "origin")
    search_fields = ("refund_no", "payment__reference")
    actions = ["approve_requested", "decline_requested"]
    readonly_fields = ("journal",)

    @admin.display(description=_("journal entries"))
    def journal(self, obj):
        url = (
            reverse("admin:payments_journalentry_changelist")
            + "?"
            + urlencode({"q": obj.refund_no})
        )
        return format_html('<a href="{}">{}</a>', url, _("entries of this refund"))

    # Refunds Support opened wait here (status "awaiting Finance approval") for Finance.

    @admin.action(description=_("Approve and send (awaiting approval)"), permissions=["approve"])
    def approve_requested(self, request, queryset):
        self._decide(request, queryset, approve=True)

    @admin.action(description=_("Decline (awaiting approval)"), permissions=["approve"])
    def decline_requested(self, request, queryset):
        self._decide(request, queryset, approve=False)

    def _decide(self, request, queryset, *, approve: bool):
        _each(
            self,
            request,
            queryset,
            lambda refund: services.refund_decide(refund=refund, approve=approve, by=request.user),
            _("%(n)d refund(s) approved and sent.") if approve else _("%(n)d refund(s) declined."),
            name=lambda refund: refund.refund_no,
        )

    def has_approve_permission(self, request):
        return request.user.has_perm("payments.approve_refund")
