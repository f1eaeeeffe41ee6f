from django.contrib import admin

from payments.sandbox.models import SandboxFault, SandboxMerchant, SandboxNotification, SandboxTrade


@admin.register(SandboxFault)
class SandboxFaultAdmin(admin.ModelAdmin):
    list_display = ("channel", "down", "slow_ms", "error_rate", "lose_notifications")
    list_editable = ("down", "slow_ms", "error_rate", "lose_notifications")


@admin.register(SandboxTrade)
class SandboxTradeAdmin(admin.ModelAdmin):
    list_display = ("channel", "out_trade_no", "trade_no", "amount", "status", "created_at")
    list_filter = ("channel", "status")


@admin.register(SandboxNotification)
class SandboxNotificationAdmin(admin.ModelAdmin):
    list_display = ("channel", "url", "attempts", "delivered", "last_status", "created_at")
    list_filter = ("channel", "delivered")
    exclude = ("body",)


@admin.register(SandboxMerchant)
class SandboxMerchantAdmin(admin.ModelAdmin):
    list_display = ("channel", "merchant_id")
    exclude = ("config",)
