"""Settlement files: store once, parse (streaming), bulk-load, match set-based (DESIGN.md §7)."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import inspect
import io
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import PurePath
from typing import IO

from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import Case, Count, Exists, F, OuterRef, Q, Sum, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from marketplace import clearing as shop_clearing
from payments.accounts import backend_for
from payments.channels.base import ChannelError, SettlementFileError
from payments.channels.registry import backend_class
from payments.models import Attempt, ChannelAccount, Refund
from payments.states import AttemptStatus
from reconciliation import alerts, loading, matching
from reconciliation.calendar import business_day_add
from reconciliation.models import (
    Discrepancy,
    ReconcileRun,
    ReconciliationAlert,
    SellerClearing,
    SettlementDay,
    SettlementFile,
    SettlementLine,
    Statement,
)
from reconciliation.runs import RunRecorder, runs_of_file_serialised

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
KINDS = [k.value for k in Discrepancy.Kind]
#: what a broken download or detail file raises while being read
FILE_ERRORS = (
    SettlementFileError,
    UnicodeError,
    zipfile.BadZipFile,
    gzip.BadGzipFile,
    EOFError,
    zlib.error,
)


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

CHUNK = 1 << 20


def settlement_file_store(
    *,
    account: ChannelAccount,
    content: bytes | IO[bytes],
    name: str,
    day: dt.date | None = None,
) -> SettlementFile:
    """The raw file (bytes or a binary stream), put in storage once per sha256: the same bytes
    again reuse the row. Read in chunks, never whole."""
    stream = io.BytesIO(content) if isinstance(content, bytes | bytearray | memoryview) else content
    with _seekable(stream) as source:
        digest, size = _digest(source)
        file = SettlementFile.objects.filter(sha256=digest).first()
        if file is None:
            storage = SettlementFile._meta.get_field("raw").storage
            suffix = "".join(PurePath(name).suffixes)[-16:]
            stored = storage.save(f"settlements/{account.code}/{digest}{suffix}", File(source))
            try:
                with transaction.atomic():
                    file = SettlementFile.objects.create(
                        sha256=digest,
                        channel_code=account.code,
                        day=day,
                        name=name[:255],
                        raw=stored,
                        size=size,
                    )
            except IntegrityError:  # stored at the same moment by another run
                storage.delete(stored)
                file = SettlementFile.objects.get(sha256=digest)
            else:
                return file
    if day and file.day is None:
        SettlementFile.objects.filter(pk=file.pk).update(day=day)
        file.day = day
    return file


@contextmanager
def _seekable(stream: IO[bytes]):
    """The stream itself when it seeks, else a temporary copy of it that does."""
    try:
        seekable = stream.seekable()
    except (AttributeError, ValueError):
        seekable = False
    if seekable:
        yield stream
        return
    with tempfile.TemporaryFile() as copy:
        shutil.copyfileobj(stream, copy, CHUNK)
        copy.seek(0)
        yield copy


def _digest(stream: IO[bytes]) -> tuple[str, int]:
    start = stream.tell()
    digest, size = hashlib.sha256(), 0
    while chunk := stream.read(CHUNK):
        digest.update(chunk)
        size += len(chunk)
    stream.seek(start)
    return digest.hexdigest(), size


# ---------------------------------------------------------------------------------------------
# Reconciling


def settlement_file_reconcile(
    *,
    settlement_file: SettlementFile,
    account: ChannelAccount,
    day: dt.date | None = None,
    progress: Callable[[ReconcileRun], None] | None = None,
) -> ReconcileResult:
    """Parse, load, match and state the day. All or nothing: on a bad file nothing of this
    reconciliation is kept, the raw file is marked failed and ReconcileError says why.

    The day is ``day`` when given (a pull asks the channel for one day), else the one the file
    states, else the day the file was stored with (``--date``). The run's progress is kept on
    a :class:`ReconcileRun` (and passed to ``progress`` as it moves)."""
    recorder = RunRecorder(settlement_file, callback=progress)
    try:
        with transaction.atomic():
            result = _reconcile(settlement_file, account, day, recorder)
    except FILE_ERRORS as exc:
        message = _one_line(
            f"{settlement_file.name}: {exc.__class__.__name__}: {exc}"
            if not isinstance(exc, SettlementFileError)
            else f"{settlement_file.name}: {exc}"
        )
        _failed(settlement_file, account, day, message, recorder)
        raise ReconcileError(message) from exc
    except ReconcileError as exc:
        _failed(settlement_file, account, day, str(exc), recorder)
        raise
    except BaseException as exc:
        recorder.finish(status=ReconcileRun.Status.FAILED, error=_one_line(repr(exc))[:500])
        raise
    recorder.finish(status=ReconcileRun.Status.DONE, matched=result.matched)
    statement = Statement.objects.get(account=account, day=dt.date.fromisoformat(result.date))
    alerts.statement_check(statement=statement)
    return result


def _failed(
    file: SettlementFile,
    account: ChannelAccount,
    day: dt.date | None,
    message: str,
    recorder: RunRecorder,
) -> None:
    with transaction.atomic():
        SettlementFile.objects.filter(pk=file.pk).update(
            status=SettlementFile.Status.FAILED, error=message
        )
    file.status, file.error = SettlementFile.Status.FAILED, message
    recorder.finish(status=ReconcileRun.Status.FAILED, error=message)
    alerts.alert_raise(
        account=account,
        day=day or file.day or timezone.localdate(),
        kind=ReconciliationAlert.Kind.FILE_REFUSED,
        text=f"{account.code}: the settlement file was refused — {message}",
    )


class _NamedStream:
    """The stored stream under the file's own name, which some parsers read (a bare UnionPay
    ZM file states its day only there); everything else is the stream's."""

    def __init__(self, stream: IO[bytes], name: str):
        self._stream, self.name = stream, name

    def __getattr__(self, attribute):
        return getattr(self._stream, attribute)

    def __iter__(self):
        return iter(self._stream)


def _open(account: ChannelAccount, stream: IO[bytes], name: str = ""):
    """The channel's parser over the stored stream, read as it goes."""
    cls = backend_class(account.backend)
    if name:
        stream = _NamedStream(stream, name)
    if "merchant_id" in inspect.signature(cls.open_settlement).parameters and account.merchant_id:
        return cls.open_settlement(stream, merchant_id=account.merchant_id)
    return cls.open_settlement(stream)


def _states_totals(totals) -> bool:
    stated = (totals.payments, totals.refunds, totals.lines)
    stated += (totals.gross, totals.refunded, totals.fees)
    return any(value is not None for value in stated)


def _reconcile(
    file: SettlementFile, account: ChannelAccount, day: dt.date | None, recorder: RunRecorder
) -> ReconcileResult:
    runs_of_file_serialised(file, recorder.run)
    matching.file_clear(file_ids=[file.pk])
    with file.open_raw() as raw:
        parsed = _open(account, raw, file.name)

        def read(count: int) -> None:
            recorder.read(count, raw.tell())

        loading.lines_load(
            file_id=file.pk, currency=account.currency, lines=parsed.lines(), progress=read
        )
        totals = parsed.totals  # the parser has checked the file's own totals by now
    if totals.merchant_id and account.merchant_id and totals.merchant_id != account.merchant_id:
        raise SettlementFileError(
            f"the file is for merchant {totals.merchant_id}, not {account.merchant_id} of account "
            f"{account.code}"
        )
    day = day or totals.day or file.day
    if day is None:
        raise ReconcileError(f"{file.name}: the file does not say its day; give --date")

    # Re-running a day replaces what an earlier run of that day produced.
    recorder.stage("matching")
    Statement.objects.filter(account=account, day=day).delete()
    earlier = SettlementFile.objects.filter(channel_code=account.code, day=day).exclude(pk=file.pk)
    matching.file_clear(file_ids=earlier.values_list("pk", flat=True))
    earlier.filter(status=SettlementFile.Status.RECONCILED).update(
        status=SettlementFile.Status.STORED
    )

    matching.classify(file_id=file.pk, account_id=account.pk, day=day)
    counts = dict.fromkeys(KINDS, 0)
    on_lines = 0
    rows = (
        Discrepancy.objects.filter(file=file)
        .values("kind")
        .annotate(
            n=Count("id"),
            on_lines=Count("line_id"),
        )
    )
    for row in rows:
        counts[row["kind"]] = row["n"]
        on_lines += row["on_lines"]

    agg = SettlementLine.objects.filter(file=file).aggregate(
        payments=Count("id", filter=Q(kind="payment")),
        refunds=Count("id", filter=Q(kind="refund")),
        gross=Sum("amount", filter=Q(kind="payment")),
        refunded=Sum("amount", filter=Q(kind="refund")),
        fees=Sum("fee"),
    )
    gross, refunded, fees = _money(agg["gross"]), _money(agg["refunded"]), _money(agg["fees"])
    currency = account.currency
    currencies = set(
        SettlementLine.objects.filter(file=file).values_list("currency", flat=True).distinct()
    )
    if len(currencies) == 1:
        currency = currencies.pop()  # e.g. a PayPal account that charges USD only
    elif currencies:
        gross, refunded, fees = file_totals_cny(file, account)
    net = gross - refunded - fees
    lines_count = agg["payments"] + agg["refunds"]
    matched = lines_count - on_lines
    statement = Statement.objects.create(
        account=account,
        day=day,
        file=file,
        count=lines_count,
        gross=gross,
        refunded=refunded,
        fees=fees,
        net=net,
        currency=currency,
        expected_settlement_date=business_day_add(
            day,
            account.settlement_days,
            calendar=alerts.policy_for(account).calendar,
        ),
        matched=matched,
        discrepancies=sum(counts.values()),
    )
    recorder.stage("clearing")
    seller_clearing_build(statement=statement)
    file.day, file.status, file.error = day, SettlementFile.Status.RECONCILED, ""
    file.save(update_fields=["day", "status", "error"])
    return ReconcileResult(
        channel=account.code,
        date=day.isoformat(),
        lines=lines_count,
        payments=agg["payments"],
        refunds=agg["refunds"],
        gross=f"{gross:.2f}",
        refunded=f"{refunded:.2f}",
        fees=f"{fees:.2f}",
        net=f"{net:.2f}",
        file_totals_agree=True if _states_totals(totals) else NO_TOTALS,
        matched=matched,
        discrepancies=counts,
    )


def file_totals_cny(file: SettlementFile, account: ChannelAccount) -> tuple[Decimal, ...]:
    """A file's gross, refunded and fees in the account's currency (CNY), each foreign line at
    the rate its attempt was charged at — the rate the journal booked it at. States a day
    mixing currencies, and values a foreign-currency settlement when it reaches the bank."""
    rates = dict(
        Attempt.objects.filter(
            account=account,
            out_trade_no__in=SettlementLine.objects.filter(file=file)
            .exclude(currency=account.currency)
            .values("out_trade_no"),
        )
        .exclude(fx_rate=None)
        .values_list("out_trade_no", "fx_rate")
    )
    totals = {"payment": Decimal(0), "refund": Decimal(0), "fee": Decimal(0)}
    rows = SettlementLine.objects.filter(file=file).values_list(
        "kind", "out_trade_no", "amount", "fee", "currency"
    )
    for kind, out_trade_no, amount, fee, currency in rows.iterator():
        rate = Decimal(1) if currency == account.currency else rates.get(out_trade_no)
        if rate is None:
            continue  # not ours: a discrepancy already says so
        totals[kind] += _money(amount * rate)
        totals["fee"] += _money((fee or 0) * rate)
    return totals["payment"], totals["refund"], totals["fee"]


# ---------------------------------------------------------------------------------------------
# Clearing of seller amounts


def settled_payment_ids(*, statement: Statement):
    """Public ids of the payments the statement's file confirms as settled, as a subquery: our
    succeeded attempts of the account with a payment line of the same trade number, amount
    and currency (a fee that differs does not change what was paid). An attempt refunded as a
    double charge paid nothing. Set-based: one ``EXISTS`` join, no loop."""
    lines = SettlementLine.objects.filter(
        file_id=statement.file_id,
        kind=SettlementLine.Kind.PAYMENT,
        out_trade_no=OuterRef("out_trade_no"),
        amount=OuterRef("line_amount"),
        currency=OuterRef("line_currency"),
    )
    return (
        Attempt.objects.filter(account_id=statement.account_id, status=AttemptStatus.SUCCEEDED)
        # what the channel reports: the foreign amount of an attempt charged in one
        .annotate(
            line_amount=Coalesce("charge_amount", "amount"),
            line_currency=Case(
                When(~Q(charge_currency=""), then=F("charge_currency")), default=F("currency")
            ),
        )
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
                statement=statement,
                seller_id=row.seller_id,
                currency=row.currency,
                orders=row.orders,
                gross=row.gross,
                commission=row.commission,
                net=row.net,
            )
            for row in rows
        ]
    )


# ---------------------------------------------------------------------------------------------
# Pulling


def settlement_pull(*, codes: list[str] | None = None, day: dt.date | None = None) -> list[dict]:
    """Download, store and reconcile each enabled account's file of ``day`` (default:
    yesterday). A channel without a file, or with a bad one, is reported, never raised; a file
    not yet published is tried again later (see :func:`settlement_day_try`)."""
    day = day or (timezone.localdate() - dt.timedelta(days=1))
    accounts = (
        ChannelAccount.objects.all() if codes else ChannelAccount.objects.filter(enabled=True)
    )
    if codes:
        accounts = accounts.filter(code__in=codes)
    return [settlement_day_try(account=account, day=day) for account in accounts.order_by("code")]


def settlement_retry_due(*, now: dt.datetime | None = None) -> list[dict]:
    """Beat: try again every day whose file was not yet published and whose next try is due."""
    now = now or timezone.now()
    due = (
        SettlementDay.objects.filter(
            status=SettlementDay.Status.WAITING,
            next_try_at__lte=now,
        )
        .select_related("account")
        .order_by("next_try_at", "pk")
    )
    return [settlement_day_try(account=sday.account, day=sday.day, now=now) for sday in due]


def _deadline(account: ChannelAccount, day: dt.date) -> dt.datetime:
    end_of_day = matching.day_bounds(day)[1]
    return end_of_day + dt.timedelta(hours=alerts.policy_for(account).deadline_hours)


def settlement_day_try(
    *, account: ChannelAccount, day: dt.date, now: dt.datetime | None = None
) -> dict:
    """One try at an account's file of a day. Not published yet: wait (doubling from the
    policy's first retry, never past the deadline) and try again; at the deadline the day is
    ``missing`` and Finance is alerted."""
    now = now or timezone.now()
    sday, _created = SettlementDay.objects.get_or_create(
        account=account,
        day=day,
        defaults={"deadline": _deadline(account, day)},
    )
    entry: dict = {"channel": account.code, "date": day.isoformat()}
    sday.tries += 1
    try:
        content = backend_for(account).download_settlement(day)
    except ChannelError as exc:
        error = _one_line(f"{exc.code}: {exc}" if exc.code else str(exc))
        entry.update(status="no_file", error=error)
        sday.last_error = error
        if now >= sday.deadline:
            sday.status, sday.next_try_at = SettlementDay.Status.MISSING, None
            entry["missing"] = True
            alerts.alert_raise(
                account=account,
                day=day,
                kind=ReconciliationAlert.Kind.FILE_MISSING,
                text=f"{account.code} {day}: no settlement file by its deadline "
                f"{timezone.localtime(sday.deadline):%Y-%m-%d %H:%M} after {sday.tries} tries "
                f"({error})",
            )
        else:
            policy = alerts.policy_for(account)
            wait = min(policy.first_retry_minutes * 2 ** (sday.tries - 1), policy.max_retry_minutes)
            sday.status = SettlementDay.Status.WAITING
            sday.next_try_at = min(now + dt.timedelta(minutes=wait), sday.deadline)
            entry["retry_at"] = sday.next_try_at.isoformat()
        sday.save()
        return entry
    file = settlement_file_store(
        account=account, content=content, name=f"{account.code}_{day:%Y%m%d}", day=day
    )
    sday.file, sday.next_try_at = file, None
    try:
        result = settlement_file_reconcile(settlement_file=file, account=account, day=day)
    except ReconcileError as exc:
        entry.update(status="failed", error=str(exc))
        sday.status, sday.last_error = SettlementDay.Status.FAILED, str(exc)
    else:
        entry.update(status="reconciled", result=result.as_dict())
        sday.status, sday.last_error = SettlementDay.Status.RECONCILED, ""
    sday.save()
    return entry
