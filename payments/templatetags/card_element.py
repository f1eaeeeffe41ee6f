"""The checkout page's in-page card element: the buyer's words for the acquirer's codes and
the locale the element speaks, so a decline reads as the order page does."""

from django import template
from django.utils.translation import get_language

from payments.errors import buyer_messages

register = template.Library()


@register.simple_tag
def card_element_messages():
    """Reason and guidance of every card code in the current language (staff's edits
    included), keyed by code, for the page script to show a decline or a failed 3-D Secure."""
    return buyer_messages("card")


@register.simple_tag
def card_element_locale():
    """The element's locale: the page's language (Stripe.js knows "zh" and "en")."""
    language = (get_language() or "").lower()
    if language.startswith("zh"):
        return "zh"
    if language.startswith("en"):
        return "en"
    return "auto"
