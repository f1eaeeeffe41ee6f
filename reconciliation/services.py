"""Settlement files: store once, parse (streaming), bulk-load, match set-based (DESIGN.md §7)."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import inspect
import io
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from itertools import islice

from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, Subquery, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from marketplace import clearing as shop_clearing
from payments import services as payment_services
from payments.accounts import backend_for
from payments.channels.base import ChannelError, SettlementFileError
from payments.channels.registry import backend_class
from payments.models import Attempt, ChannelAccount, Payment, Refund
from payments.states import AttemptStatus, IllegalTransition, RefundStatus
from reconciliation.models import (
    Discrepancy,
    SellerClearing,
    SettlementFile,
    SettlementLine,
    Statement,
)

BATCH = 2000
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
KINDS = [k.value for k in Discrepancy.Kind]
#: what a broken download or detail file raises while being read
FILE_ERRORS = (SettlementFileError, UnicodeError, zipfile.BadZipFile, gzip.BadGzipFile, EOFError, zlib.error)


#: what ``file_totals_agree`` says of a file without totals (a bare UnionPay ZM detail file)
NO_TOTALS = "no totals in this file"


class ReconcileError(Exception):
    """A settlement file that could not be reconciled; the message is one line naming why."""


@dataclass(frozen=True)
class ReconcileResult:
    channel: str
    date: str
    lines: int
    payments: int
    refunds: int
    gross: str
    refunded: str
    fees: str
    net: str
    #: True once the parser has checked the file's own totals; NO_TOTALS when it states none
    file_totals_agree: bool | str
    matched: int
    discrepancies: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _money(value) -> Decimal:
    return (value or ZERO).quantize(CENT)


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


# ---------------------------------------------------------------------------------------------
# Storing


def settlement_file_store(*, account: ChannelAccount, content: bytes, name: str, day: dt.date | None = None) -> SettlementFile:
    """The raw file, stored once per sha256: the same bytes again reuse the row."""
    digest = hashlib.sha256(content).hexdigest()
    with transaction.atomic():
        file, created = SettlementFile.objects.get_or_create(
            sha256=digest,
            defaults={"channel_code": account.code, "day": day, "name": name[:255], "content": content, "size": len(content)},
        )
    if not created and day and file.day is None:
        SettlementFile.objects.filter(pk=file.pk).update(day=day)
        file.day = day
    return file


# ---------------------------------------------------------------------------------------------
# Reconciling


def settlement_file_reconcile(*, settlement_file: SettlementFile, account: ChannelAccount, day: dt.date | None = None) -> ReconcileResult:
    """Parse, load, match and state the day. All or nothing: on a bad file nothing of this
    reconciliation is kept, the raw file is marked failed and ReconcileError says why.

    The day is ``day`` when given (a pull asks the channel for one day), else the one the file
    states, else the day the file was stored with (``--date``)."""
    try:
        with transaction.atomic():
            return _reconcile(settlement_file, account, day)
    except FILE_ERRORS as exc:
        message = _one_line(f"{settlement_file.name}: {exc.__class__.__name__}: {exc}" if not isinstance(exc, SettlementFileError) else f"{settlement_file.name}: {exc}")
        with transaction.atomic():
            SettlementFile.objects.filter(pk=settlement_file.pk).update(status=SettlementFile.Status.FAILED, error=message)
        settlement_file.status, settlement_file.error = SettlementFile.Status.FAILED, message
        raise ReconcileError(message) from exc
    except ReconcileError as exc:
        with transaction.atomic():
            SettlementFile.objects.filter(pk=settlement_file.pk).update(status=SettlementFile.Status.FAILED, error=str(exc))
        settlement_file.status, settlement_file.error = SettlementFile.Status.FAILED, str(exc)
        raise


def _open(account: ChannelAccount, content: bytes, name: str = ""):
    """The channel's parser over the stored bytes; the stream carries the file's name, which
    some files need (a bare UnionPay ZM file states its day only there)."""
    cls = backend_class(account.backend)
    stream = io.BytesIO(content)
    stream.name = name
    if "merchant_id" in inspect.signature(cls.open_settlement).parameters and account.merchant_id:
        return cls.open_settlement(stream, merchant_id=account.merchant_id)
    return cls.open_settlement(stream)


def _states_totals(totals) -> bool:
    stated = (totals.payments, totals.refunds, totals.lines, totals.gross, totals.refunded, totals.fees)
    return any(value is not None for value in stated)


def _reconcile(file: SettlementFile, account: ChannelAccount, day: dt.date | None) -> ReconcileResult:
    SettlementLine.objects.filter(file=file).delete()
    parsed = _open(account, bytes(file.content), file.name)
    lines = iter(parsed.lines())
    while batch := list(islice(lines, BATCH)):
        SettlementLine.objects.bulk_create(
            [
                SettlementLine(
                    file=file, line_no=line.line_no, kind=line.kind, out_trade_no=line.out_trade_no[:64],
                    channel_trade_no=(line.channel_trade_no or "")[:64], refund_no=(line.refund_no or "")[:64],
                    amount=line.amount, fee=line.fee, currency=line.currency or account.currency,
                    status=(line.status or "")[:20], occurred_at=line.occurred_at,
                )
                for line in batch
            ]
        )
    totals = parsed.totals  # the parser has checked the file's own totals by now
    if totals.merchant_id and account.merchant_id and totals.merchant_id != account.merchant_id:
        raise SettlementFileError(f"the file is for merchant {totals.merchant_id}, not {account.merchant_id} of account {account.code}")
    day = day or totals.day or file.day
    if day is None:
        raise ReconcileError(f"{file.name}: the file does not say its day; give --date")

    # Re-running a day replaces what an earlier run of that day produced.
    Statement.objects.filter(account=account, day=day).delete()
    Discrepancy.objects.filter(file__channel_code=account.code, file__day=day).delete()
    Discrepancy.objects.filter(file=file).delete()
    earlier = SettlementFile.objects.filter(channel_code=account.code, day=day).exclude(pk=file.pk)
    SettlementLine.objects.filter(file__in=earlier).delete()
    earlier.filter(status=SettlementFile.Status.RECONCILED).update(status=SettlementFile.Status.STORED)

    matched = _match(file, account, day)
    counts = dict.fromkeys(KINDS, 0)
    for row in Discrepancy.objects.filter(file=file).values("kind").annotate(n=Count("id")):
        counts[row["kind"]] = row["n"]

    agg = SettlementLine.objects.filter(file=file).aggregate(
        payments=Count("id", filter=Q(kind="payment")),
        refunds=Count("id", filter=Q(kind="refund")),
        gross=Sum("amount", filter=Q(kind="payment")),
        refunded=Sum("amount", filter=Q(kind="refund")),
        fees=Sum("fee"),
    )
    gross, refunded, fees = _money(agg["gross"]), _money(agg["refunded"]), _money(agg["fees"])
    net = gross - refunded - fees
    lines_count = agg["payments"] + agg["refunds"]
    statement = Statement.objects.create(
        account=account, day=day, file=file, count=lines_count, gross=gross, refunded=refunded, fees=fees, net=net,
        currency=account.currency, expected_settlement_date=day + dt.timedelta(days=account.settlement_days),
        matched=matched, discrepancies=sum(counts.values()),
    )
    seller_clearing_build(statement=statement)
    file.day, file.status, file.error = day, SettlementFile.Status.RECONCILED, ""
    file.save(update_fields=["day", "status", "error"])
    return ReconcileResult(
        channel=account.code, date=day.isoformat(), lines=lines_count, payments=agg["payments"], refunds=agg["refunds"],
        gross=f"{gross:.2f}", refunded=f"{refunded:.2f}", fees=f"{fees:.2f}", net=f"{net:.2f}",
        file_totals_agree=True if _states_totals(totals) else NO_TOTALS, matched=matched,
        discrepancies=counts,
    )


def _match(file: SettlementFile, account: ChannelAccount, day: dt.date) -> int:
    """Classify every loaded line against our attempts/refunds (chunked ``in`` lookups) and
    find our succeeded attempts of the day the file lacks (one anti-join). Returns matched."""
    found: list[Discrepancy] = []
    matched = 0
    # keys occurring more than once in the file: every occurrence after the first is a duplicate
    dup_payments = set(
        SettlementLine.objects.filter(file=file, kind="payment").values("out_trade_no")
        .annotate(n=Count("id")).filter(n__gt=1).values_list("out_trade_no", flat=True)
    )
    dup_refunds = set(
        SettlementLine.objects.filter(file=file, kind="refund").exclude(refund_no="").values("refund_no")
        .annotate(n=Count("id")).filter(n__gt=1).values_list("refund_no", flat=True)
    )
    seen: set[tuple[str, str]] = set()
    query = SettlementLine.objects.filter(file=file).order_by("line_no", "id")
    chunk_iter = query.iterator(chunk_size=BATCH)
    while chunk := list(islice(chunk_iter, BATCH)):
        attempts = {
            a.out_trade_no: a
            for a in Attempt.objects.filter(account=account, out_trade_no__in={line.out_trade_no for line in chunk})
        }
        refund_nos = {line.refund_no for line in chunk if line.kind == "refund" and line.refund_no}
        refunds = {
            r.refund_no: r
            for r in Refund.objects.filter(attempt__account=account, refund_no__in=refund_nos).select_related("attempt")
        }
        for line in chunk:
            key = (line.kind, line.refund_no if line.kind == "refund" and line.refund_no else line.out_trade_no)
            dups = dup_refunds if line.kind == "refund" and line.refund_no else dup_payments if line.kind == "payment" else set()
            if key[1] in dups:
                if key in seen:
                    found.append(Discrepancy(file=file, kind="duplicate", line=line, actual=line.amount, attempt=attempts.get(line.out_trade_no), note=f"{key[1]} appears again in the file"))
                    continue
                seen.add(key)
            issue = _classify(file, line, attempts, refunds)
            if issue is None:
                matched += 1
            else:
                found.append(issue)
        if len(found) >= BATCH:
            Discrepancy.objects.bulk_create(found)
            found = []

    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    absent = (
        Attempt.objects.filter(account=account, status=AttemptStatus.SUCCEEDED, succeeded_at__gte=start, succeeded_at__lt=start + dt.timedelta(days=1))
        .exclude(out_trade_no__in=Subquery(SettlementLine.objects.filter(file=file, kind="payment").values("out_trade_no")))
    )
    for attempt in absent.iterator(chunk_size=BATCH):
        found.append(Discrepancy(file=file, kind="missing_channel", attempt=attempt, expected=attempt.amount, note=f"{attempt.out_trade_no} succeeded with us but is not in the file"))
        if len(found) >= BATCH:
            Discrepancy.objects.bulk_create(found)
            found = []
    Discrepancy.objects.bulk_create(found)
    return matched


def _classify(file, line, attempts, refunds) -> Discrepancy | None:
    if line.kind == "payment":
        attempt = attempts.get(line.out_trade_no)
        if attempt is None:
            return Discrepancy(file=file, kind="missing_ours", line=line, actual=line.amount, note=f"payment {line.out_trade_no} is not ours (dropped order?)")
        if attempt.amount != line.amount:
            return Discrepancy(file=file, kind="amount_mismatch", line=line, attempt=attempt, expected=attempt.amount, actual=line.amount, note=f"payment {line.out_trade_no}")
        if attempt.status != AttemptStatus.SUCCEEDED:
            return Discrepancy(file=file, kind="status_mismatch", line=line, attempt=attempt, expected=attempt.amount, actual=line.amount, note=f"the channel says paid, our attempt is {attempt.status}")
        if attempt.fee.quantize(CENT) != line.fee.quantize(CENT):
            return Discrepancy(file=file, kind="fee_mismatch", line=line, attempt=attempt, expected=attempt.fee, actual=line.fee, note=f"fee of {line.out_trade_no}")
        return None
    refund = refunds.get(line.refund_no) if line.refund_no else None
    if refund is None:
        attempt = attempts.get(line.out_trade_no)
        return Discrepancy(file=file, kind="missing_ours", line=line, attempt=attempt, actual=line.amount, note=f"refund {line.refund_no or '?'} of {line.out_trade_no} is not ours")
    if refund.amount != line.amount:
        return Discrepancy(file=file, kind="amount_mismatch", line=line, refund=refund, attempt=refund.attempt, expected=refund.amount, actual=line.amount, note=f"refund {line.refund_no}")
    if refund.status != RefundStatus.SUCCEEDED:
        return Discrepancy(file=file, kind="status_mismatch", line=line, refund=refund, attempt=refund.attempt, expected=refund.amount, actual=line.amount, note=f"the channel says refunded, our refund is {refund.status}")
    return None


# ---------------------------------------------------------------------------------------------
# Clearing of seller amounts


def settled_payment_ids(*, statement: Statement):
    """Public ids of the payments the statement's file confirms as settled, as a subquery: our
    succeeded attempts of the account with a payment line of the same trade number, amount
    and currency (a fee that differs does not change what was paid). An attempt refunded as a
    double charge paid nothing. Set-based: one ``EXISTS`` join, no loop."""
    lines = SettlementLine.objects.filter(
        file_id=statement.file_id, kind=SettlementLine.Kind.PAYMENT,
        out_trade_no=OuterRef("out_trade_no"), amount=OuterRef("amount"), currency=OuterRef("currency"),
    )
    return (
        Attempt.objects.filter(account_id=statement.account_id, status=AttemptStatus.SUCCEEDED)
        .filter(Exists(lines))
        .exclude(refunds__origin=Refund.Origin.DOUBLE_CHARGE)
        .values("payment__public_id")
    )


def seller_clearing_build(*, statement: Statement) -> list[SellerClearing]:
    """(Re)build the statement's clearing: per seller, the orders paid by payments its file
    confirmed as settled — count, gross, commission, seller net. Replaces any earlier clearing
    of the statement; a report, no journal entry."""
    SellerClearing.objects.filter(statement=statement).delete()
    rows = shop_clearing.seller_amounts(settled_payment_ids(statement=statement))
    return SellerClearing.objects.bulk_create(
        [
            SellerClearing(
                statement=statement, seller_id=row.seller_id, currency=row.currency, orders=row.orders,
                gross=row.gross, commission=row.commission, net=row.net,
            )
            for row in rows
        ]
    )


# ---------------------------------------------------------------------------------------------
# The exceptions queue: confirm a payment the channel says it took


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
                .select_related("file", "line").get(pk=discrepancy.pk)
            )
            account, attempt = _confirmable(item)
            line = item.line
            result, detail = payment_services.payment_confirm_settled(
                attempt=attempt, amount=line.amount, currency=line.currency,
                channel_trade_no=line.channel_trade_no, settled_at=line.occurred_at,
                evidence={"settlement_file": item.file_id, "line_no": line.line_no},
            )
            if result == "rejected":
                raise DiscrepancyRefused(_("The payment platform refused the channel's record: %(detail)s") % {"detail": detail})
            payment = Payment.objects.get(pk=attempt.payment_id)
            resolution = _resolution(result, payment)
            text = resolution + (f" — {note.strip()}" if note.strip() else "")
            item.status, item.resolved_by, item.resolved_at = Discrepancy.Status.RESOLVED, by, timezone.now()
            item.attempt, item.resolution = attempt, resolution[:255]
            item.note = f"{item.note}\nconfirmed payment: {text}".strip()
            item.save(update_fields=["status", "resolved_by", "resolved_at", "attempt", "resolution", "note"])
            # The shop asks for a refund it needs once this commits: name it then.
            transaction.on_commit(
                lambda: _resolution_refresh(item.pk, result, attempt.payment_id)
            )
            # The line now confirms a settled payment: the day's clearing takes it in.
            statement = Statement.objects.filter(file_id=item.file_id, account=account).first()
            if statement is not None:
                seller_clearing_build(statement=statement)
    except IllegalTransition as exc:
        raise DiscrepancyRefused(_("The payment cannot take this success (%(error)s); handle it by hand.") % {"error": exc}) from exc
    item.refresh_from_db(fields=["resolution"])
    return Confirmation(result=result, payment_status=payment.status, resolution=item.resolution)


def _confirmable(item: Discrepancy) -> tuple[ChannelAccount, Attempt]:
    if item.status != Discrepancy.Status.OPEN:
        raise DiscrepancyRefused(_("It is already %(status)s.") % {"status": item.get_status_display()})
    if item.kind not in CONFIRMABLE:
        raise DiscrepancyRefused(
            _("Only a status mismatch or a payment missing on our side can be confirmed; this is %(kind)s.") % {"kind": item.get_kind_display()}
        )
    line = item.line
    if line is None or line.kind != SettlementLine.Kind.PAYMENT:
        raise DiscrepancyRefused(_("Only a payment line of the channel's file can be confirmed (refunds settle through the platform)."))
    account = ChannelAccount.objects.filter(code=item.file.channel_code).first()
    if account is None:
        raise DiscrepancyRefused(_("No channel account %(code)s.") % {"code": item.file.channel_code})
    attempt = Attempt.objects.filter(account=account, out_trade_no=line.out_trade_no).first()
    if attempt is None:
        raise DiscrepancyRefused(
            _("We have no attempt %(no)s on %(code)s: a dropped order without a record of ours must be handled by hand.")
            % {"no": line.out_trade_no, "code": account.code}
        )
    if attempt.amount != line.amount or attempt.currency != line.currency:
        raise DiscrepancyRefused(
            _("The channel's amount %(line)s differs from our attempt's %(ours)s: an amount mismatch is for a person to decide.")
            % {"line": f"{line.amount} {line.currency}", "ours": f"{attempt.amount} {attempt.currency}"}
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


# ---------------------------------------------------------------------------------------------
# Pulling


def settlement_pull(*, codes: list[str] | None = None, day: dt.date | None = None) -> list[dict]:
    """Download, store and reconcile each enabled account's file of ``day`` (default:
    yesterday). A channel without a file, or with a bad one, is reported, never raised."""
    day = day or (timezone.localdate() - dt.timedelta(days=1))
    accounts = ChannelAccount.objects.all() if codes else ChannelAccount.objects.filter(enabled=True)
    if codes:
        accounts = accounts.filter(code__in=codes)
    report: list[dict] = []
    for account in accounts.order_by("code"):
        entry: dict = {"channel": account.code, "date": day.isoformat()}
        try:
            content = backend_for(account).download_settlement(day)
        except ChannelError as exc:
            entry.update(status="no_file", error=_one_line(f"{exc.code}: {exc}" if exc.code else str(exc)))
            report.append(entry)
            continue
        file = settlement_file_store(account=account, content=content, name=f"{account.code}_{day:%Y%m%d}", day=day)
        try:
            result = settlement_file_reconcile(settlement_file=file, account=account, day=day)
        except ReconcileError as exc:
            entry.update(status="failed", error=str(exc))
        else:
            entry.update(status="reconciled", result=result.as_dict())
        report.append(entry)
    return report
