"""The acquirer's itemized balance-change report (CHANNELS.md §4.6): the columns asked for,
and a CSV reader in MAJOR units that can be read again when its stream seeks."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import IO

from payments.channels.base import (
    CENT,
    FileTotals,
    ReplayableSettlementFile,
    SettlementFileError,
    SettlementLine,
)
from payments.channels.card.wire import (
    exponent,
    minor_unit,
)

REPORT_TYPE = "balance_change_from_activity.itemized.3"
#: The report columns we ask for, so the acquirer and our parser agree (§4.6: "always pass an
#: explicit columns list"). ``payment_metadata[merchant_id]`` is the account id we put in every
#: PaymentIntent's metadata: it is how a report names its merchant.
REPORT_COLUMNS = (
    "balance_transaction_id",
    "created_utc",
    "created",
    "available_on_utc",
    "currency",
    "gross",
    "fee",
    "net",
    "reporting_category",
    "source_id",
    "description",
    "payment_intent_id",
    "charge_id",
    "payment_method_type",
    "card_brand",
    "payment_metadata[out_trade_no]",
    "payment_metadata[merchant_id]",
    "refund_metadata[refund_no]",
)
REPORT_REQUIRED_COLUMNS = (
    "balance_transaction_id",
    "currency",
    "gross",
    "fee",
    "net",
    "reporting_category",
)
REPORT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class StripeReport(ReplayableSettlementFile):
    """A streaming reader of ``balance_change_from_activity.itemized.3`` CSVs (§4.6).

    Stripe report CSVs have a header row and no footer, so the file cannot state its own
    totals; instead every row must satisfy ``gross − fee = net`` (amounts in major units, at
    most the currency's decimals), the sums over the file must too, the last line must end with
    a line break (a cut-off file does not) and every row must have the header's field count.
    ``reporting_category`` ``charge`` rows (positive gross) are payments, ``refund`` rows
    (negative gross) refunds; other categories (fees, payouts, disputes…) count toward the
    sums but are not yielded. ``payment_metadata[merchant_id]`` — our account id, set on every
    intent — must be the same on every row that has it (and equal ``merchant_id`` when given);
    rows' local ``created`` dates must all be one day, which becomes ``totals.day``. UTF-8 with
    or without BOM, LF or CRLF. ``totals`` are the sums of the yielded lines.
    """

    def __init__(self, stream: IO[bytes], *, merchant_id: str | None = None):
        super().__init__(stream, merchant_id=merchant_id)
        self._last_raw = b""

    def _text_lines(self) -> Iterator[str]:
        for number, raw in enumerate(self._stream, start=1):
            self._last_raw = raw
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SettlementFileError(
                    f"report is not UTF-8 (byte {exc.start} of the line)", line_no=number
                ) from None

    def _parse(self) -> Iterator[SettlementLine]:
        reader = csv.reader(self._text_lines(), strict=True)
        header: list[str] | None = None
        merchant = ""
        day: dt.date | None = None
        payments = refunds = 0
        gross_total = refunded_total = fees_total = Decimal("0")
        quantum = CENT  # the finest minor unit among the report's currencies
        sum_gross = sum_fee = sum_net = Decimal("0")
        line_no = 0
        try:
            for record in reader:
                line_no = reader.line_num
                if not record or all(not field.strip() for field in record):
                    continue
                if header is None:
                    header = [name.strip() for name in record]
                    missing = [name for name in REPORT_REQUIRED_COLUMNS if name not in header]
                    if missing:
                        raise SettlementFileError(
                            f"not an itemized balance report: header lacks {', '.join(missing)}",
                            line_no=line_no,
                        )
                    continue
                if len(record) != len(header):
                    if not self._last_raw.endswith(b"\n"):
                        raise SettlementFileError(
                            "truncated report: the last line is cut off", line_no=line_no
                        )
                    raise SettlementFileError(
                        f"row has {len(record)} fields, the header {len(header)}", line_no=line_no
                    )
                row = dict(zip(header, (field.strip() for field in record), strict=True))
                currency = row["currency"].upper()
                quantum = min(quantum, minor_unit(currency))
                if len(currency) != 3 or not currency.isalpha():
                    raise SettlementFileError(
                        f"currency {row['currency']!r} is not an ISO code", line_no=line_no
                    )
                gross, fee, net = (
                    _report_amount(row[name], name, currency, line_no)
                    for name in ("gross", "fee", "net")
                )
                if gross - fee != net:
                    raise SettlementFileError(
                        f"gross {gross} − fee {fee} is not net {net}", line_no=line_no
                    )
                sum_gross, sum_fee, sum_net = sum_gross + gross, sum_fee + fee, sum_net + net
                row_merchant = row.get("payment_metadata[merchant_id]", "")
                if row_merchant:
                    if self._merchant_id and row_merchant != self._merchant_id:
                        raise SettlementFileError(
                            f"row of account {row_merchant}, not {self._merchant_id}",
                            line_no=line_no,
                        )
                    if merchant and row_merchant != merchant:
                        raise SettlementFileError(
                            f"rows of two accounts: {merchant} and {row_merchant}", line_no=line_no
                        )
                    merchant = row_merchant
                created_local = _report_time(row.get("created", ""), "created", line_no)
                created_utc = _report_time(row.get("created_utc", ""), "created_utc", line_no)
                row_day = created_local.date() if created_local else None
                if row_day:
                    if day and row_day != day:
                        raise SettlementFileError(
                            f"rows of more than one day: {day} and {row_day}", line_no=line_no
                        )
                    day = row_day
                category = row["reporting_category"]
                if category == "charge":
                    if gross <= 0:
                        raise SettlementFileError(f"charge row with gross {gross}", line_no=line_no)
                    kind, amount = "payment", gross
                    payments += 1
                    gross_total += gross
                elif category == "refund":
                    if gross >= 0:
                        raise SettlementFileError(f"refund row with gross {gross}", line_no=line_no)
                    kind, amount = "refund", -gross
                    refunds += 1
                    refunded_total += amount
                else:
                    continue
                fees_total += fee
                yield SettlementLine(
                    line_no=line_no,
                    kind=kind,
                    out_trade_no=row.get("payment_metadata[out_trade_no]", ""),
                    channel_trade_no=row.get("payment_intent_id", "") or row.get("charge_id", ""),
                    amount=amount.quantize(minor_unit(currency)),
                    fee=fee.quantize(minor_unit(currency)),
                    currency=currency,
                    occurred_at=created_utc.replace(tzinfo=dt.UTC) if created_utc else None,
                    refund_no=row.get("refund_metadata[refund_no]", "") if kind == "refund" else "",
                    raw=row,
                )
        except csv.Error as exc:
            raise SettlementFileError(
                f"malformed CSV in report: {exc}", line_no=reader.line_num or line_no
            ) from None
        if header is None:
            raise SettlementFileError("empty report: no header row")
        if self._last_raw and not self._last_raw.endswith(b"\n"):
            raise SettlementFileError(
                "truncated report: the last line has no line end", line_no=line_no
            )
        if sum_gross - sum_fee != sum_net:
            raise SettlementFileError(
                f"report sums disagree: gross {sum_gross} − fee {sum_fee} is not net {sum_net}",
                line_no=line_no,
            )
        self._totals = FileTotals(
            merchant_id=merchant or (self._merchant_id or ""),
            day=day,
            payments=payments,
            refunds=refunds,
            lines=payments + refunds,
            gross=gross_total.quantize(quantum),
            refunded=refunded_total.quantize(quantum),
            fees=fees_total.quantize(quantum),
        )


def _report_amount(value: str, name: str, currency: str, line_no: int) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise SettlementFileError(f"{name} {value!r} is not a number", line_no=line_no) from None
    if not amount.is_finite():
        raise SettlementFileError(f"{name} {value!r} is not a number", line_no=line_no)
    places = exponent(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-places)):
        raise SettlementFileError(
            f"{name} {value} has more than {places} decimals for {currency}", line_no=line_no
        )
    return amount


def _report_time(value: str, name: str, line_no: int) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.strptime(value, REPORT_TIME_FORMAT)
    except ValueError:
        raise SettlementFileError(
            f"{name} {value!r} is not yyyy-mm-dd HH:MM:SS", line_no=line_no
        ) from None
