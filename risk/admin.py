from django.contrib import admin

from risk.models import Assessment, ListEntry, Rule


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = ("name", "feature", "operator", "value", "score", "action", "reason_code", "enabled")
    list_editable = ("enabled",)
    list_filter = ("enabled", "action")


@admin.register(ListEntry)
class ListEntryAdmin(admin.ModelAdmin):
    list_display = ("kind", "field", "value", "note", "created_at")
    list_filter = ("kind", "field")
    search_fields = ("value",)


@admin.register(Assessment)
class AssessmentAdmin(admin.ModelAdmin):
    list_display = ("created_at", "subject", "user_ref", "score", "decision", "reasons")
    list_filter = ("decision",)
    search_fields = ("subject", "user_ref")
    readonly_fields = ("subject", "user_ref", "score", "decision", "reasons", "features", "created_at")
