"""The STL settlement report of a merchant's day, as PayPal writes it (CHANNELS.md §4.3)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from payments.sandbox.models import (
    SandboxRefund,
    SandboxTrade,
)
from payments.sandbox.paypal.resources import (
    CHANNEL,
    PAYMENT_TCODE,
    REFUND_TCODE,
    STL_COLUMNS,
    STL_DATE,
    fee_of,
    refund_fees,
)


def _q(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _stl_time(moment: dt.datetime) -> str:
    return moment.astimezone(timezone.get_default_timezone()).strftime(STL_DATE)


def _minor(amount: Decimal) -> str:
    return str(int((amount * 100).to_integral_value()))


def settlement_report(merchant_id: str, day: dt.date) -> bytes:
    """The STL file of ``day`` (settings.TIME_ZONE): one section, payments (T0006, gross CR,
    fee DR) and refunds (T1107, gross DR, returned fee CR), per-currency SF/RF totals and the
    SC/RC/FF counts. UTF-8 with BOM, LF line ends."""
    tz = timezone.get_default_timezone()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
    end = start + dt.timedelta(days=1)
    rows: list[tuple[dt.datetime, list[str], str, int, str, int, str]] = []
    trades = SandboxTrade.objects.filter(
        channel=CHANNEL,
        merchant_id=merchant_id,
        status=SandboxTrade.Status.PAID,
        paid_at__gte=start - dt.timedelta(days=30),
        paid_at__lt=end,
    )
    for trade in trades:
        captured = (
            dt.datetime.fromisoformat(trade.extra["captured_at"].replace("Z", "+00:00"))
            if trade.extra.get("captured_at")
            else None
        )
        if captured is None or not start <= captured < end:
            continue
        fee = fee_of(trade.amount)
        custom = trade.extra.get("custom_id", trade.out_trade_no)
        stamp = _stl_time(captured)
        fields = [
            _q(trade.extra["capture_id"]),
            _q(trade.extra.get("invoice_id", trade.out_trade_no)),
            _q(trade.trade_no),
            _q("ODR"),
            _q(PAYMENT_TCODE),
            stamp,
            stamp,
            _q("CR"),
            _minor(trade.amount),
            _q(trade.currency),
            _q("DR"),
            _minor(fee),
            _q(trade.currency),
            _q(custom),
            _q(trade.extra.get("payer_id", "")),
            _q(""),
            _q(""),
            _q(""),
            "",
            "",
            "",
        ]
        rows.append(
            (
                captured,
                fields,
                trade.currency,
                int(_minor(trade.amount)),
                "CR",
                int(_minor(fee)),
                "DR",
            )
        )
    refunds = SandboxRefund.objects.filter(
        trade__channel=CHANNEL,
        trade__merchant_id=merchant_id,
        status=SandboxRefund.Status.SUCCESS,
        created_at__gte=start,
        created_at__lt=end,
    ).select_related("trade")
    for refund in refunds:
        trade = refund.trade
        returned = refund_fees(trade).get(refund.pk, Decimal("0"))
        meta = (trade.extra.get("refunds") or {}).get(refund.refund_id, {})
        stamp = _stl_time(refund.created_at)
        fields = [
            _q(refund.refund_id),
            _q(meta.get("invoice_id", refund.out_refund_no)),
            _q(trade.extra.get("capture_id", "")),
            _q("TXN"),
            _q(REFUND_TCODE),
            stamp,
            stamp,
            _q("DR"),
            _minor(refund.amount),
            _q(trade.currency),
            _q("CR" if returned else ""),
            _minor(returned) if returned else "",
            _q(trade.currency),
            _q(meta.get("custom_id", trade.out_trade_no)),
            _q(trade.extra.get("payer_id", "")),
            _q(""),
            _q(""),
            _q(""),
            "",
            "",
            "",
        ]
        rows.append(
            (
                refund.created_at,
                fields,
                trade.currency,
                int(_minor(refund.amount)),
                "DR",
                int(_minor(returned)),
                "CR",
            )
        )
    rows.sort(key=lambda row: row[0])

    totals: dict[str, list[int]] = {}
    for _when, _fields, currency, gross, direction, fee, fee_direction in rows:
        sums = totals.setdefault(currency, [0, 0, 0, 0])
        sums[0 if direction == "CR" else 1] += gross
        sums[2 if fee_direction == "CR" else 3] += fee
    generated = timezone.now()
    lines = [
        f'"RH",{_stl_time(generated)},"A",{_q(merchant_id)},009,',
        '"FH",01',
        f'"SH",{start.strftime(STL_DATE)},'
        f'{(end - dt.timedelta(seconds=1)).strftime(STL_DATE)},"",{_q(merchant_id)},""',
        '"CH",' + ",".join(_q(name) for name in STL_COLUMNS),
    ]
    lines += ['"SB",' + ",".join(fields) for _when, fields, *_rest in rows]
    footer = [
        f"{_q(currency)},{s[0]},{s[1]},{s[2]},{s[3]}" for currency, s in sorted(totals.items())
    ]
    lines += [f'"SF",{row}' for row in footer]
    lines.append(f'"SC",{len(rows)}')
    lines += [f'"RF",{row}' for row in footer]
    lines.append(f'"RC",{len(rows)}')
    lines.append(f'"FF",{len(rows)}')
    return b"\xef\xbb\xbf" + ("\n".join(lines) + "\n").encode("utf-8")
