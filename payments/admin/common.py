"""What every admin of the platform shares: read-only records, money columns, bulk actions
that name each refusal."""

from django.contrib import admin, messages

from payments import services
from payments.money import format_money


def _each(modeladmin, request, queryset, act, done: str, *, name) -> None:
    """Apply ``act`` to each selected object: each refusal named with its reason, the rest
    counted in ``done``."""
    ok = 0
    for obj in queryset:
        try:
            act(obj)
        except services.PaymentError as exc:
            modeladmin.message_user(request, f"{name(obj)}: {exc}", messages.ERROR)
        else:
            ok += 1
    if ok:
        modeladmin.message_user(request, done % {"n": ok}, messages.SUCCESS)


def money_column(name: str, description, currency_field: str = "currency"):
    """A list column that shows a money field as ¥1,234.56 and still sorts by it."""

    @admin.display(description=description, ordering=name)
    def show(obj):
        return format_money(getattr(obj, name), getattr(obj, currency_field, "CNY") or "CNY")

    show.__name__ = f"{name}_money"
    return show


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
