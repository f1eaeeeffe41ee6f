"""Back office for the shop. No secret is ever shown: codes appear by number and status only.

Decisions (disputes, payouts) are admin actions that call the same services as everything
else; the staff groups of ``accounts.roles`` hold the permissions they need.
"""

from django.contrib import admin, messages
from django.db.models import CharField, Count, OuterRef, Q, Subquery, Value
from django.db.models.functions import Cast, Concat
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from marketplace import services
from marketplace.errors import MarketplaceError
from marketplace.models import (
    Brand,
    CardCode,
    Dispute,
    Listing,
    Order,
    Payout,
    PayoutDestination,
    RevealAudit,
)
from payments.admin import ReadOnlyMixin, entries_link, money_column

SECRET_FIELDS = ("code_encrypted", "pin_encrypted", "fingerprint")


def _run(modeladmin, request, queryset, service, done: str, **kwargs) -> None:
    """Apply ``service`` to each selected object; report successes and refusals."""
    ok = 0
    for obj in queryset:
        try:
            service(obj, request.user, **kwargs)
        except MarketplaceError as exc:
            modeladmin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
        else:
            ok += 1
    if ok:
        modeladmin.message_user(request, done % {"n": ok}, messages.SUCCESS)


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "slug",
        "category",
        "commission_percent",
        "guarantee_hours",
        "high_risk",
        "active",
    )
    list_filter = ("category", "active", "high_risk", "code_checksum")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    fieldsets = (
        (None, {"fields": ("name", "slug", "category", "description", "logo", "active")}),
        (
            _("Code format"),
            {
                "fields": (
                    "code_min_length",
                    "code_max_length",
                    "code_charset",
                    "code_checksum",
                    "pin_required",
                    "pin_min_length",
                    "pin_max_length",
                )
            },
        ),
        (_("Terms"), {"fields": ("commission_percent", "guarantee_hours", "high_risk")}),
    )


@admin.register(Listing)
class ListingAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "brand",
        "seller",
        money_column("face_value", _("face value")),
        money_column("price", _("price")),
        "status",
        "risk",
        "available",
        "sold",
        "created_at",
    )
    list_filter = ("status", "brand__category", "brand")
    search_fields = ("seller__username", "brand__name", "=id")
    list_select_related = ("brand", "seller")
    readonly_fields = (
        "seller",
        "brand",
        "face_value",
        "price",
        "currency",
        "status",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields
    actions = ["pause", "release", "withdraw"]

    def get_queryset(self, request):
        from risk.models import Assessment

        latest = Assessment.objects.filter(
            subject=Concat(Value("listing-upload:"), Cast(OuterRef("pk"), CharField()))
        ).order_by("-created_at")
        return (
            super()
            .get_queryset(request)
            .annotate(
                _available=Count("codes", filter=Q(codes__status=CardCode.Status.AVAILABLE)),
                _sold=Count("codes", filter=Q(codes__status=CardCode.Status.SOLD)),
                _risk_score=Subquery(latest.values("score")[:1]),
                _risk_reasons=Subquery(latest.values("reasons")[:1]),
            )
        )

    @admin.display(description=_("available"), ordering="_available")
    def available(self, obj):
        return obj._available

    @admin.display(description=_("sold"), ordering="_sold")
    def sold(self, obj):
        return obj._sold

    def has_add_permission(self, request):
        return False  # listings come with codes: sellers create them on /sell/ or the API

    @admin.action(description=_("Pause sales"), permissions=["change"])
    def pause(self, request, queryset):
        _run(
            self,
            request,
            queryset,
            lambda listing, staff: services.listing_moderate(
                listing=listing, staff=staff, status=Listing.Status.PAUSED
            ),
            _("%(n)d listing(s) paused."),
        )

    @admin.display(description=_("risk"))
    def risk(self, obj):
        """The latest upload assessment: score and reasons (the Risk queue's why)."""
        if obj._risk_score is None:
            return "—"
        reasons = obj._risk_reasons or []
        if isinstance(reasons, str):  # SQLite hands a JSON subquery back as text
            import json

            reasons = json.loads(reasons)
        return f"{obj._risk_score} · {'、'.join(reasons) or '—'}"

    @admin.action(description=_("Release to sale (after review)"), permissions=["change"])
    def release(self, request, queryset):
        _run(
            self,
            request,
            queryset,
            lambda listing, staff: services.listing_moderate(
                listing=listing, staff=staff, status=Listing.Status.ACTIVE
            ),
            _("%(n)d listing(s) released to sale."),
        )

    @admin.action(description=_("Withdraw unsold codes"), permissions=["change"])
    def withdraw(self, request, queryset):
        _run(
            self,
            request,
            queryset,
            lambda listing, staff: services.listing_moderate(
                listing=listing, staff=staff, status=Listing.Status.WITHDRAWN
            ),
            _("%(n)d listing(s) withdrawn."),
        )


@admin.register(CardCode)
class CardCodeAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("id", "listing", "status", "order", "reserved_until", "sold_at", "created_at")
    list_filter = ("status",)
    search_fields = ("=id", "=order__number", "=listing__id")
    list_select_related = ("listing__brand", "order")
    exclude = SECRET_FIELDS
    readonly_fields = ("listing", "status", "order", "reserved_until", "sold_at", "created_at")


class CodeInline(admin.TabularInline):
    model = CardCode
    fields = ("id", "status", "sold_at")
    readonly_fields = fields
    exclude = SECRET_FIELDS
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        # Whoever may look an order up sees its codes' states (never their secrets).
        return request.user.has_perm("marketplace.view_order")


class RevealInline(admin.TabularInline):
    model = RevealAudit
    fields = ("at", "channel", "user", "codes", "ip", "user_agent")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("marketplace.view_order")


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = (
        "number",
        "buyer",
        "listing",
        "quantity",
        money_column("amount", _("amount")),
        "status",
        "created_at",
        "delivered_at",
    )
    list_filter = ("status", "listing__brand__category", "created_at")
    search_fields = ("=number", "buyer__username", "buyer__email", "=payment_public_id")
    list_select_related = ("buyer", "listing__brand")
    date_hierarchy = "created_at"
    readonly_fields = [
        "number",
        "buyer",
        "listing",
        "quantity",
        "unit_price",
        "unit_commission",
        "amount",
        "currency",
        "status",
        "expires_at",
        "paid_at",
        "delivered_at",
        "guarantee_until",
        "completed_at",
        "refunded_at",
        "payment_public_id",
        "note",
        "created_at",
        "journal",
    ]
    inlines = [CodeInline, RevealInline]
    actions = ["resend_delivery_email"]

    @admin.display(description=_("journal entries"))
    def journal(self, obj):
        return entries_link(obj.payment_reference)

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Re-send the delivery e-mail to the buyer"), permissions=["view"])
    def resend_delivery_email(self, request, queryset):
        sent = 0
        for order in queryset:
            if services.order_delivery_email_send(order=order):
                sent += 1
            else:
                self.message_user(
                    request,
                    _("%(order)s: not delivered or the buyer has no e-mail.") % {"order": order},
                    messages.WARNING,
                )
        if sent:
            self.message_user(
                request,
                _("%(n)d delivery e-mail(s) sent (each audited).") % {"n": sent},
                messages.SUCCESS,
            )


@admin.register(RevealAudit)
class RevealAuditAdmin(admin.ModelAdmin):
    list_display = ("at", "order", "user", "channel", "codes", "ip")
    list_filter = ("channel", "at")
    search_fields = ("=order__number", "user__username", "ip")
    list_select_related = ("order", "user")
    readonly_fields = ("order", "user", "channel", "codes", "ip", "user_agent", "at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Dispute)
class DisputeAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "order",
        "code_id",
        "reason",
        "status_shown",
        "created_at",
        "seller_answered_at",
        "decided_by",
    )
    list_filter = ("status", "reason", "created_at")
    search_fields = ("=order__number", "order__buyer__username", "order__listing__seller__username")
    list_select_related = ("order", "decided_by", "refund")
    readonly_fields = (
        "order",
        "code",
        "reason",
        "note",
        "screenshots",
        "seller_answer",
        "seller_answered_at",
        "status_shown",
        "decided_by",
        "decided_at",
        "created_at",
    )
    fields = (*readonly_fields[:-1], "decision_note", "created_at")

    @admin.display(description=_("screenshots"))
    def screenshots(self, obj):
        links = [
            format_html(
                '<a href="{}" target="_blank" rel="noopener">{}</a>',
                reverse("marketplace:dispute_evidence", args=[obj.pk, item.pk]),
                item.original_name or item.pk,
            )
            for item in obj.evidence.all()
        ]
        return format_html_join(" · ", "{}", ((link,) for link in links)) if links else "—"

    @admin.display(description=_("status"), ordering="status")
    def status_shown(self, obj):
        """ "Refund awaiting approval" (a link to the refund) until Finance approves it."""
        if obj.refund_id is None:
            return obj.get_status_shown()
        url = reverse("admin:payments_refund_change", args=[obj.refund_id])
        return format_html('<a href="{}">{}</a>', url, obj.get_status_shown())

    actions = ["refund_buyer", "reject"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Refund the buyer (code is bad)"), permissions=["change"])
    def refund_buyer(self, request, queryset):
        _run(
            self,
            request,
            queryset,
            lambda d, staff: services.dispute_refund(dispute=d, staff=staff, note=d.decision_note),
            _("%(n)d dispute(s) decided for the buyer; a refund is sent once Finance approves it."),
        )

    @admin.action(description=_("Reject (the code was fine)"), permissions=["change"])
    def reject(self, request, queryset):
        _run(
            self,
            request,
            queryset,
            lambda d, staff: services.dispute_reject(dispute=d, staff=staff, note=d.decision_note),
            _("%(n)d dispute(s) rejected."),
        )


@admin.register(PayoutDestination)
class PayoutDestinationAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "seller",
        "kind",
        "holder_name",
        "masked_account",
        "bank_name",
        "created_at",
    )
    list_filter = ("kind",)
    search_fields = ("seller__username", "holder_name")
    readonly_fields = ("seller", "kind", "holder_name", "account", "bank_name", "created_at")

    @admin.display(description=_("account"))
    def masked_account(self, obj):
        return f"****{obj.account[-4:]}"

    def has_add_permission(self, request):
        return False


@admin.register(Payout)
class PayoutAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "seller",
        money_column("amount", _("amount")),
        "destination",
        "status",
        "requested_at",
        "decided_by",
        "paid_at",
        "reference",
    )
    list_filter = ("status", "requested_at")
    search_fields = ("seller__username", "=reference", "=id")
    list_select_related = ("seller", "destination", "decided_by")
    readonly_fields = (
        "seller",
        "destination",
        "amount",
        "currency",
        "status",
        "requested_at",
        "decided_by",
        "decided_at",
        "approved_by",
        "approved_at",
        "rejected_by",
        "rejected_at",
        "paid_by",
        "paid_at",
    )
    fields = (*readonly_fields, "reference", "note", "journal")
    actions = ["approve", "mark_paid", "reject"]

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "journal")

    @admin.display(description=_("journal entries"))
    def journal(self, obj):
        return entries_link(f"payout:{obj.pk}") if obj.pk else "—"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Approve"), permissions=["change"])
    def approve(self, request, queryset):
        _run(
            self,
            request,
            queryset,
            lambda p, staff: services.payout_approve(payout=p, staff=staff),
            _("%(n)d payout(s) approved."),
        )

    @admin.action(
        description=_("Mark paid (enter the bank reference first)"), permissions=["change"]
    )
    def mark_paid(self, request, queryset):
        _run(
            self,
            request,
            queryset,
            lambda p, staff: services.payout_mark_paid(
                payout=p, staff=staff, reference=p.reference
            ),
            _("%(n)d payout(s) marked paid."),
        )

    @admin.action(
        description=_("Reject (money back to the seller's available balance)"),
        permissions=["change"],
    )
    def reject(self, request, queryset):
        _run(
            self,
            request,
            queryset,
            lambda p, staff: services.payout_reject(payout=p, staff=staff, note=p.note),
            _("%(n)d payout(s) rejected."),
        )
