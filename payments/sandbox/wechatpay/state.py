"""The simulated WeChat Pay's orders and refunds: the provider hooks (merchant provisioning,
signed and sealed notifications, retries), expiry, and the trade and refund documents the
API and the notifications carry."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from django.utils import timezone

from payments.sandbox import keys
from payments.sandbox.core import DeclineReason, SandboxProvider
from payments.sandbox.models import (
    SandboxMerchant,
    SandboxNotification,
    SandboxRefund,
    SandboxTrade,
)
from payments.sandbox.wechatpay.protocol import (
    CHANNEL,
    encrypt_resource,
    fen,
    json_bytes,
    new_apiv3_key,
    openid,
    platform_public_key_id,
    rfc3339,
    sign_headers,
)

PAYERROR_DESC = {
    "NOTENOUGH": "支付失败，余额不足",
    "ACCOUNT_ERROR": "支付失败，付款账户异常（手机号与银行预留信息不符）",
    "TRADE_ERROR": "支付失败，交易存在风险",
}


# The provider


class WechatPaySandbox(SandboxProvider):
    channel = CHANNEL
    #: 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h — 24h4m in all (§2.3)
    retry_schedule = (
        15,
        15,
        30,
        180,
        600,
        1200,
        1800,
        1800,
        1800,
        3600,
        10800,
        10800,
        10800,
        21600,
        21600,
    )
    declines = (
        DeclineReason("insufficient_funds", "余额不足 · balance too low", "NOTENOUGH"),
        DeclineReason(
            "phone_mismatch",
            "手机号与银行预留不符 · phone does not match the bank",
            "ACCOUNT_ERROR",
        ),
        DeclineReason("risk", "交易存在风险 · risk decline", "TRADE_ERROR"),
        DeclineReason("timeout", "用户支付中未完成 · payer walked away", "USERPAYING"),
    )

    def provision(self, *, merchant_id: str, app_id: str = "") -> dict:
        """Register mchid ``merchant_id`` bound to ``app_id``: the merchant API key pair (made
        once per machine), its certificate serial, APIv3 key and the app's AppSecret (for the
        OAuth code exchange). The provider keeps the PUBLIC key, serial, APIv3 key (it
        encrypts notifications with it) and the AppSecret."""
        private_pem = keys.provider_file(
            f"wechatpay-merchant-{merchant_id}.key.pem", keys.generate_rsa_private_pem
        )
        apiv3_key = keys.provider_file(
            f"wechatpay-merchant-{merchant_id}.apiv3", new_apiv3_key
        ).strip()
        app_secret = keys.provider_file(
            f"wechatpay-merchant-{merchant_id}.appsecret", new_apiv3_key
        ).strip()
        public_pem = keys.public_pem_of(private_pem)
        der = serialization.load_pem_public_key(public_pem.encode()).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        serial_no = hashlib.sha1(der).hexdigest().upper()
        SandboxMerchant.objects.update_or_create(
            channel=CHANNEL,
            merchant_id=merchant_id,
            defaults={
                "config": {
                    "appid": app_id,
                    "public_key": public_pem,
                    "serial_no": serial_no,
                    "apiv3_key": apiv3_key,
                    "app_secret": app_secret,
                }
            },
        )
        return {
            "private_key": private_pem,
            "serial_no": serial_no,
            "apiv3_key": apiv3_key,
            "app_secret": app_secret,
            "platform_public_key": keys.provider_public_pem(CHANNEL),
            "platform_public_key_id": platform_public_key_id(),
        }

    def settle(self, trade: SandboxTrade, *, approve: bool, decline_key: str = "") -> SandboxTrade:
        expire_if_due(trade)
        return super().settle(trade, approve=approve, decline_key=decline_key)

    def payment_notification(self, trade: SandboxTrade) -> tuple[Mapping[str, str], bytes] | None:
        """TRANSACTION.SUCCESS for a paid order; WeChat sends nothing for failures (§2.3)."""
        if trade.status != SandboxTrade.Status.PAID:
            return None
        return event(
            trade.merchant_id,
            "TRANSACTION.SUCCESS",
            "支付成功",
            "transaction",
            transaction_json(trade, notify=True),
        )

    def notification_accepted(self, status_code: int, body: bytes) -> bool:
        """HTTP 200 or 204 stops the retries; the body does not matter (§2.3)."""
        return status_code in (200, 204)

    def delivery_headers(self, note: SandboxNotification) -> Mapping[str, str]:
        """Each try is signed afresh: the merchant refuses timestamps 5 minutes old (§2.2)."""
        fresh = dict(note.headers)
        fresh.update(sign_headers(bytes(note.body)))
        return fresh


def event(
    mchid: str, event_type: str, summary: str, original_type: str, resource: Mapping[str, Any]
) -> tuple[dict[str, str], bytes]:
    """A signed notification envelope with the resource sealed by the merchant's APIv3 key."""
    merchant = SandboxMerchant.objects.get(channel=CHANNEL, merchant_id=mchid)
    sealed = encrypt_resource(json_bytes(resource), merchant.config["apiv3_key"], original_type)
    envelope = {
        "id": str(uuid.uuid4()),
        "create_time": rfc3339(),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": summary,
        "resource": {"original_type": original_type, **sealed},
    }
    body = json_bytes(envelope)
    return {"Content-Type": "application/json", **sign_headers(body)}, body


# ---------------------------------------------------------------------------------------------
# Orders


def expire_if_due(trade: SandboxTrade) -> None:
    expires = trade.extra.get("time_expire")
    if not expires or trade.status not in (
        SandboxTrade.Status.WAITING,
        SandboxTrade.Status.DECLINED,
    ):
        return
    if trade.status == SandboxTrade.Status.DECLINED and trade.decline_code != "USERPAYING":
        return
    if timezone.now() >= dt.datetime.fromisoformat(expires):
        SandboxTrade.objects.filter(pk=trade.pk, status=trade.status).update(
            status=SandboxTrade.Status.CLOSED
        )
        trade.refresh_from_db()


def trade_state(trade: SandboxTrade) -> tuple[str, str]:
    """§2.4 trade_state and its description."""
    if trade.status == SandboxTrade.Status.PAID:
        return ("REFUND", "转入退款") if trade.refunds.exists() else ("SUCCESS", "支付成功")
    if trade.status == SandboxTrade.Status.CLOSED:
        return "CLOSED", "已关闭"
    if trade.status == SandboxTrade.Status.DECLINED:
        if trade.decline_code == "USERPAYING":
            return "USERPAYING", "用户支付中（需要输入密码）"
        return "PAYERROR", PAYERROR_DESC.get(trade.decline_code, "支付失败，其他原因")
    return "NOTPAY", "订单未支付"


def transaction_json(trade: SandboxTrade, *, notify: bool = False) -> dict[str, Any]:
    state, desc = ("SUCCESS", "支付成功") if notify else trade_state(trade)
    data: dict[str, Any] = {
        "appid": trade.extra.get("appid", ""),
        "mchid": trade.merchant_id,
        "out_trade_no": trade.out_trade_no,
        "trade_state": state,
        "trade_state_desc": desc,
        "attach": trade.extra.get("attach", ""),
        "amount": {
            "total": fen(trade.amount),
            "currency": trade.currency,
            "payer_currency": trade.currency,
        },
    }
    if trade.status == SandboxTrade.Status.PAID:
        data.update(
            transaction_id=trade.trade_no,
            trade_type=trade.extra.get("trade_type", "NATIVE"),
            bank_type="OTHERS",
            success_time=rfc3339(trade.paid_at),
            payer={"openid": trade.extra.get("openid") or openid(trade)},
        )
        data["amount"]["payer_total"] = fen(trade.amount)
    return data


# Refunds


def refund_json(refund: SandboxRefund, *, status: str | None = None) -> dict[str, Any]:
    trade = refund.trade
    state = status or {"success": "SUCCESS", "processing": "PROCESSING"}.get(
        refund.status, "ABNORMAL"
    )
    data: dict[str, Any] = {
        "refund_id": refund.refund_id,
        "out_refund_no": refund.out_refund_no,
        "transaction_id": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": rfc3339(refund.created_at),
        "status": state,
        "funds_account": "AVAILABLE",
        "amount": {
            "total": fen(trade.amount),
            "refund": fen(refund.amount),
            "payer_total": fen(trade.amount),
            "payer_refund": fen(refund.amount),
            "settlement_total": fen(trade.amount),
            "settlement_refund": fen(refund.amount),
            "discount_refund": 0,
            "currency": "CNY",
        },
    }
    if state == "SUCCESS":
        data["success_time"] = rfc3339(refund.created_at)
    return data


def refund_notice(refund: SandboxRefund) -> dict[str, Any]:
    trade = refund.trade
    return {
        "mchid": trade.merchant_id,
        "out_trade_no": trade.out_trade_no,
        "transaction_id": trade.trade_no,
        "out_refund_no": refund.out_refund_no,
        "refund_id": refund.refund_id,
        "refund_status": "SUCCESS",
        "success_time": rfc3339(refund.created_at),
        "user_received_account": "支付用户零钱",
        "amount": {
            "total": fen(trade.amount),
            "refund": fen(refund.amount),
            "payer_total": fen(trade.amount),
            "payer_refund": fen(refund.amount),
        },
    }
