"""``{{ amount|money }}`` and ``{{ amount|money:currency }}`` render ``¥1,234.56``."""

from django import template

from payments.money import format_money

register = template.Library()


@register.filter(name="money")
def money(amount, currency="CNY"):
    return format_money(amount, currency or "CNY")
