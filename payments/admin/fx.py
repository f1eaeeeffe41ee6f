"""The exchange-rate table Finance keeps: each save stamps who set the rate and when."""

from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from payments.fx import rate_text
from payments.models import FxRate


@admin.register(FxRate)
class FxRateAdmin(admin.ModelAdmin):
    list_display = ("currency", "rate_shown", "as_of", "source", "updated_by", "updated_at")
    fields = ("currency", "rate", "source", "as_of", "updated_by", "updated_at")
    readonly_fields = ("as_of", "updated_by", "updated_at")
    search_fields = ("currency",)

    @admin.display(description=_("CNY per unit"), ordering="rate")
    def rate_shown(self, obj):
        return rate_text(obj.rate)

    def save_model(self, request, obj, form, change):
        """A rate set by hand is a rate of now, by whoever saved it."""
        obj.currency = obj.currency.upper()
        obj.as_of = timezone.now()
        obj.updated_by = request.user
        if not obj.source or obj.source.startswith("sandbox"):
            obj.source = "rate table"  # stored as data, like the table source's default
        super().save_model(request, obj, form, change)
