"""The simulated Alipay's trades: the provider hooks (merchant provisioning, the signed
trade_status_sync notification, retries), expiry and the trade_status a trade shows."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from django.db import IntegrityError, transaction
from django.utils import timezone

from config.prepared import PreparedRead
from payments.sandbox import keys
from payments.sandbox.alipay.protocol import (
    BEIJING,
    CENT,
    CHANNEL,
    TIME_FORMAT,
    beijing,
    business,
    buyer_of,
    new_trade_no,
    notification_string_to_sign,
    sign,
    yuan,
)
from payments.sandbox.core import DeclineReason, SandboxProvider
from payments.sandbox.models import SandboxMerchant, SandboxTrade


class AlipaySandbox(SandboxProvider):
    channel = CHANNEL
    #: after the first try: 2m, 10m, 10m, 1h, 2h, 6h, 15h — 8 deliveries within 25 h (§1.4)
    retry_schedule = (120, 600, 600, 3600, 7200, 21600, 54000)
    declines = (
        DeclineReason(
            "insufficient_funds", "买家余额不足 · balance too low", "ACQ.BUYER_BALANCE_NOT_ENOUGH"
        ),
        DeclineReason(
            "phone_mismatch",
            "身份/银行预留手机号不符 · identity or phone mismatch",
            "ACQ.ERROR_BUYER_CERTIFY_LEVEL_LIMIT",
        ),
        DeclineReason("risk", "支付有风险 · risk decline", "ACQ.PAYMENT_REQUEST_HAS_RISK"),
        DeclineReason("timeout", "超时未支付 · payer walked away", "ACQ.TRADE_HAS_CLOSE"),
    )

    def provision(self, *, merchant_id: str, app_id: str = "") -> dict:
        """Register PID ``merchant_id`` with application ``app_id``: the application key pair is
        made once per machine (like running Alipay's key tool), its PUBLIC half registered here."""
        if not app_id:
            raise ValueError("an Alipay application id (app_id) is required")
        private_pem = keys.provider_file(
            f"alipay-app-{merchant_id}.key.pem", keys.generate_rsa_private_pem
        )
        with transaction.atomic():
            for other in SandboxMerchant.objects.filter(channel=CHANNEL).exclude(
                merchant_id=merchant_id
            ):
                if other.config.get("app_id") == app_id:  # an app belongs to one partner
                    other.config = {k: v for k, v in other.config.items() if k != "app_id"}
                    other.save(update_fields=["config"])
            SandboxMerchant.objects.update_or_create(
                channel=CHANNEL,
                merchant_id=merchant_id,
                defaults={
                    "config": {"app_id": app_id, "app_public_key": keys.public_pem_of(private_pem)}
                },
            )
        return {
            "app_private_key": private_pem,
            "alipay_public_key": keys.provider_public_pem(CHANNEL),
        }

    def settle(self, trade: SandboxTrade, *, approve: bool, decline_key: str = "") -> SandboxTrade:
        expire_if_due(trade)
        return super().settle(trade, approve=approve, decline_key=decline_key)

    def payment_notification(self, trade: SandboxTrade) -> tuple[Mapping[str, str], bytes] | None:
        """trade_status_sync as a signed form post (§1.4): TRADE_SUCCESS when paid,
        TRADE_CLOSED when the payer's decline closed the trade."""
        if trade.status == SandboxTrade.Status.PAID:
            status = "TRADE_SUCCESS"
        elif (
            trade.status == SandboxTrade.Status.DECLINED
            and trade.decline_code != self.decline_code("timeout")
        ):
            status = "TRADE_CLOSED"
        else:
            return None
        buyer_id, logon = buyer_of(trade)
        amount = yuan(trade.amount)
        params = {
            "notify_time": beijing(),
            "notify_type": "trade_status_sync",
            "notify_id": uuid.uuid4().hex,
            "app_id": str(trade.extra.get("app_id", "")),
            "charset": "utf-8",
            "version": "1.0",
            "sign_type": "RSA2",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_id": buyer_id,
            "buyer_logon_id": logon,
            "seller_id": trade.merchant_id,
            "seller_email": f"merchant-{trade.merchant_id[-4:]}@sandbox.example.com",
            "trade_status": status,
            "total_amount": amount,
            "subject": trade.subject,
            "gmt_create": beijing(trade.created_at),
        }
        if status == "TRADE_SUCCESS":
            params.update(
                receipt_amount=amount,
                invoice_amount=amount,
                buyer_pay_amount=amount,
                point_amount="0.00",
                gmt_payment=beijing(trade.paid_at),
                fund_bill_list=json.dumps(
                    [{"amount": amount, "fundChannel": "ALIPAYACCOUNT"}], separators=(",", ":")
                ),
            )
        else:
            params["gmt_close"] = beijing()
        params["sign"] = sign(notification_string_to_sign(params))
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        return headers, urlencode(params).encode()

    def notification_accepted(self, status_code: int, body: bytes) -> bool:
        """Only the literal ``success`` stops the retries (§1.4)."""
        return status_code == 200 and body.strip() == b"success"


# ---------------------------------------------------------------------------------------------
# Trade state


def expire_if_due(trade: SandboxTrade) -> None:
    """An unpaid trade past its ``time_expire`` closes, as Alipay closes it."""
    expires = trade.extra.get("time_expire")
    if not expires or trade.status not in (
        SandboxTrade.Status.WAITING,
        SandboxTrade.Status.DECLINED,
    ):
        return
    if timezone.now() >= dt.datetime.fromisoformat(expires):
        SandboxTrade.objects.filter(pk=trade.pk, status=trade.status).update(
            status=SandboxTrade.Status.CLOSED
        )
        trade.refresh_from_db()


def trade_status(trade: SandboxTrade) -> str:
    """§1.5: TRADE_CLOSED covers unpaid-and-closed as well as paid-then-fully-refunded."""
    if trade.status == SandboxTrade.Status.PAID:
        return "TRADE_CLOSED" if trade.refunded >= trade.amount else "TRADE_SUCCESS"
    if (
        trade.status == SandboxTrade.Status.DECLINED
        and trade.decline_code == AlipaySandbox().decline_code("timeout")
    ):
        return "WAIT_BUYER_PAY"
    if trade.status in (SandboxTrade.Status.CLOSED, SandboxTrade.Status.DECLINED):
        return "TRADE_CLOSED"
    return "WAIT_BUYER_PAY"


def amount_param(value: Any, name: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise business("ACQ.INVALID_PARAMETER", f"{name} 格式错误") from None
    if (
        not amount.is_finite()
        or amount != amount.quantize(CENT)
        or not Decimal("0.01") <= amount <= Decimal("100000000")
    ):
        raise business(
            "ACQ.INVALID_PARAMETER", f"{name} 取值范围为[0.01,100000000]，精确到小数点后两位"
        )
    return amount


def find_trade(
    merchant: SandboxMerchant, biz: Mapping[str, Any], *, lock: bool = False
) -> SandboxTrade:
    trades = SandboxTrade.objects.filter(channel=CHANNEL, merchant_id=merchant.merchant_id)
    if lock:
        trades = trades.select_for_update()
    if biz.get("trade_no"):
        trade = trades.filter(trade_no=biz["trade_no"]).first()
    elif biz.get("out_trade_no"):
        trade = trades.filter(out_trade_no=biz["out_trade_no"]).first()
    else:
        raise business("ACQ.INVALID_PARAMETER", "out_trade_no 和 trade_no 不能同时为空")
    if trade is None:
        raise business("ACQ.TRADE_NOT_EXIST", "交易不存在")
    return trade


# every payer's visit to the gateway opens (or finds) the trade: compiled once per connection
_TRADE_BY_OUT_TRADE_NO = PreparedRead(
    lambda merchant_id, out_trade_no: SandboxTrade.objects.filter(
        channel=CHANNEL, merchant_id=merchant_id, out_trade_no=out_trade_no
    ),
    merchant_id=str,
    out_trade_no=str,
)


def open_trade(
    merchant: SandboxMerchant,
    params: Mapping[str, str],
    biz: Mapping[str, Any],
    *,
    product_code: str,
) -> SandboxTrade:
    """Open (or re-open idempotently) the trade for ``out_trade_no``."""
    out_trade_no = str(biz.get("out_trade_no", ""))
    if not out_trade_no or len(out_trade_no) > 64:
        raise business("ACQ.INVALID_PARAMETER", "out_trade_no 不能为空且长度不超过64")
    amount = amount_param(biz.get("total_amount"), "total_amount")
    subject = str(biz.get("subject", ""))
    if not subject:
        raise business("ACQ.INVALID_PARAMETER", "subject 不能为空")
    time_expire = None
    if biz.get("time_expire"):
        try:
            time_expire = (
                dt.datetime.strptime(str(biz["time_expire"]), TIME_FORMAT)
                .replace(tzinfo=BEIJING)
                .isoformat()
            )
        except ValueError:
            raise business(
                "ACQ.INVALID_PARAMETER", "time_expire 格式应为 yyyy-MM-dd HH:mm:ss"
            ) from None
    existing = _TRADE_BY_OUT_TRADE_NO.first(
        merchant_id=merchant.merchant_id, out_trade_no=out_trade_no
    )
    if existing is None:
        try:
            with transaction.atomic():
                return SandboxTrade.objects.create(
                    channel=CHANNEL,
                    merchant_id=merchant.merchant_id,
                    out_trade_no=out_trade_no,
                    trade_no=new_trade_no(),
                    amount=amount,
                    subject=subject[:255],
                    notify_url=params.get("notify_url", ""),
                    return_url=params.get("return_url", ""),
                    extra={
                        "app_id": params.get("app_id", ""),
                        "product_code": product_code,
                        "method": params.get("method", ""),
                        "time_expire": time_expire,
                    },
                )
        except IntegrityError:
            existing = SandboxTrade.objects.get(
                channel=CHANNEL, merchant_id=merchant.merchant_id, out_trade_no=out_trade_no
            )
    expire_if_due(existing)
    if existing.status == SandboxTrade.Status.PAID:
        raise business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
    if trade_status(existing) == "TRADE_CLOSED":
        raise business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
    if existing.amount != amount or existing.subject != subject[:255]:
        raise business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
    return existing
