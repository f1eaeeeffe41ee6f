"""The aggregator's daily export. epay publishes no standard bill, so Cardex supports one
documented CSV (docs/channels/aggregator.md), UTF-8, one header row, then one row per payment
or refund and a closing totals row::

    # epay export,pid=1001,date=2026-12-03
    kind,trade_no,out_trade_no,refund_no,type,money,fee,time
    payment,2026120312345678,20261203ABCDEF0123456789,,qqpay,88.00,0.88,2026-12-03 10:00:00
    refund,2026120312345678,20261203ABCDEF0123456789,RF1,qqpay,8.00,-0.08,2026-12-03 11:00:00
    # totals,payments=1,refunds=1,gross=88.00,refunded=8.00,fees=0.80

``fee`` is what the aggregator charged (negative: fee returned on a refund); times are
Beijing time. The parser checks the totals row against the sum of the rows."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import IO

from payments.channels.aggregator.wire import parse_beijing
from payments.channels.base import (
    CENT,
    FileTotals,
    SettlementFile,
    SettlementFileError,
    SettlementLine,
)

HEADER = ["kind", "trade_no", "out_trade_no", "refund_no", "type", "money", "fee", "time"]
PREAMBLE = "# epay export"
TOTALS = "# totals"


def _pairs(line: str, prefix: str, line_no: int) -> dict[str, str]:
    found = {}
    for part in line[len(prefix) :].split(","):
        if not part:
            continue
        name, eq, value = part.partition("=")
        if not eq:
            raise SettlementFileError(f"malformed {prefix!r} line: {part!r}", line_no=line_no)
        found[name.strip()] = value.strip()
    return found


def _amount(text: str, what: str, line_no: int) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise SettlementFileError(f"{what} {text!r} is not an amount", line_no=line_no) from None
    if not value.is_finite() or value.quantize(CENT) != value:
        raise SettlementFileError(f"{what} {text!r} is not an amount", line_no=line_no)
    return value


class AggregatorExport(SettlementFile):
    """The export, read whole (it is one aggregator account's day: small)."""

    def __init__(self, stream: IO[bytes], *, merchant_id: str = ""):
        try:
            self._text = stream.read().decode("utf-8-sig")
        except UnicodeDecodeError:
            raise SettlementFileError("the export is not UTF-8") from None
        self._merchant_id = merchant_id
        self._totals: FileTotals | None = None

    @property
    def totals(self) -> FileTotals:
        if self._totals is None:
            for _line in self.lines():
                pass
        assert self._totals is not None
        return self._totals

    def lines(self) -> Iterator[SettlementLine]:
        rows = self._text.splitlines()
        if not rows or not rows[0].startswith(PREAMBLE):
            raise SettlementFileError("not an epay export: the first line is not its preamble")
        head = _pairs(rows[0], PREAMBLE, 1)
        pid = head.get("pid", "")
        if self._merchant_id and pid != self._merchant_id:
            raise SettlementFileError(f"the export is for pid {pid!r}, not {self._merchant_id!r}")
        try:
            day = dt.date.fromisoformat(head.get("date", ""))
        except ValueError:
            raise SettlementFileError("the preamble names no date", line_no=1) from None
        if len(rows) < 2 or next(csv.reader([rows[1]])) != HEADER:
            raise SettlementFileError("the header row is not the epay export's", line_no=2)
        count = {"payment": 0, "refund": 0}
        sums = {"payment": Decimal("0.00"), "refund": Decimal("0.00"), "fee": Decimal("0.00")}
        stated: dict[str, str] | None = None
        for index, text in enumerate(rows[2:], start=3):
            if not text.strip():
                continue
            if stated is not None:
                raise SettlementFileError("rows after the totals line", line_no=index)
            if text.startswith(TOTALS):
                stated = _pairs(text, TOTALS, index)
                continue
            values = next(csv.reader(io.StringIO(text)))
            if len(values) != len(HEADER):
                raise SettlementFileError(f"{len(values)} columns, not 8", line_no=index)
            row = dict(zip(HEADER, values, strict=True))
            kind = row["kind"]
            if kind not in count:
                raise SettlementFileError(f"unknown kind {kind!r}", line_no=index)
            amount = _amount(row["money"], "money", index)
            fee = _amount(row["fee"], "fee", index)
            if amount <= 0 or not row["out_trade_no"]:
                raise SettlementFileError("a row without out_trade_no or amount", line_no=index)
            count[kind] += 1
            sums[kind] += amount
            sums["fee"] += fee
            yield SettlementLine(
                line_no=index,
                kind=kind,
                out_trade_no=row["out_trade_no"],
                channel_trade_no=row["trade_no"],
                amount=amount,
                fee=fee,
                currency="CNY",
                occurred_at=parse_beijing(row["time"]),
                refund_no=row["refund_no"],
                raw=row,
            )
        if stated is None:
            raise SettlementFileError("the export ends without its totals line (truncated?)")
        expected = {
            "payments": str(count["payment"]),
            "refunds": str(count["refund"]),
            "gross": f"{sums['payment']:.2f}",
            "refunded": f"{sums['refund']:.2f}",
            "fees": f"{sums['fee']:.2f}",
        }
        for name, value in expected.items():
            if stated.get(name) != value:
                raise SettlementFileError(
                    f"totals line says {name}={stated.get(name)!r}, the rows sum to {value}"
                )
        self._totals = FileTotals(
            merchant_id=pid,
            day=day,
            payments=count["payment"],
            refunds=count["refund"],
            lines=count["payment"] + count["refund"],
            gross=sums["payment"],
            refunded=sums["refund"],
            fees=sums["fee"],
        )
