"""Selectors of the buyer's order page: what it shows, read from the order, its latest
payment and the buyer's checkout offer. They only read; the views add the request's own
bits (the codes' audited reveal, a refusal notice) and render.

The page is in exactly one state (docs/checkout.md "States"); :func:`order_checkout_status`
is the cheap part the status poll needs, :func:`order_checkout_state` the whole page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from config.prepared import PreparedRead
from marketplace.models import Order
from marketplace.services.checkout import order_checkout_offer
from payments.client import Client
from payments.models import Method, Payment
from payments.money import format_money
from payments.ordering import Offer, RankedMethod, money_text
from payments.presenters import latest_attempt, payment_as_dict
from payments.qr import qr_svg
from payments.states import ATTEMPT_OPEN, PaymentStatus, RefundStatus

DELIVERED = {Order.Status.DELIVERED, Order.Status.COMPLETED, Order.Status.DISPUTED}
# While the order can still change on its own (a channel notice, a reviewer, delivery), the
# status fragment polls; once it is final the page stops asking.
LIVE = {Order.Status.AWAITING_PAYMENT, Order.Status.PAID, Order.Status.UNDER_REVIEW}
# States in which the buyer can (still, or again) choose a method.
PAYING = {"choose", "pending", "timeout", "failed"}
POLL_SECONDS = 2


@dataclass(frozen=True)
class Status:
    """The live status line: a state for machines (``data-state``) and words for people."""

    state: str
    label: str
    detail: str = ""


@dataclass(frozen=True)
class CheckoutStatus:
    """What the status poll compares and shows: the state, the key of what is on screen."""

    order: Order
    payment: Payment | None
    state: str
    key: str
    status: Status
    polling: bool
    method_label: str

    def context(self) -> dict[str, Any]:
        return {
            "order": self.order,
            "state": self.state,
            "state_key": self.key,
            "status": self.status,
            "polling": self.polling,
            "poll_seconds": POLL_SECONDS,
        }


@dataclass(frozen=True)
class CheckoutState:
    """The whole page: the status, the payment's panel, and the offer while paying."""

    live: CheckoutStatus
    payment_data: dict[str, Any] | None
    panel: dict[str, Any] | None
    attempt_open: bool
    offer: Offer | None
    selected: str | None
    next_best: RankedMethod | None
    remaining: int
    refunds: list[dict[str, Any]]

    @property
    def state(self) -> str:
        return self.live.state

    def context(self) -> dict[str, Any]:
        order = self.live.order
        return {
            **self.live.context(),
            "brand": order.listing.brand,
            "payment": self.live.payment,
            "payment_data": self.payment_data,
            "method_label": self.live.method_label,
            "panel": self.panel,
            "attempt_open": self.attempt_open,
            "ranking": self.offer.ranking if self.offer else None,
            "plans": self.offer.plans if self.offer else (),
            "selected": self.selected,
            "next_best": self.next_best,
            "remaining": self.remaining,
            "refunds": self.refunds,
            "remaining_text": f"{self.remaining // 60:02d}:{self.remaining % 60:02d}",
            "guarantee_hours": order.listing.brand.guarantee_hours,
            **_currency_context(self.offer),
            "charged_text": (self.payment_data or {}).get("charge", {}).get("text", ""),
            "amount_text": money_text(order.amount, order.currency),
            "unit_price_text": money_text(order.unit_price, order.currency),
        }


def _currency_context(offer: Offer | None) -> dict[str, Any]:
    """The "pay in" choice: the price in each foreign currency some method charges (with
    the methods that do), or why it cannot be charged now; the buyer's own preselected."""
    if offer is None or not (offer.prices or offer.unavailable):
        return {"fx": None}
    labels = {m.method: m.label for m in offer.ranking.usable}
    prices = [
        {
            "currency": code,
            "text": price.text,
            "methods": ", ".join(str(labels[m]) for m in offer.methods_charging(code)),
        }
        for code, price in sorted(offer.prices.items())
    ]
    unavailable = [{"currency": c, "reason": r} for c, r in sorted(offer.unavailable.items())]
    # Methods whose accounts charge only foreign currencies (PayPal outside China): what they
    # charge even when the buyer keeps the CNY price.
    converted = []
    for ranked in offer.ranking.usable:
        code = offer.charged_in(ranked.method)
        if code != offer.currency and code in offer.prices:
            converted.append({"method": ranked.label, "text": offer.prices[code].text})
    return {
        "fx": {
            "home": offer.currency,
            "preferred": offer.preferred,
            "prices": prices,
            "unavailable": unavailable,
            "converted": converted,
            # the rates on screen, sent back with the choice (Offer.choose refuses another)
            "seen": " ".join(
                f"{code}:{price.quote.rate}" for code, price in sorted(offer.prices.items())
            ),
        }
    }


def order_latest_payment(*, order: Order) -> Payment | None:
    """The order's most recent payment by its buyer, attempts and accounts prefetched."""
    return (
        _order_payments(order)
        .prefetch_related("attempts__account")
        .order_by("-created_at", "-pk")
        .first()
    )


def order_payment_waiting(*, order: Order) -> bool:
    """Whether a payment of the order is waiting at its channel for the buyer (one small
    query): the buyer is paying, so what other methods or currencies would cost can wait."""
    return _PENDING_PAYMENT.exists(reference=order.payment_reference, buyer_id=order.buyer_id)


# read at every poll of a waiting order: compiled once
_PENDING_PAYMENT = PreparedRead(
    lambda reference, buyer_id: Payment.objects.filter(
        reference=reference, buyer_id=buyer_id, status=PaymentStatus.PENDING
    ),
    reference=str,
    buyer_id=int,
)


def _order_payments(order: Order):
    """The order's payments by its buyer."""
    return Payment.objects.filter(reference=order.payment_reference, buyer_id=order.buyer_id)


def order_checkout_status(*, order: Order) -> CheckoutStatus:
    """The page's state and status line (two queries: the order is given)."""
    payment = order_latest_payment(order=order)
    state = _state(order, payment)
    label = str(Method(payment.method).label) if payment else ""
    return CheckoutStatus(
        order=order,
        payment=payment,
        state=state,
        key=_key(order, payment),
        status=_status(order, state, label),
        polling=order.status in LIVE and state not in {"closed", "blocked"},
        method_label=label,
    )


def order_checkout_state(*, order: Order, client: Client) -> CheckoutState:
    """Everything the order page shows for this buyer on this client."""
    live = order_checkout_status(order=order)
    payment, state = live.payment, live.state
    data = payment_as_dict(payment) if payment else None
    offer = (
        order_checkout_offer(order=order, client=client)
        if order.is_payable and state in PAYING
        else None
    )
    ranking = offer.ranking if offer else None
    next_best = None
    if ranking and payment and state in {"failed", "timeout"}:
        next_best = ranking.next_best(after=payment.method)
    selected = payment.method if payment and state == "pending" else None
    if ranking and (selected is None or not ranking.is_usable(selected)):
        usable = ranking.usable
        selected = next_best.method if next_best else (usable[0].method if usable else None)
    attempt = latest_attempt(payment) if payment else None
    remaining = max(0, int((order.expires_at - timezone.now()).total_seconds()))
    return CheckoutState(
        live=live,
        payment_data=data,
        panel=_action_panel(data.get("action") if data else None, live.method_label),
        attempt_open=bool(attempt and attempt.status in ATTEMPT_OPEN),
        offer=offer,
        selected=selected,
        next_best=next_best,
        remaining=remaining,
        refunds=_refunds(payment) if payment and payment.is_paid else [],
    )


def _refunds(payment: Payment) -> list[dict[str, Any]]:
    """The payment's refunds as the buyer reads them: how much, when, and where the money
    goes back to (a refund to the balance is there at once; others take the bank's days)."""
    method = Method(payment.method)
    if method == Method.BALANCE:
        where = _("back to your Cardex balance, available at once")
    else:
        where = _(
            "back to %(method)s; it usually shows there within 1–5 working days "
            "(a card can take up to 15)"
        ) % {"method": method.label}
    return [
        {
            "amount": refund.amount,
            # what went back in the currency the buyer paid in, when not CNY
            "charged": format_money(refund.charge_amount, refund.charge_currency)
            if refund.charge_currency
            else "",
            "status": refund.get_status_display(),
            "succeeded": refund.status == RefundStatus.SUCCEEDED,
            "at": refund.settled_at or refund.created_at,
            "where": where,
        }
        for refund in payment.refunds.exclude(status=RefundStatus.FAILED).order_by("created_at")
    ]


def _state(order: Order, payment: Payment | None) -> str:
    """One word for what the page is showing; the page re-renders when it changes."""
    if order.status in DELIVERED:
        return "delivered"
    if order.status == Order.Status.PAID:
        return "paid"
    if order.status == Order.Status.UNDER_REVIEW:
        return "review"
    if order.status == Order.Status.REFUNDED:
        return "refunded"
    if order.status in {Order.Status.EXPIRED, Order.Status.CANCELLED} or not order.is_payable:
        return "closed"
    if payment is None:
        return "choose"
    if payment.status == PaymentStatus.PENDING:
        return "timeout" if payment.failure_code == "TIMEOUT" else "pending"
    if payment.status == PaymentStatus.EXPIRED:
        return "timeout"
    if payment.status in {PaymentStatus.FAILED, PaymentStatus.CANCELLED}:
        return "failed"
    if payment.status in {PaymentStatus.CHALLENGE, PaymentStatus.REVIEW, PaymentStatus.BLOCKED}:
        return str(payment.status)
    if payment.is_paid:
        return "paid"
    return "choose"


def _status(order: Order, state: str, channel_label: str) -> Status:
    label = order.get_status_display()
    if state == "closed" and order.status == Order.Status.AWAITING_PAYMENT:
        label = Order.Status.EXPIRED.label  # lapsed; the release task has not caught up yet
    texts = {
        "choose": _("Choose how to pay before the reservation runs out."),
        "pending": _("Waiting for your payment with %(method)s…") % {"method": channel_label},
        "timeout": _("%(method)s did not confirm in time.") % {"method": channel_label},
        "failed": _("The payment did not go through."),
        "challenge": _("Enter the one-time code to continue."),
        "review": _("Your payment is being checked; this usually takes a few minutes."),
        "blocked": _("This payment cannot be accepted."),
        "paid": _("Payment received — delivering your codes…"),
        "delivered": _("Paid and delivered."),
        "closed": _("This order can no longer be paid."),
        "refunded": _("This order was refunded."),
    }
    return Status(state=state, label=str(label), detail=texts.get(state, ""))


def _key(order: Order, payment: Payment | None) -> str:
    """What the body on screen was rendered from; the poll compares it with the present."""
    head = f"{order.status}:{int(order.is_payable)}"
    if payment is None:
        return head
    return (
        f"{head}:{payment.public_id}:{payment.status}:{payment.failure_code}"
        f":{payment.refunded_amount}"
    )


def _action_panel(action: dict[str, Any] | None, method_label: str) -> dict[str, Any] | None:
    """The pending payment's next step, ready for the template (QR drawn here)."""
    if not action:
        return None
    widget = action.get("widget") or {}
    panel = {
        "type": action.get("type", "none"),
        "url": action.get("url") or widget.get("url") or widget.get("hosted_url", ""),
        "qr": action.get("qr", ""),
        "fields": sorted((action.get("fields") or {}).items()),
        "widget": widget,
    }
    plan = widget.get("installments") or {}
    panel["instalments"] = (plan.get("plan") or {}).get("count") if isinstance(plan, dict) else None
    if panel["type"] == "qr" and panel["qr"]:
        panel["svg"] = qr_svg(
            panel["qr"], title=_("QR code to pay with %(method)s") % {"method": method_label}
        )
    return panel
