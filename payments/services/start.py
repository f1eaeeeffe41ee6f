"""Starting a payment: validate, record, supersede what the buyer left open, score, open."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext as _

from config.prepared import PreparedRead
from payments import fx
from payments.channels.base import ClientInfo
from payments.models import Method, Payment
from payments.payables import PayableFacts, PayableRef
from payments.services import transitions
from payments.services.closing import close_quietly
from payments.services.common import CENT, PaymentError
from payments.services.failover import open_at_channel
from payments.services.risk import risk_assess, three_d_secure_requested
from payments.states import ATTEMPT_OPEN, PaymentStatus

DEFAULT_INSTALMENTS = 3


def payment_start(
    *,
    buyer,
    reference: PayableRef | str,
    amount: Decimal,
    currency: str,
    method: str,
    subject: str,
    client: ClientInfo,
    return_url: str,
    expires_at: dt.datetime,
    instalments: int | None = None,
    risk_facts: PayableFacts | None = None,
    ordering: dict | None = None,
    charge_currency: str = "",
) -> Payment:
    """Create a payment, score it, and open it at the best channel (failing over as needed).

    ``reference`` names what is paid for (the shop hands ``order.payable``); ``risk_facts``
    is what the payer's shop knows that risk should weigh; ``ordering`` the ranking of methods
    the buyer was shown, kept on the payment (``client["ordering"]``) for staff.
    ``charge_currency``: the buyer pays in that currency, converted at its current rate
    (recorded on the payment and its attempts); a missing or stale rate raises PaymentError
    before anything is created.

    The answer is the Payment in one of: pending (an action for the buyer), succeeded (settled
    at once, e.g. balance), failed (reason + guidance), challenge, review or blocked.
    """
    if method not in Method.values:
        raise PaymentError(_("Unknown payment method %(method)s.") % {"method": method})
    amount = Decimal(amount)
    if amount <= 0 or amount != amount.quantize(CENT):
        raise PaymentError(_("The amount must be positive, with at most two decimals."))
    reference = str(reference)
    charge = _charge_fields(amount, currency, charge_currency)
    if method == Method.CARD_INSTALMENTS and not instalments:
        instalments = DEFAULT_INSTALMENTS
    payment = Payment.objects.create(
        reference=reference,
        buyer=buyer,
        method=method,
        amount=amount,
        currency=currency,
        subject=subject[:128],
        client={
            "ip": client.ip,
            "user_agent": client.user_agent[:255],
            "device": client.device,
            "device_id": getattr(client, "device_id", "")[:120],
            "language": client.language,
            "region": client.region,
            "return_url": return_url,
            **({"ordering": ordering} if ordering else {}),
        },
        instalments=instalments,
        expires_at=expires_at,
        **charge,
    )
    _supersede_open_payments(reference=reference, buyer=buyer, keep=payment)
    decision = risk_assess(payment, risk_facts or PayableFacts())
    if decision == "allow":
        return open_at_channel(payment, tried=())
    payment = Payment.objects.get(pk=payment.pk)
    if three_d_secure_requested(payment):  # the card channel's 3-D Secure is the step-up
        return open_at_channel(payment, tried=())
    return payment


def _charge_fields(amount: Decimal, currency: str, charge_currency: str) -> dict:
    """The foreign-currency fields of a payment charged in ``charge_currency`` (none when it
    is the price's own currency)."""
    charge_currency = (charge_currency or "").upper()
    if not charge_currency or charge_currency == currency:
        return {}
    if currency != fx.HOME:
        raise PaymentError(_("Only CNY prices can be charged in another currency."))
    try:
        price = fx.price(amount, charge_currency)
    except fx.RateUnavailable as exc:
        raise PaymentError(exc.message) from None
    if price.amount <= 0:
        raise PaymentError(
            _("This amount is too small to charge in %(currency)s.") % {"currency": price.currency}
        )
    return {
        "charge_currency": price.currency,
        "charge_amount": price.amount,
        "fx_rate": price.quote.rate,
        "fx_rate_at": price.quote.at,
        "fx_source": price.quote.source[:80],
    }


# asked at every payment start: compiled once per connection
_EARLIER_PENDING = PreparedRead(
    lambda reference, buyer_id, keep: Payment.objects.filter(
        reference=reference, buyer_id=buyer_id, status=PaymentStatus.PENDING
    ).exclude(pk=keep),
    reference=str,
    buyer_id=int,
    keep=int,
)


def _supersede_open_payments(*, reference: str, buyer, keep: Payment) -> None:
    """The buyer switched methods: close what the earlier payment of the same thing left open
    at its channel so it cannot be paid any more. Where a channel cannot close, the earlier
    payment stays pending; if it is paid anyway the shop refunds the second success."""
    earlier = _EARLIER_PENDING.all(reference=reference, buyer_id=keep.buyer_id, keep=keep.pk)
    for payment in earlier:
        open_ids = payment.attempts.filter(status__in=ATTEMPT_OPEN).values_list("pk", flat=True)
        for attempt_id in open_ids:
            close_quietly(attempt_id)
        with transaction.atomic():
            locked = Payment.objects.select_for_update().get(pk=payment.pk)
            still_open = locked.attempts.filter(status__in=ATTEMPT_OPEN).exists()
            if locked.status == PaymentStatus.PENDING and not still_open:
                transitions.apply(locked, "cancel", failure_code="SUPERSEDED")
