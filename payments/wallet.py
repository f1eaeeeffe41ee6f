"""The buyer's Cardex balance: see it, see its history, top it up through any other method.

A top-up is an ordinary payment with a ``topup:`` reference; when it succeeds the wallet
credits the buyer (a receiver of ``payment_succeeded``, connected in ``PaymentsConfig``)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.dispatch import receiver
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from accounts import throttles
from payments import ledger, services, signals
from payments.client import client_from_request
from payments.models import Attempt, JournalLine, Method, Payment
from payments.payables import PayableRef, order_number_of

TOPUP_PREFIX = PayableRef.prefix(PayableRef.TOPUP)
# How the buyer's statement names each kind of movement on their wallet.
STATEMENT_LABELS = {
    "wallet_topup": _("Top-up"),
    "payment_captured": _("Paid for an order"),
    "refund": _("Refund"),
    "refund_sent": _("Refund"),
}
TOPUP_METHODS = [
    (m.value, m.label) for m in Method if m not in (Method.BALANCE, Method.CARD_INSTALMENTS)
]


@receiver(signals.payment_succeeded, dispatch_uid="payments.wallet.topup")
def on_payment_succeeded(sender, payment, **kwargs) -> None:
    """A top-up's money moves from clearing to the buyer's wallet (once: the key)."""
    if payment.reference.startswith(TOPUP_PREFIX):
        ledger.post(
            key=f"topup:{payment.public_id}",
            kind="wallet_topup",
            reference=payment.reference,
            lines=[
                (ledger.CLEARING, payment.amount),
                (ledger.buyer_wallet(payment.buyer_id), -payment.amount),
            ],
            memo="wallet top-up",
        )


class TopUpForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Amount"),
        min_value=Decimal("1.00"),
        max_value=Decimal("20000.00"),
        decimal_places=2,
    )
    method = forms.ChoiceField(label=_("Pay with"), choices=TOPUP_METHODS)


@login_required
@require_http_methods(["GET", "POST"])
@throttles.throttle(throttles.PAY)
def wallet(request):
    form = TopUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        reference = PayableRef.topup(uuid.uuid4().hex[:20])
        payment = services.payment_start(
            buyer=request.user,
            reference=reference,
            amount=form.cleaned_data["amount"],
            currency="CNY",
            method=form.cleaned_data["method"],
            subject=str(_("Cardex balance top-up")),
            client=client_from_request(request),
            return_url=f"{settings.SITE_URL}/wallet/",
            expires_at=timezone.now() + timedelta(minutes=30),
        )
        return redirect("wallet:topup", public_id=payment.public_id)
    code = ledger.buyer_wallet(request.user.id)
    lines = (
        JournalLine.objects.filter(account__code=code)
        .select_related("entry")
        .order_by("-entry__posted_at")[:50]
    )
    orders = _order_numbers([line.entry.reference for line in lines])
    history = [
        {
            "at": line.entry.posted_at,
            "label": STATEMENT_LABELS.get(line.entry.kind, line.entry.kind),
            "amount": -line.amount,
            "order_number": orders.get(line.entry.reference),
        }
        for line in lines
    ]
    return render(
        request,
        "payments/wallet.html",
        {
            "balance": ledger.balance(code, natural=True),
            "history": history,
            "form": form,
        },
    )


@login_required
def topup(request, public_id):
    payment = (
        Payment.objects.filter(
            public_id=public_id, buyer=request.user, reference__startswith=TOPUP_PREFIX
        )
        .prefetch_related("attempts__account")
        .first()
    )
    if payment is None:
        raise Http404
    from payments.presenters import payment_as_dict
    from payments.qr import qr_svg

    data = payment_as_dict(payment)
    action = data.get("action") or {}
    qr = qr_svg(action["qr"], title=str(_("Scan to pay"))) if action.get("qr") else None
    template = "payments/_topup_status.html" if request.htmx else "payments/topup.html"
    response = render(
        request, template, {"payment": payment, "data": data, "action": action, "qr": qr}
    )
    if request.htmx and payment.status != "pending":
        response.status_code = 286  # htmx: stop polling, the outcome is final
    return response


def _order_numbers(references: list[str]) -> dict[str, str]:
    """The order each statement line belongs to, by its entry's reference: a payment
    reference (``order:<number>``) names it directly; the balance channel's own movements
    carry the attempt's ``out_trade_no``, whose payment names it."""
    numbers = {ref: number for ref in references if (number := order_number_of(ref))}
    rest = [ref for ref in references if ref and ref not in numbers]
    for out_trade_no, reference in Attempt.objects.filter(out_trade_no__in=rest).values_list(
        "out_trade_no", "payment__reference"
    ):
        if number := order_number_of(reference):
            numbers[out_trade_no] = number
    return numbers
