"""The shop's journal entries (DESIGN.md §4): every money movement the shop causes.

Debit positive, credit negative (``payments.ledger``). The shop's chart of accounts is the
seller's family below (``seller:<id>:pending|available|payouts-requested|paid-out``) and the
platform's clearing and revenue. Money the payment platform received
for an order sits in ``CLEARING`` until the shop hands something over:

=====================  ==================================================  =========================
event                  lines                                               key
=====================  ==================================================  =========================
sale (delivery)        Dr CLEARING amount / Cr seller pending net          ``sale:<order>``
                       / Cr PLATFORM_REVENUE commission
dispute refunded       Dr seller pending net / Dr PLATFORM_REVENUE         ``dispute-refund:<id>``
                       commission / Cr CLEARING price (the refund then
                       takes the money out of CLEARING)
whole order refunded   the sale's remainder reversed the same way, from   ``order-refund:<order>``
(staff refund)         pending or available as the money then sits
funds mature           Dr seller pending / Cr seller available             ``mature:<order>``
payout requested       Dr seller available / Cr seller payouts-requested   ``payout-request:<id>``
payout paid            Dr seller payouts-requested / Cr seller paid-out    ``payout-paid:<id>``
payout rejected        Dr seller payouts-requested / Cr seller available   ``payout-release:<id>``
=====================  ==================================================  =========================

A channel's dispute (a chargeback, ``<id>`` the ProviderDispute's): when it opens, Dr seller
pending (available once matured) / Cr seller held — the seller's share of what is disputed
(``chargeback-hold:<id>``); won, the hold's lines reversed (``chargeback-release:<id>``);
lost, Dr seller held / Dr PLATFORM_REVENUE commission / Cr CHARGEBACK_LOSSES — what the
seller and the commission cover of the loss, any rest of the hold back where it came from
(``chargeback-debit:<id>``).

Every entry balances, so the journal as a whole sums to zero; keys make each posting
idempotent (a task or callback that runs twice posts once).
"""

from __future__ import annotations

from decimal import Decimal

from marketplace.models import Dispute, Order, Payout
from payments import ledger
from payments.models import JournalEntry

SELLER = ledger.party_register(ledger.Party("seller", assets=frozenset({"paid-out"})))


def seller_pending(user_id: int) -> str:
    """A seller's money for delivered codes still inside their guarantee window."""
    return SELLER.account(user_id, "pending")


def seller_available(user_id: int) -> str:
    """A seller's money they may ask to be paid out."""
    return SELLER.account(user_id, "available")


def seller_payouts_requested(user_id: int) -> str:
    """Money a seller asked to be paid out, held away from ``available`` until paid or refused
    (so two requests cannot spend the same balance)."""
    return SELLER.account(user_id, "payouts-requested")


def seller_paid_out(user_id: int) -> str:
    """What the shop has paid the seller (an asset: money that left for the seller)."""
    return SELLER.account(user_id, "paid-out")


def seller_held(user_id: int) -> str:
    """A seller's money held while a channel's dispute (a chargeback) over one of their orders
    is open: neither matures nor can be paid out."""
    return SELLER.account(user_id, "held")


def _seller_id(order: Order) -> int:
    return order.listing.seller_id


def sale_post(*, order: Order, codes: int) -> JournalEntry:
    net = order.seller_net_per_code * codes
    commission = order.unit_commission * codes
    return ledger.post(
        key=f"sale:{order.number}",
        kind="sale",
        lines=[
            (ledger.CLEARING, net + commission),
            (seller_pending(_seller_id(order)), -net),
            (ledger.PLATFORM_REVENUE, -commission),
        ],
        memo=f"order {order.number}: {codes} code(s) delivered",
        reference=order.payment_reference,
        currency=order.currency,
    )


def dispute_refund_post(*, dispute: Dispute) -> JournalEntry:
    """The dispute decided for the buyer. A dispute decided again after Finance declined its
    first refund posts under a key of its own (the declined refund's id)."""
    order = dispute.order
    again = f":after-{dispute.refund_id}" if dispute.refund_id else ""
    return ledger.post(
        key=f"dispute-refund:{dispute.pk}{again}",
        kind="dispute_refund",
        lines=[
            (seller_pending(_seller_id(order)), order.seller_net_per_code),
            (ledger.PLATFORM_REVENUE, order.unit_commission),
            (ledger.CLEARING, -order.unit_price),
        ],
        memo=f"order {order.number}: code #{dispute.code_id} refunded after dispute",
        reference=order.payment_reference,
        currency=order.currency,
    )


def dispute_refund_declined_post(*, dispute: Dispute, refund_id: int) -> JournalEntry:
    """Finance declined the dispute's refund: undo ``dispute_refund_post`` (the seller's
    money for the code back in pending, the commission back in revenue)."""
    order = dispute.order
    return ledger.post(
        key=f"dispute-refund-declined:{refund_id}",
        kind="dispute_refund",
        lines=[
            (seller_pending(_seller_id(order)), -order.seller_net_per_code),
            (ledger.PLATFORM_REVENUE, -order.unit_commission),
            (ledger.CLEARING, order.unit_price),
        ],
        memo=f"order {order.number}: refund for code #{dispute.code_id} declined by Finance",
        reference=order.payment_reference,
        currency=order.currency,
    )


def order_refund_post(*, order: Order, codes: int, matured: bool) -> JournalEntry:
    seller_account = (seller_available if matured else seller_pending)(_seller_id(order))
    return ledger.post(
        key=f"order-refund:{order.number}",
        kind="order_refund",
        lines=[
            (seller_account, order.seller_net_per_code * codes),
            (ledger.PLATFORM_REVENUE, order.unit_commission * codes),
            (ledger.CLEARING, -order.unit_price * codes),
        ],
        memo=f"order {order.number}: refunded in full after delivery",
        reference=order.payment_reference,
        currency=order.currency,
    )


def funds_mature_post(*, order: Order, amount: Decimal) -> JournalEntry:
    seller_id = _seller_id(order)
    return ledger.post(
        key=f"mature:{order.number}",
        kind="seller_funds_mature",
        lines=[(seller_pending(seller_id), amount), (seller_available(seller_id), -amount)],
        memo=f"order {order.number}: guarantee window over",
        reference=order.payment_reference,
        currency=order.currency,
    )


def payout_request_post(*, payout: Payout) -> JournalEntry:
    return ledger.post(
        key=f"payout-request:{payout.pk}",
        kind="payout_request",
        lines=[
            (seller_available(payout.seller_id), payout.amount),
            (seller_payouts_requested(payout.seller_id), -payout.amount),
        ],
        memo=f"payout #{payout.pk} requested",
        reference=f"payout:{payout.pk}",
        currency=payout.currency,
    )


def payout_paid_post(*, payout: Payout) -> JournalEntry:
    return ledger.post(
        key=f"payout-paid:{payout.pk}",
        kind="payout_paid",
        lines=[
            (seller_payouts_requested(payout.seller_id), payout.amount),
            (seller_paid_out(payout.seller_id), -payout.amount),
        ],
        memo=f"payout #{payout.pk} paid ({payout.reference})",
        reference=f"payout:{payout.pk}",
        currency=payout.currency,
    )


def payout_release_post(*, payout: Payout) -> JournalEntry:
    return ledger.post(
        key=f"payout-release:{payout.pk}",
        kind="payout_release",
        lines=[
            (seller_payouts_requested(payout.seller_id), payout.amount),
            (seller_available(payout.seller_id), -payout.amount),
        ],
        memo=f"payout #{payout.pk} rejected: money back to available",
        reference=f"payout:{payout.pk}",
        currency=payout.currency,
    )


def chargeback_hold_post(
    *, order: Order, dispute_id: int, amount: Decimal, matured: bool
) -> JournalEntry:
    seller_id = _seller_id(order)
    source = (seller_available if matured else seller_pending)(seller_id)
    return ledger.post(
        key=f"chargeback-hold:{dispute_id}",
        kind="chargeback_hold",
        lines=[(source, amount), (seller_held(seller_id), -amount)],
        memo=f"order {order.number}: held while provider dispute #{dispute_id} is open",
        reference=order.payment_reference,
        currency=order.currency,
    )


def chargeback_hold_lines(dispute_id: int) -> list[tuple[str, Decimal]]:
    """The hold's lines as posted (account code, amount), [] when nothing was held."""
    return [
        (code, amount)
        for code, amount in JournalEntry.objects.filter(
            key=f"chargeback-hold:{dispute_id}"
        ).values_list("lines__account__code", "lines__amount")
        if code
    ]


def chargeback_release_post(*, order: Order, dispute_id: int) -> JournalEntry | None:
    lines = [(code, -amount) for code, amount in chargeback_hold_lines(dispute_id)]
    if not lines:
        return None
    return ledger.post(
        key=f"chargeback-release:{dispute_id}",
        kind="chargeback_release",
        lines=lines,
        memo=f"order {order.number}: provider dispute #{dispute_id} won, funds released",
        reference=order.payment_reference,
        currency=order.currency,
    )


def chargeback_debit_post(
    *, order: Order, dispute_id: int, net: Decimal, commission: Decimal
) -> JournalEntry | None:
    """The lost dispute charged to the seller (``net``, out of the hold) and the platform's
    commission given up; what the hold held beyond ``net`` goes back where it came from."""
    hold = chargeback_hold_lines(dispute_id)
    held = next((-amount for code, amount in hold if code.endswith(":held")), Decimal(0))
    source = next((code for code, amount in hold if amount > 0), "")
    if held <= 0 or not source:
        return None
    net = min(net, held)
    lines = [
        (seller_held(_seller_id(order)), held),
        (source, -(held - net)),
        (ledger.PLATFORM_REVENUE, commission),
        (ledger.CHARGEBACK_LOSSES, -(net + commission)),
    ]
    return ledger.post(
        key=f"chargeback-debit:{dispute_id}",
        kind="chargeback_debit",
        lines=lines,
        memo=f"order {order.number}: provider dispute #{dispute_id} lost, charged to the seller",
        reference=order.payment_reference,
        currency=order.currency,
    )
