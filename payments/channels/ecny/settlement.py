"""The bank's reconciliation file: pipe-separated UTF-8, H header / D detail / T trailer
records (docs/channels/ecny.md)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from payments.channels.base import (
    FileTotals,
    SettlementFile,
    SettlementFileError,
    SettlementLine,
    money,
)
from payments.channels.ecny.wire import parse_stamp

FILE_TAG = "ECNY-RECON"
DETAIL_FIELDS = (
    "recordType",
    "txnType",
    "merId",
    "orderId",
    "bankOrderId",
    "refundId",
    "bankRefundId",
    "txnTime",
    "amount",
    "fee",
    "currency",
    "status",
)
TRAILER_FIELDS = (
    "recordType",
    "recordCount",
    "payCount",
    "payAmount",
    "refundCount",
    "refundAmount",
    "feeTotal",
    "netAmount",
)
_AMOUNT_RE = re.compile(r"-?\d+\.\d{2}")


class ECNYSettlementFile(SettlementFile):
    """``H|ECNY-RECON|1.0|merId|yyyyMMdd|generatedAt``, then
    ``D|PAY or REFUND|merId|orderId|bankOrderId|refundId|bankRefundId|txnTime|amount|fee|``
    ``currency|status`` lines, then
    ``T|recordCount|payCount|payAmount|refundCount|refundAmount|feeTotal|netAmount``.
    The trailer is compared with the sums of the D lines after the last one; a file without
    it is truncated; a D line of another merchant than the header's is refused."""

    def __init__(self, stream: IO[bytes]):
        self._stream = stream
        self._header_no, header = self._first_line()
        parts = header.split("|")
        if len(parts) != 6 or parts[0] != "H" or parts[1] != FILE_TAG:
            raise SettlementFileError(
                "not an e-CNY reconciliation file: the first record must be H|ECNY-RECON|…",
                line_no=self._header_no,
            )
        if parts[2] != "1.0":
            raise SettlementFileError(
                f"unsupported file version {parts[2]!r}", line_no=self._header_no
            )
        try:
            self._day = dt.datetime.strptime(parts[4], "%Y%m%d").date()
        except ValueError:
            raise SettlementFileError(
                f"header date {parts[4]!r} is not yyyyMMdd", line_no=self._header_no
            ) from None
        self._merchant = parts[3]
        if not self._merchant:
            raise SettlementFileError("header has no merchant id", line_no=self._header_no)
        self._trailer: dict[str, Any] | None = None

    def _decode(self, raw: bytes, line_no: int) -> str:
        try:
            return raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise SettlementFileError(
                "line is not UTF-8 (wrong encoding?)", line_no=line_no
            ) from None

    def _first_line(self) -> tuple[int, str]:
        line_no = 0
        for raw in self._stream:
            line_no += 1
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            text = self._decode(raw, line_no)
            if text.strip():
                self._next_no = line_no
                return line_no, text
        raise SettlementFileError("empty file: no header record")

    @property
    def totals(self) -> FileTotals:
        trailer = self._trailer or {}
        return FileTotals(
            merchant_id=self._merchant,
            day=self._day,
            payments=trailer.get("payCount"),
            refunds=trailer.get("refundCount"),
            lines=trailer.get("recordCount"),
            gross=trailer.get("payAmount"),
            refunded=trailer.get("refundAmount"),
            fees=trailer.get("feeTotal"),
        )

    def lines(self) -> Iterator[SettlementLine]:
        sums = {
            "lines": 0,
            "payCount": 0,
            "refundCount": 0,
            "gross": Decimal("0.00"),
            "refunded": Decimal("0.00"),
            "fees": Decimal("0.00"),
        }
        line_no = self._next_no
        trailer_no = 0
        for raw in self._stream:
            line_no += 1
            text = self._decode(raw, line_no)
            if not text.strip():
                continue
            if trailer_no:
                raise SettlementFileError("records after the trailer", line_no=line_no)
            tag = text.split("|", 1)[0]
            if tag == "D":
                line = self._detail(text, line_no)
                sums["lines"] += 1
                if line.kind == "payment":
                    sums["payCount"] += 1
                    sums["gross"] += line.amount
                else:
                    sums["refundCount"] += 1
                    sums["refunded"] += line.amount
                sums["fees"] += line.fee
                yield line
            elif tag == "T":
                self._trailer = self._parse_trailer(text, line_no)
                trailer_no = line_no
            else:
                raise SettlementFileError(f"unknown record type {tag!r}", line_no=line_no)
        if not trailer_no:
            raise SettlementFileError(
                f"missing trailer record: the file ends at line {line_no} (truncated?)",
                line_no=line_no,
            )
        self._check(sums, trailer_no)

    def _detail(self, text: str, line_no: int) -> SettlementLine:
        parts = text.split("|")
        if len(parts) != len(DETAIL_FIELDS):
            raise SettlementFileError(
                f"detail record has {len(parts)} fields, expected {len(DETAIL_FIELDS)}",
                line_no=line_no,
            )
        row = dict(zip(DETAIL_FIELDS, parts, strict=True))
        kind = {"PAY": "payment", "REFUND": "refund"}.get(row["txnType"])
        if kind is None:
            raise SettlementFileError(f"unknown txnType {row['txnType']!r}", line_no=line_no)
        if row["merId"] != self._merchant:
            raise SettlementFileError(
                f"record for merchant {row['merId']}, file is for {self._merchant}", line_no=line_no
            )
        if row["status"] != "SUCCESS":
            raise SettlementFileError(
                f"status {row['status']!r}: the file lists completed money movements only",
                line_no=line_no,
            )
        amount, fee = _amount(row["amount"], "amount", line_no), _amount(row["fee"], "fee", line_no)
        if amount <= 0:
            raise SettlementFileError(
                "amount must be positive (the txnType gives the direction)", line_no=line_no
            )
        if not row["orderId"] or (kind == "refund" and not row["refundId"]):
            raise SettlementFileError("detail record lacks orderId / refundId", line_no=line_no)
        try:
            occurred = parse_stamp(row["txnTime"])
        except ValueError:
            raise SettlementFileError(
                f"txnTime {row['txnTime']!r} is not yyyyMMddHHmmss", line_no=line_no
            ) from None
        return SettlementLine(
            line_no=line_no,
            kind=kind,
            out_trade_no=row["orderId"],
            channel_trade_no=row["bankOrderId"],
            amount=amount,
            fee=fee,
            currency=row["currency"] or "CNY",
            occurred_at=occurred,
            refund_no=row["refundId"] if kind == "refund" else "",
            raw=row,
        )

    def _parse_trailer(self, text: str, line_no: int) -> dict[str, Any]:
        parts = text.split("|")
        if len(parts) != len(TRAILER_FIELDS):
            raise SettlementFileError(
                f"trailer has {len(parts)} fields, expected {len(TRAILER_FIELDS)}", line_no=line_no
            )
        row = dict(zip(TRAILER_FIELDS, parts, strict=True))
        out: dict[str, Any] = {}
        for key in ("recordCount", "payCount", "refundCount"):
            if not row[key].isdigit():
                raise SettlementFileError(
                    f"trailer {key} {row[key]!r} is not a count", line_no=line_no
                )
            out[key] = int(row[key])
        for key in ("payAmount", "refundAmount", "feeTotal", "netAmount"):
            out[key] = _amount(row[key], key, line_no)
        return out

    def _check(self, sums: Mapping[str, Any], line_no: int) -> None:
        t = self._trailer or {}
        problems = []
        for label, mine, theirs in (
            ("records", sums["lines"], t["recordCount"]),
            ("payments", sums["payCount"], t["payCount"]),
            ("refunds", sums["refundCount"], t["refundCount"]),
            ("payment amount", sums["gross"], t["payAmount"]),
            ("refund amount", sums["refunded"], t["refundAmount"]),
            ("fees", sums["fees"], t["feeTotal"]),
            ("net", sums["gross"] - sums["refunded"] - sums["fees"], t["netAmount"]),
        ):
            if mine != theirs:
                problems.append(f"{label}: lines sum to {mine}, trailer says {theirs}")
        if problems:
            raise SettlementFileError(
                "trailer totals do not match the detail records: " + "; ".join(problems),
                line_no=line_no,
            )


def _amount(text: str, name: str, line_no: int) -> Decimal:
    if not _AMOUNT_RE.fullmatch(text):
        raise SettlementFileError(
            f"{name} {text!r} is not a yuan amount with two decimals", line_no=line_no
        )
    try:
        return money(text)
    except InvalidOperation:
        raise SettlementFileError(f"{name} {text!r} is not a number", line_no=line_no) from None
