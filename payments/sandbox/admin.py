from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from payments.sandbox import core
from payments.sandbox.models import SandboxFault, SandboxMerchant, SandboxNotification, SandboxTrade


@admin.register(SandboxFault)
class SandboxFaultAdmin(admin.ModelAdmin):
    list_display = ("channel", "down", "slow_ms", "error_rate", "lose_notifications")
    list_editable = ("down", "slow_ms", "error_rate", "lose_notifications")


@admin.register(SandboxTrade)
class SandboxTradeAdmin(admin.ModelAdmin):
    list_display = ("channel", "out_trade_no", "trade_no", "amount", "status", "created_at")
    list_filter = ("channel", "status")
    actions = ["open_dispute", "close_dispute_won", "close_dispute_lost"]

    def _each(self, request, queryset, act, done):
        """Run ``act(provider, trade)`` on each selected trade of a channel that simulates
        disputes; the signed notice of each is queued to the merchant."""
        count = 0
        for trade in queryset:
            provider = core.provider(trade.channel)
            if not provider.supports_disputes:
                self.message_user(
                    request,
                    _("The %(channel)s simulator raises no disputes.") % {"channel": trade.channel},
                    messages.WARNING,
                )
                continue
            try:
                act(provider, trade)
            except ValueError as exc:
                self.message_user(request, f"{trade.trade_no}: {exc}", messages.ERROR)
                continue
            count += 1
        if count:
            self.message_user(request, done % {"count": count}, messages.SUCCESS)

    @admin.action(description=_("Dispute the payment (chargeback) and notify the merchant"))
    def open_dispute(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda provider, trade: provider.dispute_open(trade),
            _("%(count)s dispute(s) opened; the signed notices are on their way."),
        )

    @admin.action(description=_("Rule the dispute for the merchant (won)"))
    def close_dispute_won(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda provider, trade: provider.dispute_close(trade, won=True),
            _("%(count)s dispute(s) won by the merchant."),
        )

    @admin.action(description=_("Rule the dispute for the payer (lost)"))
    def close_dispute_lost(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda provider, trade: provider.dispute_close(trade, won=False),
            _("%(count)s dispute(s) lost by the merchant."),
        )


@admin.register(SandboxNotification)
class SandboxNotificationAdmin(admin.ModelAdmin):
    list_display = ("channel", "url", "attempts", "delivered", "last_status", "created_at")
    list_filter = ("channel", "delivered")
    exclude = ("body",)


@admin.register(SandboxMerchant)
class SandboxMerchantAdmin(admin.ModelAdmin):
    list_display = ("channel", "merchant_id")
    exclude = ("config",)
