"""Refunds, and Finance's queue of those awaiting approval (the list's default filter):
approve or decline through ``refund_decide``, which holds the four-eyes rule."""

from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from payments import services
from payments.admin.common import ReadOnlyMixin, _each, money_column
from payments.admin.ledger import reference_admin_url
from payments.models import Refund
from payments.states import RefundStatus


class RefundStatusFilter(admin.SimpleListFilter):
    """The status filter, on "awaiting approval" unless another status (or all) is chosen:
    the list opens as Finance's queue. Same parameter as the field's own filter, so links
    such as ``?status__exact=succeeded`` keep working."""

    title = _("status")
    parameter_name = "status__exact"
    ALL = "all"

    def lookups(self, request, model_admin):
        return [*RefundStatus.choices, (self.ALL, _("all"))]

    def value(self):
        return super().value() or RefundStatus.REQUESTED

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == self.ALL:
            return queryset
        return queryset.filter(status=self.value())


class DeclineForm(forms.Form):
    reason = forms.CharField(
        label=_("Why is the refund declined?"),
        max_length=255,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


@admin.register(Refund)
class RefundAdmin(ReadOnlyMixin, admin.ModelAdmin):
    # Narrow enough to read whole at 1280 px beside the menu and the filters.
    list_display = (
        "refund_no",
        "order_link",
        money_column("amount", _("amount")),
        "status",
        "reason",
        "asked_by",
        "decision",
    )
    list_display_links = ("refund_no",)
    list_select_related = ("payment", "requested_by", "approved_by", "declined_by")
    list_filter = (RefundStatusFilter, "origin")
    search_fields = ("refund_no", "payment__reference")
    actions = ["approve_requested", "decline_requested"]
    readonly_fields = ("journal",)

    def get_list_display(self, request):
        """The queue (awaiting approval) has no decision to show yet."""
        shown = request.GET.get(RefundStatusFilter.parameter_name) or RefundStatus.REQUESTED
        if shown == RefundStatus.REQUESTED:
            return tuple(name for name in self.list_display if name != "decision")
        return self.list_display

    @admin.display(description=_("journal entries"))
    def journal(self, obj):
        url = (
            reverse("admin:payments_journalentry_changelist")
            + "?"
            + urlencode({"q": obj.refund_no})
        )
        return format_html('<a href="{}">{}</a>', url, _("entries of this refund"))

    @admin.display(description=_("order / payment"), ordering="payment__reference")
    def order_link(self, obj):
        reference = obj.payment.reference
        kind, _sep, rest = reference.partition(":")
        label = rest if kind == "order" and rest else reference
        url = reference_admin_url(reference)
        return format_html('<a href="{}">{}</a>', url, label) if url else label

    @admin.display(description=_("asked by, when"))
    def asked_by(self, obj):
        if obj.requested_by_system:
            who = _("the system (automatic)")
        else:
            who = obj.requested_by.get_username() if obj.requested_by_id else "—"
        when = timezone.localtime(obj.created_at).strftime("%m-%d %H:%M")
        return format_html('{}<br><span class="quiet">{}</span>', who, when)

    @admin.display(description=_("decision"), ordering="decided_at")
    def decision(self, obj):
        """Who decided, and why (a decline always says why; the channel's error after)."""
        who = obj.approved_by or obj.declined_by
        parts = [who.get_username()] if who else []
        parts += [text for text in (obj.decision_note, obj.error) if text]
        return " · ".join(parts) or "—"

    # The queue: refunds awaiting approval. The service refuses the asker and non-Finance
    # staff; the permission only hides the actions from those who may never decide.

    @admin.action(description=_("Approve and send (awaiting approval)"), permissions=["approve"])
    def approve_requested(self, request, queryset):
        _each(
            self,
            request,
            queryset,
            lambda refund: services.refund_decide(refund=refund, approve=True, by=request.user),
            _("%(n)d refund(s) approved and sent."),
            name=lambda refund: refund.refund_no,
        )

    @admin.action(description=_("Decline (awaiting approval)…"), permissions=["approve"])
    def decline_requested(self, request, queryset):
        """Asks for the reason first (an intermediate page), then declines each refund."""
        form = DeclineForm(request.POST if "reason" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            _each(
                self,
                request,
                queryset,
                lambda refund: services.refund_decide(
                    refund=refund, approve=False, by=request.user, reason=reason
                ),
                _("%(n)d refund(s) declined."),
                name=lambda refund: refund.refund_no,
            )
            return None
        if form.is_bound:
            self.message_user(request, _("Say why the refund is declined."), messages.ERROR)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Decline refunds"),
            "opts": self.model._meta,
            "form": form,
            "refunds": queryset.select_related("payment", "requested_by"),
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
            "action": "decline_requested",
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/payments/refund/decline.html", context)

    def has_approve_permission(self, request):
        return request.user.has_perm("payments.approve_refund")
