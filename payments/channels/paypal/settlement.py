"""The STL settlement report (CHANNELS.md §4.3): CSV records RH/FH/SH/CH/SB/SF/SC/RF/RC/FF
with unsigned amounts in minor units and DR/CR direction columns."""

from __future__ import annotations

import codecs
import csv
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

from payments.channels.base import (
    CENT,
    FileTotals,
    ReplayableSettlementFile,
    SettlementFileError,
    SettlementLine,
)

# Settlement report (STL, CHANNELS.md §4.3)
STL_VERSION = "009"
STL_COLUMNS = (
    "Transaction ID",
    "Invoice ID",
    "PayPal Reference ID",
    "PayPal Reference ID Type",
    "Transaction Event Code",
    "Transaction Initiation Date",
    "Transaction Completion Date",
    "Transaction Debit or Credit",
    "Gross Transaction Amount",
    "Gross Transaction Currency",
    "Fee Debit or Credit",
    "Fee Amount",
    "Fee Currency",
    "Custom Field",
    "Consumer ID",
    "Payment Tracking ID",
    "Store ID",
    "Bank Reference ID",
    "Credit Transactional Fee",
    "Credit Promotional Fee",
    "Credit Term",
)
STL_REQUIRED_COLUMNS = STL_COLUMNS[:14]
STL_DATE_FORMAT = "%Y/%m/%d %H:%M:%S %z"
#: T-codes read as money received for a sale (T00xx "PayPal account-to-account payment" family).
STL_PAYMENT_CODE_PREFIX = "T00"
#: T-codes read as a refund of an earlier payment.
STL_REFUND_CODES = frozenset({"T1107"})


def stl_file_name(day: dt.date, sequence: int = 1) -> str:
    """``STL-yyyymmdd.sequenceNumber.version.format`` (§4.3, spec 7.0.1)."""
    return f"STL-{day:%Y%m%d}.{sequence:02d}.{STL_VERSION}.CSV"


# ---------------------------------------------------------------------------------------------
# STL settlement report


class StlFile(ReplayableSettlementFile):
    """A streaming reader of PayPal's Settlement Report (STL, version 009; CHANNELS.md §4.3).

    Layout: ``RH`` (generation time, window, account id, version), ``FH`` (file sequence), then
    per section ``SH`` (period start/end, account id), ``CH`` (column names), ``SB`` rows,
    ``SF`` (per currency: total gross CR, total gross DR, total fee CR, total fee DR, all in
    minor units), ``SC`` (SB count); then ``RF`` (the same four totals per currency for the
    report), ``RC`` (SB count of the report) and ``FF`` (SB count of this file). The trailer
    field lists are our reading of the spec structure (§4.3 marks them unverified); every
    trailer record is checked against the sums of the SB rows it covers.

    Columns are looked up by the names in ``CH``, not by position. SB rows with T-code
    ``T00xx`` credited to us are payments, ``T1107`` debits are refunds; other rows (transfers,
    withdrawals, holds…) count toward the trailer checks but are not yielded. ``Custom Field``
    is our ``out_trade_no``; a refund's ``Invoice ID`` is our ``refund_no``; a payment's
    ``PayPal Reference ID`` of type ``ODR`` is the order id (else its Transaction ID is used).
    Amounts are unsigned minor units (×100 for every currency, spec: "100,00 yen and $100.00
    USD are both represented as 10000"). UTF-8 with or without BOM, LF or CRLF.

    ``totals`` adds up the payment and refund lines after the trailer records have agreed
    with every row; currencies are added together (one-currency accounts are the norm).
    """

    _replay_error = "the STL stream cannot be read twice"

    # -- parsing -------------------------------------------------------------------------------
    def _text_lines(self) -> Iterator[str]:
        for number, raw in enumerate(self._stream, start=1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise SettlementFileError(
                    f"STL file is not UTF-8 (byte {exc.start} of the line)", line_no=number
                ) from None

    def _parse(self) -> Iterator[SettlementLine]:
        reader = csv.reader(self._text_lines(), strict=True)
        state = _StlState()
        line_no = 0
        try:
            for record in reader:
                line_no = reader.line_num
                if not record or all(not field.strip() for field in record):
                    continue
                kind = record[0]
                if state.finished:
                    raise SettlementFileError(
                        f"record {kind!r} after the FF file footer", line_no=line_no
                    )
                handler = (
                    getattr(self, f"_record_{kind.lower()}", None) if kind in _STL_RECORDS else None
                )
                if handler is None:
                    raise SettlementFileError(
                        f"unknown STL record type {kind[:10]!r}", line_no=line_no
                    )
                line = handler(state, record, line_no)
                if line is not None:
                    yield line
        except csv.Error as exc:
            raise SettlementFileError(
                f"malformed CSV in STL file: {exc}", line_no=reader.line_num or line_no
            ) from None
        if not state.seen_rh:
            raise SettlementFileError("empty file: no RH report header")
        if not state.finished:
            raise SettlementFileError(
                "truncated STL file: it ends without the FF file footer", line_no=line_no
            )
        self._totals = FileTotals(
            merchant_id=state.account_id,
            day=state.day,
            payments=state.payments,
            refunds=state.refunds,
            lines=state.payments + state.refunds,
            gross=state.gross,
            refunded=state.refunded,
            fees=state.fees,
        )

    def _record_rh(self, state: _StlState, record: list[str], line_no: int) -> None:
        if state.seen_rh:
            raise SettlementFileError("second RH report header", line_no=line_no)
        if len(record) < 5:
            raise SettlementFileError("RH record has fewer than 5 fields", line_no=line_no)
        state.seen_rh = True
        state.account_id = record[3].strip()
        if not state.account_id:
            raise SettlementFileError("RH record has no account id", line_no=line_no)
        if self._merchant_id and state.account_id != self._merchant_id:
            raise SettlementFileError(
                f"STL file is for PayPal account {state.account_id}, not {self._merchant_id}",
                line_no=line_no,
            )
        return None

    def _require_rh(self, state: _StlState, kind: str, line_no: int) -> None:
        if not state.seen_rh:
            raise SettlementFileError(
                f"not a PayPal STL file: {kind} before the RH report header", line_no=line_no
            )

    def _record_fh(self, state: _StlState, record: list[str], line_no: int) -> None:
        self._require_rh(state, "FH", line_no)
        return None

    def _record_sh(self, state: _StlState, record: list[str], line_no: int) -> None:
        self._require_rh(state, "SH", line_no)
        if state.in_section:
            raise SettlementFileError("SH before the previous section's SC", line_no=line_no)
        if len(record) < 4:
            raise SettlementFileError("SH record has fewer than 4 fields", line_no=line_no)
        start = _stl_time(record[1], "SH period start", line_no)
        accounts = [field.strip() for field in record[3:5] if field.strip()]
        for account in accounts:
            if account != state.account_id:
                raise SettlementFileError(
                    f"section for account {account} in a report of {state.account_id}",
                    line_no=line_no,
                )
        if state.day is None:
            state.day = start.date()
        state.in_section = True
        state.section = _Sums()
        state.columns = {}
        return None

    def _record_ch(self, state: _StlState, record: list[str], line_no: int) -> None:
        if not state.in_section:
            raise SettlementFileError("CH column header outside a section", line_no=line_no)
        columns = {name.strip(): index for index, name in enumerate(record) if index}
        missing = [name for name in STL_REQUIRED_COLUMNS if name not in columns]
        if missing:
            raise SettlementFileError(f"CH lacks column(s): {', '.join(missing)}", line_no=line_no)
        state.columns = columns
        state.width = len(record)
        return None

    def _record_sb(
        self, state: _StlState, record: list[str], line_no: int
    ) -> SettlementLine | None:
        if not state.columns:
            raise SettlementFileError("SB row before the CH column header", line_no=line_no)
        if not (
            len(record) == state.width
            or (len(record) == state.width + 1 and not record[-1].strip())
        ):
            raise SettlementFileError(
                f"SB row has {len(record)} fields, CH names {state.width}", line_no=line_no
            )

        def col(name: str) -> str:
            index = state.columns.get(name)
            return record[index].strip() if index is not None and index < len(record) else ""

        direction = col("Transaction Debit or Credit")
        if direction not in ("DR", "CR"):
            raise SettlementFileError(
                f"Transaction Debit or Credit is {direction!r}, not DR/CR", line_no=line_no
            )
        gross = _stl_int(col("Gross Transaction Amount"), "Gross Transaction Amount", line_no)
        currency = col("Gross Transaction Currency")
        if len(currency) != 3:
            raise SettlementFileError(
                f"Gross Transaction Currency {currency!r} is not an ISO code", line_no=line_no
            )
        fee = _stl_int(col("Fee Amount") or "0", "Fee Amount", line_no)
        fee_direction = col("Fee Debit or Credit")
        if fee and fee_direction not in ("DR", "CR"):
            raise SettlementFileError(
                f"Fee Debit or Credit is {fee_direction!r}, not DR/CR", line_no=line_no
            )
        fee_currency = col("Fee Currency") or currency
        state.add(currency, gross, direction, fee_currency, fee, fee_direction)

        code = col("Transaction Event Code")
        if code.startswith(STL_PAYMENT_CODE_PREFIX) and direction == "CR":
            kind = "payment"
        elif code in STL_REFUND_CODES and direction == "DR":
            kind = "refund"
        else:
            return None
        amount = Decimal(gross) / 100
        fee_amount = (Decimal(fee) / 100) * (-1 if fee_direction == "CR" else 1)
        custom, invoice = col("Custom Field"), col("Invoice ID")
        reference, reference_type = col("PayPal Reference ID"), col("PayPal Reference ID Type")
        transaction_id = col("Transaction ID")
        completed = col("Transaction Completion Date") or col("Transaction Initiation Date")
        occurred = (
            _stl_time(completed, "Transaction Completion Date", line_no) if completed else None
        )
        if kind == "payment":
            state.payments += 1
            state.gross += amount
            out_trade_no, refund_no = custom or invoice, ""
            channel_trade_no = (
                reference if reference and reference_type == "ODR" else transaction_id
            )
        else:
            state.refunds += 1
            state.refunded += amount
            out_trade_no = custom or invoice
            refund_no = invoice if invoice and invoice != out_trade_no else ""
            channel_trade_no = reference or transaction_id
        state.fees += fee_amount
        raw = {name: record[index] for name, index in state.columns.items() if index < len(record)}
        return SettlementLine(
            line_no=line_no,
            kind=kind,
            out_trade_no=out_trade_no,
            channel_trade_no=channel_trade_no,
            amount=amount.quantize(CENT),
            fee=fee_amount.quantize(CENT),
            currency=currency,
            occurred_at=occurred,
            refund_no=refund_no,
            raw=raw,
        )

    def _record_sf(self, state: _StlState, record: list[str], line_no: int) -> None:
        if not state.in_section:
            raise SettlementFileError("SF section footer outside a section", line_no=line_no)
        _check_footer("SF", record, state.section, state.section_footers, line_no)
        return None

    def _record_sc(self, state: _StlState, record: list[str], line_no: int) -> None:
        if not state.in_section:
            raise SettlementFileError("SC section count outside a section", line_no=line_no)
        _check_count("SC", record, state.section.count, line_no)
        _check_all_footed("SF", state.section, state.section_footers, line_no)
        state.in_section = False
        state.section_footers = set()
        state.columns = {}
        return None

    def _record_rf(self, state: _StlState, record: list[str], line_no: int) -> None:
        self._close_body(state, "RF", line_no)
        _check_footer("RF", record, state.report, state.report_footers, line_no)
        return None

    def _record_rc(self, state: _StlState, record: list[str], line_no: int) -> None:
        self._close_body(state, "RC", line_no)
        _check_count("RC", record, state.report.count, line_no)
        _check_all_footed("RF", state.report, state.report_footers, line_no)
        state.report_counted = True
        return None

    def _record_ff(self, state: _StlState, record: list[str], line_no: int) -> None:
        self._close_body(state, "FF", line_no)
        if not state.report_counted:
            raise SettlementFileError("FF file footer before the RC report count", line_no=line_no)
        _check_count("FF", record, state.report.count, line_no)
        state.finished = True
        return None

    def _close_body(self, state: _StlState, kind: str, line_no: int) -> None:
        self._require_rh(state, kind, line_no)
        if state.in_section:
            raise SettlementFileError(
                f"{kind} inside a section that has no SC count", line_no=line_no
            )


_STL_RECORDS = frozenset({"RH", "FH", "SH", "CH", "SB", "SF", "SC", "RF", "RC", "FF"})


class _Sums:
    """Per-currency totals of SB rows, in minor units."""

    def __init__(self) -> None:
        self.count = 0
        self.by_currency: dict[str, list[int]] = {}

    def add(
        self,
        currency: str,
        gross: int,
        direction: str,
        fee_currency: str,
        fee: int,
        fee_direction: str,
    ) -> None:
        self.count += 1
        row = self.by_currency.setdefault(currency, [0, 0, 0, 0])
        row[0 if direction == "CR" else 1] += gross
        if fee:
            fee_row = self.by_currency.setdefault(fee_currency, [0, 0, 0, 0])
            fee_row[2 if fee_direction == "CR" else 3] += fee


class _StlState:
    def __init__(self) -> None:
        self.seen_rh = self.in_section = self.report_counted = self.finished = False
        self.account_id = ""
        self.day: dt.date | None = None
        self.columns: dict[str, int] = {}
        self.width = 0
        self.section = _Sums()
        self.report = _Sums()
        self.section_footers: set[str] = set()
        self.report_footers: set[str] = set()
        self.payments = self.refunds = 0
        self.gross = self.refunded = self.fees = Decimal("0")

    def add(
        self,
        currency: str,
        gross: int,
        direction: str,
        fee_currency: str,
        fee: int,
        fee_direction: str,
    ) -> None:
        self.section.add(currency, gross, direction, fee_currency, fee, fee_direction)
        self.report.add(currency, gross, direction, fee_currency, fee, fee_direction)


_FOOTER_FIELDS = ("total gross credit", "total gross debit", "total fee credit", "total fee debit")


def _check_footer(kind: str, record: list[str], sums: _Sums, seen: set[str], line_no: int) -> None:
    if len(record) < 6:
        raise SettlementFileError(f"{kind} record has fewer than 6 fields", line_no=line_no)
    currency = record[1].strip()
    if currency in seen:
        raise SettlementFileError(f"second {kind} for {currency}", line_no=line_no)
    seen.add(currency)
    stated = [
        _stl_int(record[i] or "0", f"{kind} {_FOOTER_FIELDS[i - 2]}", line_no) for i in range(2, 6)
    ]
    actual = sums.by_currency.get(currency, [0, 0, 0, 0])
    for name, said, summed in zip(_FOOTER_FIELDS, stated, actual, strict=True):
        if said != summed:
            raise SettlementFileError(
                f"{kind} {currency} {name} is {said} but the SB rows add up to {summed}",
                line_no=line_no,
            )


def _check_all_footed(kind: str, sums: _Sums, seen: set[str], line_no: int) -> None:
    missing = sorted(set(sums.by_currency) - seen)
    if missing:
        raise SettlementFileError(
            f"no {kind} totals for currency {', '.join(missing)}", line_no=line_no
        )


def _check_count(kind: str, record: list[str], counted: int, line_no: int) -> None:
    if len(record) < 2:
        raise SettlementFileError(f"{kind} record has no count", line_no=line_no)
    stated = _stl_int(record[1], f"{kind} count", line_no)
    if stated != counted:
        raise SettlementFileError(
            f"{kind} says {stated} SB rows but the file holds {counted}", line_no=line_no
        )


def _stl_int(value: str, what: str, line_no: int) -> int:
    value = value.strip()
    if not value.isdigit():
        raise SettlementFileError(
            f"{what} {value!r} is not an unsigned whole number", line_no=line_no
        )
    return int(value)


def _stl_time(value: str, what: str, line_no: int) -> dt.datetime:
    try:
        return dt.datetime.strptime(value.strip(), STL_DATE_FORMAT)
    except ValueError:
        raise SettlementFileError(
            f"{what} {value!r} is not yyyy/MM/dd HH:mm:ss ±hhmm", line_no=line_no
        ) from None
