"""Starting a payment: validate, record, supersede what the buyer left open, score, open."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext as _

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
) -> Payment:
    """Create a payment, score it, and open it at the best channel (failing over as needed).

    ``reference`` names what is paid for (the shop hands ``order.payable``); ``risk_facts``
    is what the payer's shop knows that risk should weigh; ``ordering`` the ranking of methods
    the buyer was shown, kept on the payment (``client["ordering"]``) for staff.

    The answer is the Payment in one of: pending (an action for the buyer), succeeded (settled
    at once, e.g. balance), failed (reason + guidance), challenge, review or blocked.
    """
    if method not in Method.values:
        raise PaymentError(_("Unknown payment method %(method)s.") % {"method": method})
    amount = Decimal(amount)
    if amount <= 0 or amount != amount.quantize(CENT):
        raise PaymentError(_("The amount must be positive, with at most two decimals."))
    reference = str(reference)
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
    )
    _supersede_open_payments(reference=reference, buyer=buyer, keep=payment)
    decision = risk_assess(payment, risk_facts or PayableFacts())
    if decision == "allow":
        return open_at_channel(payment, tried=())
    payment = Payment.objects.get(pk=payment.pk)
    if three_d_secure_requested(payment):  # the card channel's 3-D Secure is the step-up
        return open_at_channel(payment, tried=())
    return payment


def _supersede_open_payments(*, reference: str, buyer, keep: Payment) -> None:
    """The buyer switched methods: close what the earlier payment of the same thing left open
    at its channel so it cannot be paid any more. Where a channel cannot close, the earlier
    payment stays pending; if it is paid anyway the shop refunds the second success."""
    earlier = Payment.objects.filter(
        reference=reference, buyer=buyer, status=PaymentStatus.PENDING
    ).exclude(pk=keep.pk)
    for payment in earlier:
        open_ids = payment.attempts.filter(status__in=ATTEMPT_OPEN).values_list("pk", flat=True)
        for attempt_id in open_ids:
            close_quietly(attempt_id)
        with transaction.atomic():
            locked = Payment.objects.select_for_update().get(pk=payment.pk)
            still_open = locked.attempts.filter(status__in=ATTEMPT_OPEN).exists()
            if locked.status == PaymentStatus.PENDING and not still_open:
                transitions.apply(locked, "cancel", failure_code="SUPERSEDED")
