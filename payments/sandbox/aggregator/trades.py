"""The simulated aggregator's trades, shared by its v1 (``submit.php``, ``mapi.php``,
``api.php``) and v2 (``api/pay/*``) endpoints: opening one, finding it, its order-query
fields and refunding it. Answers are v1's (``code`` 1 on success); v2 restates them."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction

from payments.sandbox.aggregator.protocol import CENT, CHANNEL, beijing, yuan
from payments.sandbox.models import SandboxMerchant, SandboxRefund, SandboxTrade


def open_trade(
    merchant: SandboxMerchant, params: Mapping[str, str], *, sign_type: str = "MD5"
) -> SandboxTrade | str:
    """The trade of a signed creation; the same out_trade_no again returns it if it agrees."""
    for name in ("type", "out_trade_no", "notify_url", "name", "money"):
        if not params.get(name):
            return f"缺少参数 {name}"
    if params["type"] not in merchant.config.get("types", []):
        return "支付方式未开通"
    try:
        amount = Decimal(params["money"])
    except InvalidOperation:
        return "金额不合法"
    if not amount.is_finite() or amount <= 0 or amount.quantize(CENT) != amount:
        return "金额不合法"
    found = SandboxTrade.objects.filter(
        channel=CHANNEL, merchant_id=merchant.merchant_id, out_trade_no=params["out_trade_no"]
    ).first()
    if found is not None:
        return found if found.amount == amount else "订单号重复"
    try:
        with transaction.atomic():
            return SandboxTrade.objects.create(
                channel=CHANNEL,
                merchant_id=merchant.merchant_id,
                out_trade_no=params["out_trade_no"],
                amount=amount,
                subject=params["name"],
                notify_url=params["notify_url"],
                return_url=params.get("return_url", ""),
                extra={"type": params["type"], "sign_type": sign_type},
            )
    except IntegrityError:
        return "订单号重复"


def find_trade(merchant: SandboxMerchant, params: Mapping[str, str]) -> SandboxTrade | None:
    trades = SandboxTrade.objects.filter(channel=CHANNEL, merchant_id=merchant.merchant_id)
    if params.get("out_trade_no"):
        return trades.filter(out_trade_no=params["out_trade_no"]).first()
    return trades.filter(trade_no=params.get("trade_no", "")).first()


def order_fields(merchant: SandboxMerchant, params: Mapping[str, str]) -> dict:
    trade = find_trade(merchant, params)
    if trade is None:
        return {"code": -1, "msg": "订单号不存在"}
    paid = trade.status == SandboxTrade.Status.PAID
    return {
        "code": 1,
        "msg": "查询订单号成功！",
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "api_trade_no": "",
        "type": trade.extra.get("type"),
        "pid": merchant.merchant_id,
        "addtime": beijing(trade.created_at),
        "endtime": beijing(trade.paid_at) if paid else "",
        "name": trade.subject,
        "money": yuan(trade.amount),
        "status": 1 if paid else 0,
        "param": "",
        "buyer": "",
    }


def refund_trade(merchant: SandboxMerchant, params: Mapping[str, str]) -> dict:
    with transaction.atomic():
        trade = find_trade(merchant, params)
        if trade is None:
            return {"code": -1, "msg": "订单号不存在"}
        trade = SandboxTrade.objects.select_for_update().get(pk=trade.pk)
        if trade.status != SandboxTrade.Status.PAID:
            return {"code": -1, "msg": "订单未支付"}
        number = params.get("out_refund_no") or secrets.token_hex(8)
        try:
            amount = Decimal(params.get("money", ""))
        except InvalidOperation:
            return {"code": -1, "msg": "金额不合法"}
        existing = trade.refunds.filter(out_refund_no=number).first()
        if existing is not None:
            if existing.amount != amount:
                return {"code": -1, "msg": "退款单号重复"}
            return {"code": 1, "msg": "退款成功", "refund_no": existing.refund_id}
        if not amount.is_finite() or amount <= 0 or amount > trade.amount - trade.refunded:
            return {"code": -1, "msg": "退款金额超过可退金额"}
        refund = SandboxRefund.objects.create(trade=trade, out_refund_no=number, amount=amount)
    return {"code": 1, "msg": "退款成功", "refund_no": refund.refund_id}
