"""What the payment platform announces. Receivers run inside the transaction that changed the
payment, so the shop's reaction (delivery, refund request) commits or rolls back with it.

Every signal is sent with ``sender=Payment`` (or ``Refund``) and keyword ``payment`` /
``refund``.
"""

from django.dispatch import Signal

payment_succeeded = Signal()  # payment: the money is ours; deliver or ask for a refund
payment_failed = Signal()  # payment: final failure; the order stays payable
payment_status_changed = (
    Signal()
)  # payment: any other change the shop may show (challenge, review…)
refund_succeeded = Signal()  # refund: money went back to the buyer
refund_failed = Signal()  # refund: the channel refused; staff must act
refund_declined = Signal()  # refund: Finance declined it; no money left, the asker reverts
#: dispute (a ProviderDispute) and payment: a channel opened a dispute (a chargeback, a
#: PayPal case) on the payment — hold what it paid for
chargeback_opened = Signal()
#: dispute and payment: the dispute closed (``dispute.outcome``: won, lost, closed)
chargeback_closed = Signal()
