"""Write a WeChat Pay trade bill (§2.6 "ALL" layout: BOM, header, backtick rows, summary) of any
size, streaming: rows go to the file as they come and only the running totals are kept. Used by
bench/reconcile.py and by the reconciliation tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import IO

HEADER = (
    "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,"
    "付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,"
    "退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
)
SUMMARY = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)
ZERO = Decimal("0")


@dataclass(frozen=True)
class BillRow:
    kind: str  # "payment" or "refund"
    out_trade_no: str
    amount: Decimal
    fee: Decimal  # negative on a refund: the fee returned
    when: dt.datetime
    trade_no: str = ""
    refund_no: str = ""


def write_bill(stream: IO[bytes], mchid: str, rows: Iterable[BillRow]) -> int:
    """Write the bill to ``stream``; returns the number of data rows."""
    count, paid, refunded, fees = 0, ZERO, ZERO, ZERO
    stream.write(("\ufeff" + HEADER + "\r\n").encode())
    for row in rows:
        when = row.when.strftime("%Y-%m-%d %H:%M:%S")
        amount = f"{row.amount:.2f}"
        if row.kind == "payment":
            state, settle, refund, applied, order = "SUCCESS", amount, "0.00", "0.00", amount
            refund_id, refund_no, refund_kind, refund_state = "0", "0", "", ""
            paid += row.amount
        else:
            state, settle, refund, applied, order = "REFUND", "0.00", amount, amount, "0.00"
            refund_id, refund_no = f"5{row.refund_no}", row.refund_no
            refund_kind, refund_state = "ORIGINAL", "SUCCESS"
            refunded += row.amount
        fees += row.fee
        cells = (
            when,
            "wx0000000000000000",
            mchid,
            "0",
            "",
            row.trade_no or f"42{row.out_trade_no}",
            row.out_trade_no,
            "oUser",
            "NATIVE",
            state,
            "OTHERS",
            "CNY",
            settle,
            "0.00",
            refund_id,
            refund_no,
            refund,
            "0.00",
            refund_kind,
            refund_state,
            "Gift card",
            "",
            f"{row.fee:.5f}",
            "0.60%",
            order,
            applied,
            "",
        )
        stream.write(("`" + ",`".join(cells) + "\r\n").encode())
        count += 1
    totals = (
        str(count),
        f"{paid:.2f}",
        f"{refunded:.2f}",
        "0.00",
        f"{fees:.5f}",
        f"{paid:.2f}",
        f"{refunded:.2f}",
    )
    stream.write((SUMMARY + "\r\n" + "`" + ",`".join(totals) + "\r\n").encode())
    return count
