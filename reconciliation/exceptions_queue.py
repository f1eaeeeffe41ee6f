"""The exceptions queue: staff confirm a payment the channel's file says it took and we never
heard of (DESIGN.md §7)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from payments import services as payment_services
from payments.models import Attempt, ChannelAccount, Payment
from payments.states import IllegalTransition
from reconciliation.models import Discrepancy, SettlementLine, Statement
from reconciliation.services import seller_clearing_build

CONFIRMABLE = {Discrepancy.Kind.STATUS_MISMATCH, Discrepancy.Kind.MISSING_OURS}


class DiscrepancyRefused(Exception):
    """The action cannot apply to this discrepancy; the message says why (for staff)."""


@dataclass(frozen=True)
class Confirmation:
    result: str  # "applied" or "duplicate" (a rejected notice is refused, nothing kept)
    payment_status: str
    resolution: str


def discrepancy_confirm_payment(*, discrepancy: Discrepancy, by, note: str = "") -> Confirmation:
    """Apply the channel's settlement line as the payment notice we never received — once.

    ``payments.services.payment_confirm_settled`` records the success (journal capture
    included) and announces it; the shop then delivers the order, or asks for a refund once
    this commits if it can no longer take it. The discrepancy is resolved with who, when, the
    note and what happened. Anything that cannot be confirmed raises
    :class:`DiscrepancyRefused` and changes nothing: the whole of it is one transaction
    (delivery included)."""
    try:
        with transaction.atomic():
            item = (
                Discrepancy.objects.select_for_update(of=("self",))
                .select_related("file", "line")
                .get(pk=discrepancy.pk)
            )
            account, attempt = _confirmable(item)
            line = item.line
            result, detail = payment_services.payment_confirm_settled(
                attempt=attempt,
                amount=line.amount,
                currency=line.currency,
                channel_trade_no=line.channel_trade_no,
                settled_at=line.occurred_at,
                evidence={"settlement_file": item.file_id, "line_no": line.line_no},
            )
            if result == "rejected":
                raise DiscrepancyRefused(
                    _("The payment platform refused the channel's record: %(detail)s")
                    % {"detail": detail}
                )
            payment = Payment.objects.get(pk=attempt.payment_id)
            resolution = _resolution(result, payment)
            text = resolution + (f" — {note.strip()}" if note.strip() else "")
            item.status, item.resolved_by, item.resolved_at = (
                Discrepancy.Status.RESOLVED,
                by,
                timezone.now(),
            )
            item.attempt, item.resolution = attempt, resolution[:255]
            item.note = f"{item.note}\nconfirmed payment: {text}".strip()
            item.save(
                update_fields=[
                    "status",
                    "resolved_by",
                    "resolved_at",
                    "attempt",
                    "resolution",
                    "note",
                ]
            )
            # The shop asks for a refund it needs once this commits: name it then.
            transaction.on_commit(lambda: _resolution_refresh(item.pk, result, attempt.payment_id))
            # The line now confirms a settled payment: the day's clearing takes it in.
            statement = Statement.objects.filter(file_id=item.file_id, account=account).first()
            if statement is not None:
                seller_clearing_build(statement=statement)
    except IllegalTransition as exc:
        raise DiscrepancyRefused(
            _("The payment cannot take this success (%(error)s); handle it by hand.")
            % {"error": exc}
        ) from exc
    item.refresh_from_db(fields=["resolution"])
    return Confirmation(result=result, payment_status=payment.status, resolution=item.resolution)


def _confirmable(item: Discrepancy) -> tuple[ChannelAccount, Attempt]:
    if item.status != Discrepancy.Status.OPEN:
        raise DiscrepancyRefused(
            _("It is already %(status)s.") % {"status": item.get_status_display()}
        )
    if item.kind not in CONFIRMABLE:
        raise DiscrepancyRefused(
            _(
                "Only a status mismatch or a payment missing on our side can be confirmed; this "
                "is %(kind)s."
            )
            % {"kind": item.get_kind_display()}
        )
    line = item.line
    if line is None or line.kind != SettlementLine.Kind.PAYMENT:
        raise DiscrepancyRefused(
            _(
                "Only a payment line of the channel's file can be confirmed (refunds settle "
                "through the platform)."
            )
        )
    account = ChannelAccount.objects.filter(code=item.file.channel_code).first()
    if account is None:
        raise DiscrepancyRefused(
            _("No channel account %(code)s.") % {"code": item.file.channel_code}
        )
    attempt = Attempt.objects.filter(account=account, out_trade_no=line.out_trade_no).first()
    if attempt is None:
        raise DiscrepancyRefused(
            _(
                "We have no attempt %(no)s on %(code)s: a dropped order without a record of ours "
                "must be handled by hand."
            )
            % {"no": line.out_trade_no, "code": account.code}
        )
    if attempt.channel_amount != line.amount or attempt.channel_currency != line.currency:
        raise DiscrepancyRefused(
            _(
                "The channel's amount %(line)s differs from our attempt's %(ours)s: an amount "
                "mismatch is for a person to decide."
            )
            % {
                "line": f"{line.amount} {line.currency}",
                "ours": f"{attempt.channel_amount} {attempt.channel_currency}",
            }
        )
    return account, attempt


def _resolution_refresh(discrepancy_id: int, result: str, payment_id: int) -> None:
    payment = Payment.objects.get(pk=payment_id)
    resolution = _resolution(result, payment)[:255]
    Discrepancy.objects.filter(pk=discrepancy_id).update(resolution=resolution)


def _resolution(result: str, payment: Payment) -> str:
    text = f"{result}: payment {payment.status}"
    refunds = list(payment.refunds.order_by("pk").values_list("refund_no", "amount", "status"))
    if refunds:
        text += "; " + ", ".join(f"refund {no} {amount} {status}" for no, amount, status in refunds)
    return text
