"""The WeChat Pay trade bill (CHANNELS.md §2.6): gzip or plain text, backtick-prefixed rows
and two summary lines, streamed and checked against the summary; the ALL, SUCCESS, REFUND
and legacy layouts."""

from __future__ import annotations

import datetime as dt
import gzip
import zlib
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import IO

from payments.channels.base import (
    FileTotals,
    ReadOnceSettlementFile,
    SettlementFileError,
    SettlementLine,
    peek_stream,
)
from payments.channels.wechatpay.wire import (
    BEIJING,
)

SUMMARY_FIRST = "总交易单数"
REQUIRED_COLUMNS = ("交易时间", "商户号", "微信订单号", "商户订单号", "交易状态")
#: summary field → the row column it totals (ALL/SUCCESS/REFUND and the legacy 2014 layout)
SUMMARY_SUMS = {
    "应结订单总金额": "应结订单金额",
    "退款总金额": "退款金额",
    "充值券退款总金额": "充值券退款金额",
    "手续费总金额": "手续费",
    "订单总金额": "订单金额",
    "申请退款总金额": "申请退款金额",
    "总交易额": "总金额",
    "总退款金额": "退款金额",
    "总代金券或立减优惠退款金额": "代金券或立减优惠退款金额",
}
REFUND_STATES = {"REFUND", "REVOKED"}
LINE_STATUS = {"SUCCESS": "succeeded", "PROCESSING": "pending", "": "succeeded"}


def _fields(text: str) -> list[str]:
    """A data or summary line: every field is prefixed with a backtick (§2.6)."""
    if not text.startswith("`"):
        raise ValueError("fields are not backtick-prefixed")
    return text[1:].split(",`")


def _amount(text: str, column: str) -> Decimal:
    try:
        value = Decimal(text.strip() or "0")
    except InvalidOperation:
        raise ValueError(f"{column} {text!r} is not an amount") from None
    if not value.is_finite():
        raise ValueError(f"{column} {text!r} is not an amount")
    return value


def _bill_time(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text.replace("：", ":").strip(), "%Y-%m-%d %H:%M:%S").replace(
            tzinfo=BEIJING
        )
    except ValueError:
        return None


class WechatBill(ReadOnceSettlementFile):
    """A streaming reader of one trade bill. After the summary line it compares every summary
    total (count — also written like ``45.0`` — and each amount) with the sums of the rows and
    raises :class:`SettlementFileError` naming the line when they disagree."""

    def __init__(self, stream: IO[bytes], *, merchant_id: str = ""):
        self._stream = stream
        self._expected_merchant = merchant_id
        self.layout = ""

    @classmethod
    def open(cls, stream: IO[bytes], *, merchant_id: str = "") -> WechatBill:
        head, stream = _peek(stream, 2)
        if head == b"\x1f\x8b":
            stream = gzip.GzipFile(fileobj=stream, mode="rb")
        return cls(stream, merchant_id=merchant_id)

    _read_errors = (EOFError, zlib.error, gzip.BadGzipFile)
    _read_error_message = "the gzip stream is corrupt or truncated"

    def _parse(self) -> Iterator[SettlementLine]:
        columns: list[str] | None = None
        summary_names: list[str] | None = None
        summary: tuple[int, list[str]] | None = None
        merchant = ""
        count = 0
        sums: dict[str, Decimal] = {}
        line_no = 0
        for line_no, raw in enumerate(self._stream, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise SettlementFileError(
                    "line is not valid UTF-8 (wrong encoding?)", line_no=line_no
                ) from None
            if line_no == 1:
                text = text.lstrip("\ufeff")
            text = text.rstrip("\r\n")
            if not text.strip():
                continue
            if summary is not None:
                raise SettlementFileError("data after the summary lines", line_no=line_no)
            if columns is None:
                columns = [c.strip() for c in text.split(",")]
                missing = [c for c in REQUIRED_COLUMNS if c not in columns]
                if missing or text.startswith("`"):
                    raise SettlementFileError(
                        "not a WeChat Pay trade bill: the header lacks "
                        f"{', '.join(missing) or 'column names'}",
                        line_no=line_no,
                    )
                self.layout = _layout(columns)
                sums = {c: Decimal(0) for c in columns if c in SUMMARY_SUMS.values()}
                continue
            if summary_names is not None:
                try:
                    values = _fields(text)
                except ValueError:
                    raise SettlementFileError(
                        "the summary values are not backtick-prefixed", line_no=line_no
                    ) from None
                if len(values) != len(summary_names):
                    raise SettlementFileError(
                        f"expected {len(summary_names)} summary values, found {len(values)}",
                        line_no=line_no,
                    )
                summary = (line_no, values)
                continue
            if text.startswith(SUMMARY_FIRST):
                summary_names = [c.strip() for c in text.split(",")]
                continue
            try:
                values = _fields(text)
            except ValueError:
                raise SettlementFileError(
                    "a data line whose fields are not backtick-prefixed", line_no=line_no
                ) from None
            if len(values) != len(columns):
                raise SettlementFileError(
                    f"expected {len(columns)} fields, found {len(values)} (truncated line?)",
                    line_no=line_no,
                )
            row = dict(zip(columns, values, strict=True))
            row_merchant = row["商户号"]
            if self._expected_merchant and row_merchant != self._expected_merchant:
                raise SettlementFileError(
                    f"the bill belongs to merchant {row_merchant}, not {self._expected_merchant}",
                    line_no=line_no,
                )
            if merchant and row_merchant != merchant:
                raise SettlementFileError(
                    f"merchant {row_merchant} differs from the bill's {merchant}", line_no=line_no
                )
            merchant = row_merchant
            try:
                for column in sums:
                    sums[column] += _amount(row[column], column)
                yield self._line(line_no, row)
            except ValueError as exc:
                raise SettlementFileError(str(exc), line_no=line_no) from None
            count += 1
        if columns is None:
            raise SettlementFileError("empty file: not a WeChat Pay bill")
        if summary is None:
            raise SettlementFileError(
                "the summary lines are missing (file truncated)", line_no=line_no
            )
        self._totals = self._check_summary(
            summary_names or [], summary, count=count, sums=sums, merchant=merchant
        )

    def _line(self, line_no: int, row: Mapping[str, str]) -> SettlementLine:
        state = row["交易状态"]
        if state == "SUCCESS":
            kind = "payment"
            amount_column = next(c for c in ("订单金额", "总金额", "应结订单金额") if c in row)
            when = _bill_time(row["交易时间"])
            status = "succeeded"
        elif state in REFUND_STATES:
            kind = "refund"
            amount_column = "申请退款金额" if "申请退款金额" in row else "退款金额"
            when = (
                _bill_time(row.get("退款成功时间", ""))
                or _bill_time(row.get("退款申请时间", ""))
                or _bill_time(row["交易时间"])
            )
            status = LINE_STATUS.get(row.get("退款状态", ""), "failed")
        else:
            raise ValueError(f"unknown 交易状态 {state!r}")
        return SettlementLine(
            line_no=line_no,
            kind=kind,
            out_trade_no=row["商户订单号"],
            channel_trade_no=row["微信订单号"],
            amount=abs(_amount(row[amount_column], amount_column)),
            fee=_amount(row.get("手续费", "0"), "手续费"),
            currency=row.get("货币种类") or "CNY",
            occurred_at=when,
            refund_no=row.get("商户退款单号", "") if kind == "refund" else "",
            status=status,
            raw=dict(row),
        )

    def _check_summary(
        self,
        names: list[str],
        summary: tuple[int, list[str]],
        *,
        count: int,
        sums: Mapping[str, Decimal],
        merchant: str,
    ) -> FileTotals:
        line_no, values = summary
        stated = dict(zip(names, values, strict=True))
        try:
            lines = Decimal(stated[SUMMARY_FIRST])
        except (KeyError, InvalidOperation):
            raise SettlementFileError(f"cannot read {SUMMARY_FIRST}", line_no=line_no) from None
        if lines != lines.to_integral_value() or int(lines) != count:
            raise SettlementFileError(
                f"summary says {stated[SUMMARY_FIRST]} lines, the bill has {count}", line_no=line_no
            )
        amounts: dict[str, Decimal] = {}
        for name, column in SUMMARY_SUMS.items():
            if name not in stated:
                continue
            try:
                amounts[name] = _amount(stated[name], name)
            except ValueError as exc:
                raise SettlementFileError(str(exc), line_no=line_no) from None
            expected = sums.get(column, Decimal(0))
            if amounts[name] != expected:
                raise SettlementFileError(
                    f"summary {name} is {amounts[name]}, the rows add up to {expected}",
                    line_no=line_no,
                )

        def first(*keys: str) -> Decimal | None:
            return next((amounts[k] for k in keys if k in amounts), None)

        return FileTotals(
            merchant_id=merchant,
            day=None,  # the bill text does not name its day; the download request does
            lines=int(lines),
            gross=first("订单总金额", "总交易额", "应结订单总金额"),
            refunded=first("申请退款总金额", "退款总金额", "总退款金额"),
            fees=first("手续费总金额"),
        )


def _layout(columns: list[str]) -> str:
    if "退款申请时间" in columns:
        return "REFUND"
    if "总金额" in columns:
        return "LEGACY"
    if "退款金额" in columns:
        return "ALL"
    return "SUCCESS"


_peek = peek_stream
