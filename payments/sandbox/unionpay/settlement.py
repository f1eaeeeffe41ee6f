"""The day's reconciliation ZIP as UnionPay packs it: fixed-width ZM records and the GBK
RD summary, built from the sandbox's own trades and refunds (CHANNELS.md §3.4)."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from decimal import ROUND_HALF_UP, Decimal

from payments.channels.base import to_minor
from payments.sandbox.models import SandboxRefund, SandboxTrade
from payments.sandbox.unionpay import protocol
from payments.sandbox.unionpay.identifiers import CHANNEL, beijing, ensure_ids, new_ids

FEE_RATE = Decimal("0.006")
ACQUIRER = "48021000"  # 代理机构标识码 / 发送机构标识码 used in the sandbox's ZM records
FORWARDER = "00049992"
TERMINAL = "01080209"


def fee_of(amount: Decimal) -> Decimal:
    return (amount * FEE_RATE).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _fen(amount: Decimal) -> str:
    return f"{to_minor(amount):012d}"


def zm_record(values: list[str]) -> bytes:
    """Join 42 values into one fixed-width record: each padded to its width, one space
    between fields."""
    assert len(values) == len(protocol.ZM_WIDTHS)
    out = []
    for value, width in zip(values, protocol.ZM_WIDTHS, strict=True):
        encoded = value.encode("gbk")
        if len(encoded) > width:
            raise ValueError(f"{value!r} does not fit {width} bytes")
        out.append(encoded + b" " * (width - len(encoded)))
    record = b" ".join(out)
    assert len(record) == protocol.ZM_RECORD_LENGTH
    return record


def _zm_values(
    *,
    code: str,
    trace_no: str,
    trace_time: str,
    amount: Decimal,
    channel_type: str,
    query_id: str,
    order_id: str,
    fee: str,
    settle: str,
    txn_type: str,
    txn_sub: str,
    merchant_id: str,
    orig_trace: str = "",
    orig_time: str = "",
    orig_query_id: str = "",
    orig_order_id: str = "",
) -> list[str]:
    blank13 = " " + "0" * 12
    return [
        code,
        ACQUIRER,
        FORWARDER,
        trace_no,
        trace_time,
        "621700******0018",
        _fen(amount),
        "5999",
        channel_type,
        query_id,
        "01",
        order_id,
        "01",
        orig_trace,
        orig_time,
        fee,
        settle,
        "0001",
        "",
        txn_type,
        txn_sub,
        "000201",
        "",
        "",
        "",
        "",
        orig_query_id,
        merchant_id,
        "",
        "0" * 15,
        "",
        blank13,
        settle,
        TERMINAL,
        "",
        blank13,
        blank13,
        " " + "0" * 11,
        "",
        "7",
        orig_order_id,
        "",
    ]


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=protocol.BEIJING)
    return start, start + dt.timedelta(days=1)


def build_zip(merchant_id: str, day: dt.date) -> bytes:
    """The day's ZIP for one merchant from the sandbox's own trades and refunds."""
    start, end = _day_bounds(day)
    rows: list[tuple[dt.datetime, str, bytes, Decimal, Decimal]] = []
    trades = SandboxTrade.objects.filter(
        channel=CHANNEL,
        merchant_id=merchant_id,
        status=SandboxTrade.Status.PAID,
        paid_at__gte=start,
        paid_at__lt=end,
    )
    for trade in trades:
        ids = ensure_ids(trade)
        fee = fee_of(trade.amount)
        values = _zm_values(
            code="S22",
            trace_no=ids["traceNo"],
            trace_time=ids["traceTime"],
            amount=trade.amount,
            channel_type=trade.extra.get("channelType", "07"),
            query_id=ids["queryId"],
            order_id=trade.out_trade_no,
            fee="D" + _fen(fee),
            settle="C" + _fen(trade.amount - fee),
            txn_type="01",
            txn_sub="01",
            merchant_id=merchant_id,
        )
        rows.append((trade.paid_at, "payment", zm_record(values), trade.amount, fee))
    refunds = SandboxRefund.objects.select_related("trade").filter(
        trade__channel=CHANNEL,
        trade__merchant_id=merchant_id,
        status=SandboxRefund.Status.SUCCESS,
        created_at__gte=start,
        created_at__lt=end,
    )
    for refund in refunds:
        trade = refund.trade
        paid = ensure_ids(trade)
        info = trade.extra.get("refunds", {}).get(refund.out_refund_no) or new_ids(
            refund.created_at
        )
        fee = fee_of(refund.amount)
        values = _zm_values(
            code="S30",
            trace_no=info["traceNo"],
            trace_time=info["traceTime"],
            amount=refund.amount,
            channel_type="07",
            query_id=info["queryId"],
            order_id=refund.out_refund_no,
            fee="C" + _fen(fee),
            settle="D" + _fen(refund.amount - fee),
            txn_type="04",
            txn_sub="00",
            merchant_id=merchant_id,
            orig_trace=paid["traceNo"],
            orig_time=paid["traceTime"],
            orig_query_id=paid["queryId"],
            orig_order_id=trade.out_trade_no,
        )
        rows.append((refund.created_at, "refund", zm_record(values), refund.amount, -fee))
    rows.sort(key=lambda row: row[0])
    zm = b"".join(record + b"\r\n" for _, _, record, _, _ in rows)
    rd = rd_summary(merchant_id, day, [(kind, amount, fee) for _, kind, _, amount, fee in rows])
    stamp = beijing(dt.datetime.now(dt.UTC)).timetuple()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo(f"INN{day:%y%m%d}88ZM_{merchant_id}", stamp), zm)
        archive.writestr(zipfile.ZipInfo(f"RD2010{day:%y%m%d}01_{merchant_id}", stamp), rd)
    return buffer.getvalue()


def _pad(label: str, width: int) -> str:
    return label + " " * max(width - len(label.encode("gbk")), 1)


def _rd_row(
    label: str, count: int, debit: Decimal, credit: Decimal, fee_debit: Decimal, fee_credit: Decimal
) -> str:
    net = credit - debit - fee_debit + fee_credit
    net_debit, net_credit = (-net, Decimal("0.00")) if net < 0 else (Decimal("0.00"), net)
    return (
        _pad(label, 20)
        + f"{count:>8}{debit:>16}{credit:>16}{fee_debit:>16}{fee_credit:>16}"
        + f"{net_debit:>16}{net_credit:>20}"
    )


def rd_summary(merchant_id: str, day: dt.date, rows: list[tuple[str, Decimal, Decimal]]) -> bytes:
    """中国银联全渠道商户交易汇总表 in the layout of UnionPay's sample (GBK, CRLF)."""
    zero = Decimal("0.00")

    def sums(kind: str | None) -> tuple[int, Decimal, Decimal, Decimal, Decimal]:
        chosen = [r for r in rows if kind is None or r[0] == kind]
        debit = sum((a for k, a, _ in chosen if k == "refund"), zero)
        credit = sum((a for k, a, _ in chosen if k == "payment"), zero)
        fee_debit = sum((f for _, _, f in chosen if f > 0), zero)
        fee_credit = sum((-f for _, _, f in chosen if f < 0), zero)
        return len(chosen), debit, credit, fee_debit, fee_credit

    rule = "_" * 136
    header = [
        "交易类型            交易笔数               交易金额                         费用"
        "                              资金清算差额",
        "                                         借              贷              借"
        "              贷               借                  贷",
    ]
    today = beijing(dt.datetime.now(dt.UTC)).date()
    lines = [
        " " * 73 + "中国银联全渠道商户交易汇总表" + " " * 12,
        "",
        _pad(f"商户代码:{merchant_id}", 64) + "清算币种:人民币",
        _pad(f"收单机构:{ACQUIRER}", 64) + f"清算日期:{day:%Y%m%d}",
        _pad("商户名称:Cardex沙箱商户", 64)
        + f"生成日期:{max(today, day + dt.timedelta(days=1)):%Y%m%d}",
        "",
        "",
        *header,
        rule,
        _rd_row("自助消费", *sums("payment")),
        _rd_row("退货", *sums("refund")),
        rule,
        _rd_row("总计", *sums(None)),
        "",
        header[0].replace("交易类型", "卡性质  "),
        header[1],
        rule,
        _rd_row("借记卡", *sums(None)),
        _rd_row("贷记卡", 0, zero, zero, zero, zero),
        _rd_row("准贷记卡", 0, zero, zero, zero, zero),
        _rd_row("其他卡", 0, zero, zero, zero, zero),
        rule,
        _rd_row("总计", *sums(None)),
    ]
    return "\r\n".join(lines).encode("gbk") + b"\r\n"
