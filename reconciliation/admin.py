from django.contrib import admin

from reconciliation.models import SettlementFile


@admin.register(SettlementFile)
class SettlementFileAdmin(admin.ModelAdmin):
    list_display = ("channel_code", "day", "name", "size", "status", "received_at")
    list_filter = ("channel_code", "status")
    exclude = ("content",)
    readonly_fields = ("channel_code", "day", "name", "sha256", "size", "status", "error", "received_at")
