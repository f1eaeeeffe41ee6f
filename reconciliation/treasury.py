"""Funds arriving (资金归集): each statement's net is expected in the account's bank account on
its settlement date; arrivals (imported from the bank's statement or recorded by Finance) are
matched to it, and the ledger moves the money from the channel's receivable to the bank."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import IO

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from payments import services as payment_services
from reconciliation import alerts
from reconciliation.models import (
    AccountPolicy,
    BankAccount,
    FundsArrival,
    ReconciliationAlert,
    Statement,
)
from reconciliation.services import file_totals_cny

#: how many days before an arrival's value date its statement may be expected
WINDOW_DAYS = 5
ZERO = Decimal("0.00")

#: bank statement CSV columns understood (docs/reconciliation.md): the first name present wins
COLUMNS = {
    "value_date": ("交易日期", "记账日期", "起息日", "value date", "date"),
    "amount": ("贷方金额", "收入金额", "credit", "amount"),
    "counterparty": ("对方户名", "对方账户名称", "counterparty"),
    "reference": ("摘要", "用途", "附言", "reference", "memo"),
}


class ImportRefused(ValueError):
    """A bank statement that cannot be read; the message names the line. Nothing is kept."""


class Status:
    EXPECTED, ARRIVED, LATE, SHORT = "expected", "arrived", "late", "short"


@dataclass(frozen=True)
class Position:
    statement: Statement
    expected: Decimal
    arrived: Decimal
    status: str


def statement_position(
    statement: Statement, *, today: dt.date | None = None, arrived: Decimal | None = None
) -> Position:
    """Where a statement's money is: arrived in full, short, late or still expected."""
    today = today or timezone.localdate()
    if arrived is None:
        arrived = statement.arrivals.aggregate(s=Sum("amount"))["s"] or ZERO
    expected = statement.net
    if arrived >= expected:
        status = Status.ARRIVED
    elif arrived > 0:
        status = Status.SHORT
    elif statement.expected_settlement_date < today:
        status = Status.LATE
    else:
        status = Status.EXPECTED
    return Position(statement, expected, arrived, status)


def _fingerprint(bank: BankAccount, *parts) -> str:
    return hashlib.sha256("|".join([bank.code, *map(str, parts)]).encode()).hexdigest()


def arrival_record(
    *,
    bank_account: BankAccount,
    value_date: dt.date,
    amount: Decimal,
    reference: str = "",
    counterparty: str = "",
    by=None,
    source: str = FundsArrival.Source.MANUAL,
    fingerprint: str = "",
) -> FundsArrival:
    """Keep an arrival, match it to the statement it settles and post it to the ledger."""
    if amount <= 0:
        raise ImportRefused(f"an arrival must be a positive amount, not {amount}")
    fingerprint = fingerprint or _fingerprint(
        bank_account,
        "manual",
        value_date,
        amount,
        reference,
        counterparty,
        timezone.now().isoformat(),
    )
    with transaction.atomic():
        arrival, created = FundsArrival.objects.get_or_create(
            fingerprint=fingerprint,
            defaults={
                "bank_account": bank_account,
                "value_date": value_date,
                "amount": amount,
                "currency": bank_account.currency,
                "reference": reference[:200],
                "counterparty": counterparty[:120],
                "source": source,
                "recorded_by": by,
            },
        )
        if created:
            _match(arrival)
    return arrival


def _match(arrival: FundsArrival) -> None:
    """The open statement of an account settling into this bank, expected up to WINDOW_DAYS
    before the value date: the one whose channel the text names, then the exact amount,
    then the nearest date. Posts the ledger movement and flags a short arrival."""
    codes = AccountPolicy.objects.filter(bank_account=arrival.bank_account).values("account_id")
    candidates = list(
        Statement.objects.filter(
            account_id__in=codes,
            arrivals__isnull=True,
            net__gt=0,
            expected_settlement_date__lte=arrival.value_date,
            expected_settlement_date__gte=arrival.value_date - dt.timedelta(days=WINDOW_DAYS),
        ).select_related("account")
    )
    if not candidates:
        return
    text = f"{arrival.reference} {arrival.counterparty}".lower()

    def rank(statement: Statement):
        named = statement.account.code.lower() in text or (
            statement.account.merchant_id and statement.account.merchant_id in text
        )
        return (
            not named,
            statement.net != arrival.amount,
            (arrival.value_date - statement.expected_settlement_date).days,
            statement.pk,
        )

    statement = min(candidates, key=rank)
    arrival.statement = statement
    arrival.save(update_fields=["statement"])
    payment_services.settlement_funds_receive(
        key=f"arrival:{arrival.pk}",
        account_code=statement.account.code,
        bank_code=arrival.bank_account.code,
        amount=arrival.amount,
        currency=arrival.currency,
        memo=f"{statement.account.code} {statement.day} settled into {arrival.bank_account.code}",
        booked_cny=_booked_cny(statement, arrival),
    )
    if arrival.currency != statement.currency:
        return  # converted by the bank: the difference is an exchange difference, not a shortfall
    if arrival.amount < statement.net:
        alerts.alert_raise(
            account=statement.account,
            day=statement.day,
            kind=ReconciliationAlert.Kind.FUNDS_SHORT,
            text=(
                f"{statement.account.code} {statement.day}: ¥{arrival.amount:,.2f} arrived in "
                f"{arrival.bank_account.code}, ¥{statement.net:,.2f} was expected "
                f"(short by ¥{statement.net - arrival.amount:,.2f})"
            ),
        )


def _booked_cny(statement: Statement, arrival: FundsArrival) -> Decimal | None:
    """What the receivable holds in CNY for a foreign-currency statement's arrival (its
    share of the statement's net at the booked rates); None for a CNY statement."""
    if statement.currency == "CNY":
        return None
    gross, refunded, fees = file_totals_cny(statement.file, statement.account)
    booked = gross - refunded - fees
    if arrival.currency == statement.currency and statement.net:
        booked = (booked * arrival.amount / statement.net).quantize(Decimal("0.01"))
    return booked


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [h.strip().lstrip("\ufeff").lower() for h in header]
    for name in names:
        if name.lower() in lowered:
            return lowered.index(name.lower())
    return None


def _cell(row: list[str], position: int | None) -> str:
    return row[position].strip() if position is not None and position < len(row) else ""


def _date(text: str) -> dt.date:
    text = text.strip().replace("/", "-")
    if len(text) == 8 and text.isdigit():
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return dt.date.fromisoformat(text[:10])


def bank_statement_import(
    *, bank_account: BankAccount, stream: IO[bytes], by=None
) -> list[FundsArrival]:
    """Import a bank statement CSV (UTF-8 or GBK): every credit line is an arrival. All or
    nothing: a line that cannot be read refuses the file, naming it. Importing the same
    statement again adds nothing."""
    raw = stream.read()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise ImportRefused("the statement is neither UTF-8 nor GBK")
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if not header:
        raise ImportRefused("the statement is empty")
    index = {name: _column(header, names) for name, names in COLUMNS.items()}
    missing = [COLUMNS[name][0] for name in ("value_date", "amount") if index[name] is None]
    if missing:
        raise ImportRefused(f"line 1: no column {', '.join(missing)} in the header")
    parsed = []
    for line_no, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            cell = row[index["amount"]].strip().replace(",", "").replace("¥", "")
            amount = Decimal(cell) if cell else ZERO
            value_date = _date(row[index["value_date"]])
        except (IndexError, InvalidOperation, ValueError):
            raise ImportRefused(f"line {line_no}: cannot read the date or the amount") from None
        if amount <= 0:
            continue  # debits and empty credit cells are not arrivals
        parsed.append(
            (
                line_no,
                value_date,
                amount,
                _cell(row, index["counterparty"]),
                _cell(row, index["reference"]),
                row,
            )
        )
    with transaction.atomic():
        return [
            arrival_record(
                bank_account=bank_account,
                value_date=value_date,
                amount=amount,
                counterparty=counterparty,
                reference=reference,
                by=by,
                source=FundsArrival.Source.IMPORT,
                fingerprint=_fingerprint(bank_account, "import", *row),
            )
            for line_no, value_date, amount, counterparty, reference, row in parsed
        ]


def treasury_check(*, today: dt.date | None = None) -> list[ReconciliationAlert]:
    """Beat, daily: alert for every statement whose money has not arrived by its date."""
    today = today or timezone.localdate()
    late = Statement.objects.filter(
        Q(account__reconciliation_policy__bank_account__isnull=False),
        arrivals__isnull=True,
        net__gt=0,
        expected_settlement_date__lt=today,
    ).select_related("account")
    raised = []
    for statement in late:
        alert = alerts.alert_raise(
            account=statement.account,
            day=statement.day,
            kind=ReconciliationAlert.Kind.FUNDS_LATE,
            text=(
                f"{statement.account.code} {statement.day}: ¥{statement.net:,.2f} expected on "
                f"{statement.expected_settlement_date} has not arrived"
            ),
        )
        if alert is not None:
            raised.append(alert)
    return raised
