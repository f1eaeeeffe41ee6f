"""A local WeChat Pay APIv3 that speaks CHANNELS.md §2 from WeChat's side.

Endpoints (mounted under ``/sandbox/wechatpay/``, the same paths as api.mch.weixin.qq.com):
``POST v3/pay/transactions/native|h5``, ``GET v3/pay/transactions/out-trade-no/{no}?mchid=``,
``GET v3/pay/transactions/id/{id}?mchid=``, ``POST v3/pay/transactions/out-trade-no/{no}/close``,
``POST v3/refund/domestic/refunds``, ``GET v3/refund/domestic/refunds/{out_refund_no}``,
``GET v3/bill/tradebill`` and the bill file behind its ``download_url``.

Every request must carry a valid ``WECHATPAY2-SHA256-RSA2048`` Authorization made with the
merchant's registered API key (serial and a timestamp within 5 minutes); every answer and
notification is signed with the sandbox platform key ("微信支付公钥" mode, ``PUB_KEY_ID_…``);
notification resources are AES-256-GCM encrypted with the merchant's APIv3 key.

Sandbox choices (documented in docs/channels/wechatpay.md): a fixed 0.6 % fee per payment,
rounded half-up to the fen (written with 5 decimals, negative on refund rows); new refunds
answer PROCESSING and complete at once (query → SUCCESS, REFUND.SUCCESS notification); bills
exist for any day up to today that has trades; a payer's decline makes the order PAYERROR
(no notification, as WeChat only notifies successes), a timeout leaves it USERPAYING until
``time_expire``.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import json
import re
import secrets
import string
import time
import uuid
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core import signing
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.encoding import escape_uri_path
from django.views.decorators.csrf import csrf_exempt

from payments.sandbox import core, keys
from payments.sandbox.core import DeclineReason, SandboxProvider
from payments.sandbox.models import (
    SandboxMerchant,
    SandboxNotification,
    SandboxRefund,
    SandboxTrade,
)

CHANNEL = "wechatpay"
BEIJING = ZoneInfo("Asia/Shanghai")
SCHEME = "WECHATPAY2-SHA256-RSA2048"
FEE_RATE = Decimal("0.006")  # the sandbox's fixed fee: 0.6 %
CENT = Decimal("0.01")
MAX_CLOCK_SKEW = 300
BILL_SALT = "sandbox.wechatpay.bill"
BILL_LINK_SECONDS = 30
OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")

COLUMNS = {
    "ALL": "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注",
    "SUCCESS": "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,商品名称,商户数据包,手续费,费率,订单金额,费率备注",
    "REFUND": "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,退款申请时间,退款成功时间,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注",
}
SUMMARY_COLUMNS = "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"

PAYERROR_DESC = {
    "NOTENOUGH": "支付失败，余额不足",
    "ACCOUNT_ERROR": "支付失败，付款账户异常（手机号与银行预留信息不符）",
    "TRADE_ERROR": "支付失败，交易存在风险",
}


class ApiError(Exception):
    """A WeChat Pay error answer: HTTP status + ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# ---------------------------------------------------------------------------------------------
# Keys, signatures, encryption (WeChat's side)


def _platform_private_key():
    return serialization.load_pem_private_key(keys.provider_private_pem(CHANNEL).encode(), password=None)


def platform_public_key_id() -> str:
    """A stable ``PUB_KEY_ID_…`` for the sandbox platform key."""
    digest = hashlib.sha256(keys.provider_public_pem(CHANNEL).encode()).hexdigest()
    return "PUB_KEY_ID_01" + str(int(digest, 16))[:30]


def _rfc3339(moment: dt.datetime | None = None) -> str:
    return (moment or timezone.now()).astimezone(BEIJING).isoformat(timespec="seconds")


def sign_headers(body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """``Wechatpay-*`` headers over ``TIMESTAMP\\nNONCE\\nBODY\\n`` (§2.2)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    nonce = secrets.token_hex(16)
    message = f"{stamp}\n{nonce}\n{body.decode('utf-8')}\n".encode()
    signature = base64.b64encode(_platform_private_key().sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()
    return {
        "Wechatpay-Timestamp": stamp,
        "Wechatpay-Nonce": nonce,
        "Wechatpay-Signature": signature,
        "Wechatpay-Serial": platform_public_key_id(),
        "Wechatpay-Signature-Type": SCHEME,
    }


def encrypt_resource(plaintext: bytes, apiv3_key: str, associated_data: str) -> dict[str, str]:
    """AEAD_AES_256_GCM: base64(ciphertext‖tag) with a 12-character ASCII nonce (§2.3)."""
    nonce = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))
    sealed = AESGCM(apiv3_key.encode()).encrypt(nonce.encode(), plaintext, associated_data.encode())
    return {"algorithm": "AEAD_AES_256_GCM", "ciphertext": base64.b64encode(sealed).decode(), "associated_data": associated_data, "nonce": nonce}


def _json(data: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(data), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def answer(status: int, data: Mapping[str, Any] | None = None) -> HttpResponse:
    body = _json(data) if data is not None else b""
    response = HttpResponse(body, status=status, content_type="application/json")
    for name, value in sign_headers(body).items():
        response[name] = value
    response["Request-ID"] = uuid.uuid4().hex
    return response


def _fen(amount: Decimal) -> int:
    return int(Decimal(amount).quantize(CENT) * 100)


def _yuan(amount: Decimal) -> str:
    return format(Decimal(amount).quantize(CENT), "f")


def fee_for(amount: Decimal) -> Decimal:
    return (Decimal(amount) * FEE_RATE).quantize(CENT, rounding=ROUND_HALF_UP)


def _digits(seed: str, count: int) -> str:
    return str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))[-count:].rjust(count, "0")


def _transaction_id() -> str:
    """28 digits like WeChat's (42000 + 5 digits + yyyyMMdd + 10 digits)."""
    day = timezone.now().astimezone(BEIJING).strftime("%Y%m%d")
    return "42000" + "".join(secrets.choice(string.digits) for _ in range(5)) + day + "".join(secrets.choice(string.digits) for _ in range(10))


def _refund_id() -> str:
    day = timezone.now().astimezone(BEIJING).strftime("%Y%m%d")
    return "503" + "".join(secrets.choice(string.digits) for _ in range(8)) + day + "".join(secrets.choice(string.digits) for _ in range(10))


def openid(trade: SandboxTrade) -> str:
    return "oSBX" + base64.urlsafe_b64encode(hashlib.sha256(trade.trade_no.encode()).digest()).decode()[:24]


def _apiv3_key() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))


# ---------------------------------------------------------------------------------------------
# The provider


class WechatPaySandbox(SandboxProvider):
    channel = CHANNEL
    #: 15s/15s/30s/3m/10m/20m/30m/30m/30m/60m/3h/3h/3h/6h/6h — 24h4m in all (§2.3)
    retry_schedule = (15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10800, 10800, 10800, 21600, 21600)
    declines = (
        DeclineReason("insufficient_funds", "余额不足 · balance too low", "NOTENOUGH"),
        DeclineReason("phone_mismatch", "手机号与银行预留不符 · phone does not match the bank", "ACCOUNT_ERROR"),
        DeclineReason("risk", "交易存在风险 · risk decline", "TRADE_ERROR"),
        DeclineReason("timeout", "用户支付中未完成 · payer walked away", "USERPAYING"),
    )

    def provision(self, *, merchant_id: str, app_id: str = "") -> dict:
        """Register mchid ``merchant_id`` bound to ``app_id``: the merchant API key pair (made
        once per machine), its certificate serial and APIv3 key. The provider keeps the PUBLIC
        key, serial and APIv3 key (it encrypts notifications with it)."""
        private_pem = keys.provider_file(f"wechatpay-merchant-{merchant_id}.key.pem", keys.generate_rsa_private_pem)
        apiv3_key = keys.provider_file(f"wechatpay-merchant-{merchant_id}.apiv3", _apiv3_key).strip()
        public_pem = keys.public_pem_of(private_pem)
        der = serialization.load_pem_public_key(public_pem.encode()).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        serial_no = hashlib.sha1(der).hexdigest().upper()
        SandboxMerchant.objects.update_or_create(
            channel=CHANNEL,
            merchant_id=merchant_id,
            defaults={"config": {"appid": app_id, "public_key": public_pem, "serial_no": serial_no, "apiv3_key": apiv3_key}},
        )
        return {
            "private_key": private_pem,
            "serial_no": serial_no,
            "apiv3_key": apiv3_key,
            "platform_public_key": keys.provider_public_pem(CHANNEL),
            "platform_public_key_id": platform_public_key_id(),
        }

    def settle(self, trade: SandboxTrade, *, approve: bool, decline_key: str = "") -> None:
        expire_if_due(trade)
        super().settle(trade, approve=approve, decline_key=decline_key)

    def payment_notification(self, trade: SandboxTrade) -> tuple[Mapping[str, str], bytes] | None:
        """TRANSACTION.SUCCESS for a paid order; WeChat sends nothing for failures (§2.3)."""
        if trade.status != SandboxTrade.Status.PAID:
            return None
        return event(trade.merchant_id, "TRANSACTION.SUCCESS", "支付成功", "transaction", transaction_json(trade, notify=True))

    def notification_accepted(self, status_code: int, body: bytes) -> bool:
        """HTTP 200 or 204 stops the retries; the body does not matter (§2.3)."""
        return status_code in (200, 204)

    def delivery_headers(self, note: SandboxNotification) -> Mapping[str, str]:
        """Each try is signed afresh: the merchant refuses timestamps 5 minutes old (§2.2)."""
        fresh = dict(note.headers)
        fresh.update(sign_headers(bytes(note.body)))
        return fresh


def event(mchid: str, event_type: str, summary: str, original_type: str, resource: Mapping[str, Any]) -> tuple[dict[str, str], bytes]:
    """A signed notification envelope with the resource sealed by the merchant's APIv3 key."""
    merchant = SandboxMerchant.objects.get(channel=CHANNEL, merchant_id=mchid)
    sealed = encrypt_resource(_json(resource), merchant.config["apiv3_key"], original_type)
    envelope = {
        "id": str(uuid.uuid4()),
        "create_time": _rfc3339(),
        "resource_type": "encrypt-resource",
        "event_type": event_type,
        "summary": summary,
        "resource": {"original_type": original_type, **sealed},
    }
    body = _json(envelope)
    return {"Content-Type": "application/json", **sign_headers(body)}, body


# ---------------------------------------------------------------------------------------------
# Orders


def expire_if_due(trade: SandboxTrade) -> None:
    expires = trade.extra.get("time_expire")
    if not expires or trade.status not in (SandboxTrade.Status.WAITING, SandboxTrade.Status.DECLINED):
        return
    if trade.status == SandboxTrade.Status.DECLINED and trade.decline_code != "USERPAYING":
        return
    if timezone.now() >= dt.datetime.fromisoformat(expires):
        SandboxTrade.objects.filter(pk=trade.pk, status=trade.status).update(status=SandboxTrade.Status.CLOSED)
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
        "amount": {"total": _fen(trade.amount), "currency": trade.currency, "payer_currency": trade.currency},
    }
    if trade.status == SandboxTrade.Status.PAID:
        data.update(
            transaction_id=trade.trade_no,
            trade_type=trade.extra.get("trade_type", "NATIVE"),
            bank_type="OTHERS",
            success_time=_rfc3339(trade.paid_at),
            payer={"openid": openid(trade)},
        )
        data["amount"]["payer_total"] = _fen(trade.amount)
    return data


def _body(request: HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        raise ApiError(400, "PARAM_ERROR", "请求体不是合法的 JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "PARAM_ERROR", "请求体不是 JSON 对象")
    return data


def _create(request: HttpRequest, merchant: SandboxMerchant, trade_type: str) -> dict[str, Any]:
    data = _body(request)
    for name in ("appid", "mchid", "description", "out_trade_no", "notify_url", "amount"):
        if not data.get(name):
            raise ApiError(400, "PARAM_ERROR", f"输入源“/body/{name}”映射到字段“{name}”必填性规则校验失败，此字段为必填项")
    if data["mchid"] != merchant.merchant_id:
        raise ApiError(400, "PARAM_ERROR", "请求的商户号与认证的商户号不一致")
    if data["appid"] != merchant.config.get("appid"):
        raise ApiError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
    out_trade_no = str(data["out_trade_no"])
    if not OUT_TRADE_NO.match(out_trade_no):
        raise ApiError(400, "PARAM_ERROR", "out_trade_no 须为6-32位数字、大小写字母或_-|*")
    amount = data["amount"]
    if not isinstance(amount, dict) or not isinstance(amount.get("total"), int) or amount["total"] < 1:
        raise ApiError(400, "PARAM_ERROR", "amount.total 须为正整数（分）")
    if amount.get("currency", "CNY") != "CNY":
        raise ApiError(400, "PARAM_ERROR", "仅支持人民币 CNY")
    if trade_type == "MWEB" and not (data.get("scene_info") or {}).get("payer_client_ip"):
        raise ApiError(400, "PARAM_ERROR", "H5 支付必须填写 scene_info.payer_client_ip")
    time_expire = None
    if data.get("time_expire"):
        try:
            time_expire = dt.datetime.fromisoformat(str(data["time_expire"])).isoformat()
        except ValueError:
            raise ApiError(400, "PARAM_ERROR", "time_expire 须为 rfc3339 格式") from None
    total = (Decimal(amount["total"]) / 100).quantize(CENT)
    subject = str(data["description"])[:127]
    trades = SandboxTrade.objects.filter(channel=CHANNEL, merchant_id=merchant.merchant_id)
    trade = trades.filter(out_trade_no=out_trade_no).first()
    if trade is None:
        try:
            with transaction.atomic():
                trade = SandboxTrade.objects.create(
                    channel=CHANNEL, merchant_id=merchant.merchant_id, out_trade_no=out_trade_no, trade_no=_transaction_id(),
                    amount=total, subject=subject, notify_url=str(data["notify_url"]),
                    extra={"appid": data["appid"], "trade_type": trade_type, "time_expire": time_expire, "attach": str(data.get("attach", ""))},
                )
        except IntegrityError:
            trade = trades.get(out_trade_no=out_trade_no)
    expire_if_due(trade)
    if trade.status == SandboxTrade.Status.PAID:
        raise ApiError(400, "ORDERPAID", "该订单已支付")
    if trade.status == SandboxTrade.Status.CLOSED:
        raise ApiError(400, "ORDER_CLOSED", "订单已关闭")
    if trade.amount != total or trade.subject != subject or trade.extra.get("trade_type") != trade_type:
        raise ApiError(403, "OUT_TRADE_NO_USED", "商户订单号重复，且订单信息不一致")
    return {"url": WechatPaySandbox().cashier_url(trade)}


def api_native(request: HttpRequest, merchant: SandboxMerchant) -> HttpResponse:
    return answer(200, {"code_url": _create(request, merchant, "NATIVE")["url"]})


def api_h5(request: HttpRequest, merchant: SandboxMerchant) -> HttpResponse:
    return answer(200, {"h5_url": _create(request, merchant, "MWEB")["url"]})


def _require_mchid(request: HttpRequest, merchant: SandboxMerchant) -> None:
    if request.GET.get("mchid") != merchant.merchant_id:
        raise ApiError(400, "PARAM_ERROR", "mchid 必填且须与认证的商户号一致")


def api_query_out_trade_no(request: HttpRequest, merchant: SandboxMerchant, out_trade_no: str) -> HttpResponse:
    _require_mchid(request, merchant)
    trade = SandboxTrade.objects.filter(channel=CHANNEL, merchant_id=merchant.merchant_id, out_trade_no=out_trade_no).first()
    if trade is None:
        raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
    expire_if_due(trade)
    return answer(200, transaction_json(trade))


def api_query_id(request: HttpRequest, merchant: SandboxMerchant, transaction_id: str) -> HttpResponse:
    _require_mchid(request, merchant)
    trade = SandboxTrade.objects.filter(
        channel=CHANNEL, merchant_id=merchant.merchant_id, trade_no=transaction_id, status=SandboxTrade.Status.PAID).first()
    if trade is None:
        raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
    return answer(200, transaction_json(trade))


def api_close(request: HttpRequest, merchant: SandboxMerchant, out_trade_no: str) -> HttpResponse:
    if _body(request).get("mchid") != merchant.merchant_id:
        raise ApiError(400, "PARAM_ERROR", "mchid 必填且须与认证的商户号一致")
    with transaction.atomic():
        trade = SandboxTrade.objects.select_for_update().filter(
            channel=CHANNEL, merchant_id=merchant.merchant_id, out_trade_no=out_trade_no).first()
        if trade is None:
            raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
        if trade.status == SandboxTrade.Status.PAID:
            raise ApiError(400, "ORDERPAID", "订单已支付，不能关闭")
        if trade.status != SandboxTrade.Status.CLOSED:
            trade.status = SandboxTrade.Status.CLOSED
            trade.save(update_fields=["status"])
    return answer(204)


# ---------------------------------------------------------------------------------------------
# Refunds


def refund_json(refund: SandboxRefund, *, status: str | None = None) -> dict[str, Any]:
    trade = refund.trade
    state = status or {"success": "SUCCESS", "processing": "PROCESSING"}.get(refund.status, "ABNORMAL")
    data: dict[str, Any] = {
        "refund_id": refund.refund_id,
        "out_refund_no": refund.out_refund_no,
        "transaction_id": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": _rfc3339(refund.created_at),
        "status": state,
        "funds_account": "AVAILABLE",
        "amount": {
            "total": _fen(trade.amount), "refund": _fen(refund.amount), "payer_total": _fen(trade.amount),
            "payer_refund": _fen(refund.amount), "settlement_total": _fen(trade.amount),
            "settlement_refund": _fen(refund.amount), "discount_refund": 0, "currency": "CNY",
        },
    }
    if state == "SUCCESS":
        data["success_time"] = _rfc3339(refund.created_at)
    return data


def _refund_notice(refund: SandboxRefund) -> dict[str, Any]:
    trade = refund.trade
    return {
        "mchid": trade.merchant_id, "out_trade_no": trade.out_trade_no, "transaction_id": trade.trade_no,
        "out_refund_no": refund.out_refund_no, "refund_id": refund.refund_id, "refund_status": "SUCCESS",
        "success_time": _rfc3339(refund.created_at), "user_received_account": "支付用户零钱",
        "amount": {"total": _fen(trade.amount), "refund": _fen(refund.amount), "payer_total": _fen(trade.amount), "payer_refund": _fen(refund.amount)},
    }


def api_refund(request: HttpRequest, merchant: SandboxMerchant) -> HttpResponse:
    """Idempotent by out_refund_no; a new refund answers PROCESSING and notifies REFUND.SUCCESS."""
    data = _body(request)
    out_refund_no = str(data.get("out_refund_no") or "")
    amount = data.get("amount")
    if not out_refund_no or not isinstance(amount, dict) or not isinstance(amount.get("refund"), int) or not isinstance(amount.get("total"), int):
        raise ApiError(400, "PARAM_ERROR", "out_refund_no、amount.refund、amount.total 为必填项")
    if amount["refund"] < 1:
        raise ApiError(400, "PARAM_ERROR", "amount.refund 须为正整数（分）")
    with transaction.atomic():
        trades = SandboxTrade.objects.select_for_update().filter(channel=CHANNEL, merchant_id=merchant.merchant_id)
        if data.get("transaction_id"):
            trade = trades.filter(trade_no=data["transaction_id"]).first()
        elif data.get("out_trade_no"):
            trade = trades.filter(out_trade_no=data["out_trade_no"]).first()
        else:
            raise ApiError(400, "PARAM_ERROR", "transaction_id 与 out_trade_no 须二选一")
        if trade is None:
            raise ApiError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        existing = SandboxRefund.objects.filter(trade__channel=CHANNEL, trade__merchant_id=merchant.merchant_id, out_refund_no=out_refund_no).first()
        if existing is not None:
            if existing.trade_id != trade.pk or _fen(existing.amount) != amount["refund"]:
                raise ApiError(400, "INVALID_REQUEST", "退款单号已存在，且与本次请求的订单或金额不一致")
            return answer(200, refund_json(existing))
        if trade.status != SandboxTrade.Status.PAID:
            raise ApiError(400, "INVALID_REQUEST", "订单未支付，不能退款")
        if amount["total"] != _fen(trade.amount):
            raise ApiError(400, "PARAM_ERROR", "订单金额与原订单不一致")
        value = (Decimal(amount["refund"]) / 100).quantize(CENT)
        if value > trade.amount - trade.refunded:
            raise ApiError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        refund = SandboxRefund.objects.create(trade=trade, out_refund_no=out_refund_no, refund_id=_refund_id(), amount=value)
        notify_url = str(data.get("notify_url") or trade.notify_url)
        if notify_url:
            headers, body = event(merchant.merchant_id, "REFUND.SUCCESS", "退款成功", "refund", _refund_notice(refund))
            core.enqueue_notification(CHANNEL, notify_url, headers, body)
    return answer(200, refund_json(refund, status="PROCESSING"))


def api_refund_query(request: HttpRequest, merchant: SandboxMerchant, out_refund_no: str) -> HttpResponse:
    refund = SandboxRefund.objects.filter(trade__channel=CHANNEL, trade__merchant_id=merchant.merchant_id, out_refund_no=out_refund_no).select_related("trade").first()
    if refund is None:
        raise ApiError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
    return answer(200, refund_json(refund))


# ---------------------------------------------------------------------------------------------
# Bills (§2.5, §2.6)


def _cell(text: str) -> str:
    """Bills are unquoted: keep commas, backticks and line breaks out of free text."""
    return text.replace(",", "，").replace("`", "'").replace("\r", " ").replace("\n", " ")


def _bill_time(moment: dt.datetime | None) -> str:
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S") if moment else ""


def bill_text(mchid: str, day: dt.date, bill_type: str) -> str | None:
    """The bill of ``day`` (Beijing) in the §2.6 layout: BOM, header, backtick rows, two
    summary lines, CRLF. None when the day has no rows (NO_STATEMENT_EXIST)."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=BEIJING)
    end = start + dt.timedelta(days=1)
    rows: list[tuple[dt.datetime, int, dict[str, str]]] = []
    if bill_type in ("ALL", "SUCCESS"):
        paid = SandboxTrade.objects.filter(channel=CHANNEL, merchant_id=mchid, paid_at__gte=start, paid_at__lt=end).exclude(paid_at=None)
        for trade in paid:
            amount = _yuan(trade.amount)
            rows.append((trade.paid_at, trade.pk, {
                **_common(trade), "交易状态": "SUCCESS", "应结订单金额": amount, "微信退款单号": "0", "商户退款单号": "0",
                "退款金额": "0.00", "充值券退款金额": "0.00", "退款类型": "", "退款状态": "",
                "手续费": f"{fee_for(trade.amount):.5f}", "订单金额": amount, "申请退款金额": "0.00",
            }))
    if bill_type in ("ALL", "REFUND"):
        refunds = SandboxRefund.objects.filter(
            trade__channel=CHANNEL, trade__merchant_id=mchid, status=SandboxRefund.Status.SUCCESS,
            created_at__gte=start, created_at__lt=end,
        ).select_related("trade")
        for refund in refunds:
            amount = _yuan(refund.amount)
            rows.append((refund.created_at, refund.pk, {
                **_common(refund.trade), "交易状态": "REFUND", "应结订单金额": "0.00", "退款申请时间": _bill_time(refund.created_at),
                "退款成功时间": _bill_time(refund.created_at), "微信退款单号": refund.refund_id, "商户退款单号": refund.out_refund_no,
                "退款金额": amount, "充值券退款金额": "0.00", "退款类型": "ORIGINAL", "退款状态": "SUCCESS",
                "手续费": f"{-fee_for(refund.amount):.5f}", "订单金额": "0.00", "申请退款金额": amount,
            }))
    if not rows:
        return None
    rows.sort(key=lambda r: (r[0], r[1]))
    columns = COLUMNS[bill_type].split(",")
    lines = [COLUMNS[bill_type]]
    lines += ["`" + ",`".join(row.get(c, "") for c in columns) for _, _, row in rows]

    def total(column: str) -> Decimal:
        return sum((Decimal(row[column]) for _, _, row in rows), Decimal(0))

    lines.append(SUMMARY_COLUMNS)
    lines.append("`" + ",`".join([
        str(len(rows)), _yuan(total("应结订单金额")), _yuan(total("退款金额")), _yuan(total("充值券退款金额")),
        f"{total('手续费'):.5f}", _yuan(total("订单金额")), _yuan(total("申请退款金额")),
    ]))
    return "\ufeff" + "\r\n".join(lines) + "\r\n"


def _common(trade: SandboxTrade) -> dict[str, str]:
    return {
        "交易时间": _bill_time(trade.paid_at), "公众账号ID": str(trade.extra.get("appid", "")), "商户号": trade.merchant_id,
        "特约商户号": "0", "设备号": "", "微信订单号": trade.trade_no, "商户订单号": trade.out_trade_no,
        "用户标识": openid(trade), "交易类型": str(trade.extra.get("trade_type", "NATIVE")), "付款银行": "OTHERS",
        "货币种类": "CNY", "代金券金额": "0.00", "商品名称": _cell(trade.subject), "商户数据包": _cell(str(trade.extra.get("attach", ""))),
        "费率": "0.60%", "费率备注": "",
    }


def api_tradebill(request: HttpRequest, merchant: SandboxMerchant) -> HttpResponse:
    try:
        day = dt.date.fromisoformat(request.GET.get("bill_date", ""))
    except ValueError:
        raise ApiError(400, "PARAM_ERROR", "bill_date 格式应为 yyyy-MM-DD") from None
    bill_type = request.GET.get("bill_type", "ALL")
    if bill_type not in COLUMNS:
        raise ApiError(400, "PARAM_ERROR", "bill_type 仅支持 ALL、SUCCESS、REFUND")
    tar_type = request.GET.get("tar_type", "")
    if tar_type not in ("", "GZIP"):
        raise ApiError(400, "PARAM_ERROR", "tar_type 仅支持 GZIP")
    today = timezone.now().astimezone(BEIJING).date()
    if day > today or day < today - dt.timedelta(days=92):
        raise ApiError(400, "INVALID_REQUEST", "仅支持下载三个月内的账单")
    text = bill_text(merchant.merchant_id, day, bill_type)
    if text is None:
        raise ApiError(400, "NO_STATEMENT_EXIST", "账单文件不存在")
    token = signing.dumps({"mchid": merchant.merchant_id, "day": day.isoformat(), "bill_type": bill_type, "tar_type": tar_type}, salt=BILL_SALT)
    url = request.build_absolute_uri(reverse("sandbox:wechatpay:billfile")) + "?token=" + token
    return answer(200, {"hash_type": "SHA1", "hash_value": hashlib.sha1(text.encode("utf-8")).hexdigest(), "download_url": url})


def api_billfile(request: HttpRequest, merchant: SandboxMerchant) -> HttpResponse:
    """The bill stream itself: not signed (integrity via the SHA-1), gzip when asked (§2.5)."""
    try:
        grant = signing.loads(request.GET.get("token", ""), salt=BILL_SALT, max_age=BILL_LINK_SECONDS)
    except signing.BadSignature:
        raise ApiError(400, "INVALID_REQUEST", "下载链接无效或已过期") from None
    if grant["mchid"] != merchant.merchant_id:
        raise ApiError(403, "NO_AUTH", "无权下载该账单")
    text = bill_text(grant["mchid"], dt.date.fromisoformat(grant["day"]), grant["bill_type"]) or ""
    data = text.encode("utf-8")
    if grant["tar_type"] == "GZIP":
        data = gzip.compress(data, mtime=0)
    return HttpResponse(data, content_type="application/octet-stream")


# ---------------------------------------------------------------------------------------------
# Authentication and routing


def authenticate(request: HttpRequest) -> SandboxMerchant:
    """Verify ``Authorization`` the way WeChat does (§2.1): scheme, registered serial,
    a timestamp within 5 minutes, SHA256withRSA over the canonical request."""
    scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
    if scheme != SCHEME:
        raise ApiError(401, "SIGN_ERROR", "Authorization 缺失或认证类型不是 WECHATPAY2-SHA256-RSA2048")
    attrs = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    for name in ("mchid", "nonce_str", "timestamp", "serial_no", "signature"):
        if not attrs.get(name):
            raise ApiError(401, "SIGN_ERROR", f"Authorization 缺少 {name}")
    merchant = SandboxMerchant.objects.filter(channel=CHANNEL, merchant_id=attrs["mchid"]).first()
    if merchant is None:
        raise ApiError(400, "MCH_NOT_EXISTS", "商户号不存在")
    if attrs["serial_no"] != merchant.config.get("serial_no"):
        raise ApiError(401, "SIGN_ERROR", "商户证书序列号有误")
    try:
        stamp = int(attrs["timestamp"])
    except ValueError:
        raise ApiError(401, "SIGN_ERROR", "timestamp 格式错误") from None
    if abs(time.time() - stamp) >= MAX_CLOCK_SKEW:
        raise ApiError(401, "SIGN_ERROR", "请求时间戳与服务器时间相差超过5分钟")
    query = request.META.get("QUERY_STRING", "")
    canonical = escape_uri_path(request.path) + (f"?{query}" if query else "")
    try:
        body = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "PARAM_ERROR", "请求体须为 UTF-8") from None
    message = f"{request.method}\n{canonical}\n{stamp}\n{attrs['nonce_str']}\n{body}\n"
    try:
        key = serialization.load_pem_public_key(merchant.config["public_key"].encode())
        key.verify(base64.b64decode(attrs["signature"], validate=True), message.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError, KeyError):
        raise ApiError(401, "SIGN_ERROR", "签名错误") from None
    return merchant


def api(methods: tuple[str, ...], handler: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Faults first, then the HTTP method, then the merchant's signature."""

    @csrf_exempt
    def view(request: HttpRequest, **kwargs: str) -> HttpResponse:
        fault = core.fault_response(CHANNEL)
        if fault is not None:
            return fault
        try:
            if request.method not in methods:
                raise ApiError(405, "INVALID_REQUEST", f"请使用 {'/'.join(methods)} 方法")
            return handler(request, authenticate(request), **kwargs)
        except ApiError as error:
            return answer(error.status, {"code": error.code, "message": error.message})

    return view


urlpatterns = [
    path("v3/pay/transactions/native", api(("POST",), api_native), name="native"),
    path("v3/pay/transactions/h5", api(("POST",), api_h5), name="h5"),
    path("v3/pay/transactions/out-trade-no/<str:out_trade_no>/close", api(("POST",), api_close), name="close"),
    path("v3/pay/transactions/out-trade-no/<str:out_trade_no>", api(("GET",), api_query_out_trade_no), name="query"),
    path("v3/pay/transactions/id/<str:transaction_id>", api(("GET",), api_query_id), name="query-id"),
    path("v3/refund/domestic/refunds/<str:out_refund_no>", api(("GET",), api_refund_query), name="refund-query"),
    path("v3/refund/domestic/refunds", api(("POST",), api_refund), name="refund"),
    path("v3/bill/tradebill", api(("GET",), api_tradebill), name="tradebill"),
    path("v3/billdownload/file", api(("GET",), api_billfile), name="billfile"),
]
