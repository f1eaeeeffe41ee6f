"""Simulated e-CNY acquiring bank (the protocol of ``docs/channels/ecny.md``, CHANNELS.md §5).

Endpoints (JSON POST, SM2-signed both ways) under ``polypay/v1.0/mchorders/``: ``qrcodeapply``,
``orderquery``, ``close``, ``refund``, ``refundquery``, ``statement``; plus the wallets' QR
payloads, which open the cashier page: ``qr/<order>/`` (e-CNY) and ``qr/<wallet>/<order>/``
(``alipay``, ``wechat``, ``unionpay``) for the other pay types the aggregated API serves
(``payMethod`` ``ECNY`` / ``ALIPAY`` / ``WECHAT`` / ``UNIONPAY``). Every pay type is open to a
merchant unless its registration lists ``pay_methods`` (then others are PAY_METHOD_NOT_OPEN).

Sandbox policies: requests whose reqTime is more than 5 minutes off are refused
(TIMESTAMP_EXPIRED); notifications (PAY on success and on a wallet decline, REFUND on every
refund) are signed once and retried after 15 s, 30 s, 1, 5, 15, 30 min, 1, 2, 6 and 12 h;
fee per payment 0.60 % for e-CNY and 0.80 % for the aggregated Alipay / WeChat / UnionPay QR
(ROUND_HALF_UP to the fen), the same rate returned on refunds; the file for day D holds
payments paid and refunds made on Beijing calendar day D. An unpaid order past its expireTime
is closed when next looked at. The fault switches are those of channel ``ecny`` whatever the
pay type: the bank is one provider.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from payments.channels.base import from_minor, to_minor
from payments.channels.ecny import errors as proto_errors
from payments.sandbox import core, keys
from payments.sandbox.ecny import protocol
from payments.sandbox.models import SandboxMerchant, SandboxRefund, SandboxTrade

CHANNEL = "ecny"
FEE_RATE = Decimal("0.006")  # e-CNY
#: the bank's rate per pay type (aggregated wallets cost more: the bank pays the wallet)
FEE_RATES = {
    "ECNY": FEE_RATE,
    "ALIPAY": Decimal("0.008"),
    "WECHAT": Decimal("0.008"),
    "UNIONPAY": Decimal("0.008"),
}
PAY_METHODS = tuple(FEE_RATES)
#: the path segment of each pay type's QR payload (e-CNY's is ``qr/<order>/``)
QR_WALLETS = {"ALIPAY": "alipay", "WECHAT": "wechat", "UNIONPAY": "unionpay"}


def _keypair_json() -> str:
    private, public = protocol.keypair()
    return json.dumps({"private": private, "public": public})


def bank_keys() -> tuple[str, str]:
    """The simulated bank's SM2 key pair (private hex, public hex), created once."""
    data = json.loads(keys.provider_file("ecny-bank.sm2.json", _keypair_json))
    return data["private"], data["public"]


def bank_sign(envelope: Mapping[str, str]) -> dict[str, str]:
    private, public = bank_keys()
    return protocol.sign_envelope(envelope, private, public)


class ECNYSandbox(core.SandboxProvider):
    channel = CHANNEL
    retry_schedule = (15, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 43200)
    declines = (
        core.DeclineReason(
            "insufficient_funds", "Wallet balance too low (钱包余额不足)", "BALANCE_NOT_ENOUGH"
        ),
        core.DeclineReason(
            "phone_mismatch",
            "Wallet phone / ID mismatch (手机号或实名信息不一致)",
            "WALLET_INFO_MISMATCH",
        ),
        core.DeclineReason("risk", "Risk control (风险控制拒绝)", "RISK_REJECT"),
        core.DeclineReason("timeout", "Payer timed out (用户支付超时)", "PAY_TIMEOUT"),
    )

    def provision(self, *, merchant_id: str, app_id: str = "") -> dict:
        """Give the merchant an SM2 key pair, register its public key (and APPID, if any).
        Other registration details (``pay_methods``) are kept."""
        safe = re.sub(r"[^0-9A-Za-z]", "_", merchant_id)
        pair = json.loads(keys.provider_file(f"ecny-merchant-{safe}.sm2.json", _keypair_json))
        with transaction.atomic():
            merchant, _ = SandboxMerchant.objects.select_for_update().get_or_create(
                channel=CHANNEL, merchant_id=merchant_id
            )
            merchant.config = {
                **merchant.config,
                "public_key": pair["public"],
                "app_id": app_id,
            }
            merchant.save(update_fields=["config"])
        return {
            "merchant_private_key": pair["private"],
            "merchant_public_key": pair["public"],
            "bank_public_key": bank_keys()[1],
        }

    def payment_notification(self, trade: SandboxTrade) -> tuple[dict[str, str], bytes] | None:
        """PAY notification on success, and on a wallet decline (tradeState FAIL + errCode)."""
        if trade.status == SandboxTrade.Status.PAID:
            biz = {**_trade_biz(trade), "tradeState": "SUCCESS"}
        elif trade.status == SandboxTrade.Status.DECLINED:
            biz = {
                **_trade_biz(trade),
                "tradeState": "FAIL",
                "errCode": trade.decline_code,
                "errMsg": _reason(trade.decline_code),
            }
        else:
            return None
        return notification(trade.merchant_id, "PAY", biz)

    def notification_accepted(self, status_code: int, body: bytes) -> bool:
        """Accepted only as HTTP 200 with ``{"returnCode": "SUCCESS"}``."""
        if status_code != 200:
            return False
        try:
            return json.loads(body.decode("utf-8")).get("returnCode") == "SUCCESS"
        except (UnicodeDecodeError, ValueError, AttributeError):
            return False


def _reason(code: str) -> str:
    spec = proto_errors.ERROR_CODES.get(code)
    return spec.reason_zh if spec else ""


def notification(
    merchant_id: str, kind: str, biz: Mapping[str, Any], *, sent: dt.datetime | None = None
) -> tuple[dict[str, str], bytes]:
    envelope = {
        "version": protocol.VERSION,
        "encoding": "UTF-8",
        "signMethod": protocol.SIGN_METHOD,
        "merId": merchant_id,
        "notifyType": kind,
        "notifyId": secrets.token_hex(16),
        "notifyTime": protocol.stamp(sent),
        "bizContent": protocol.compact_json(biz),
    }
    body = json.dumps(bank_sign(envelope), ensure_ascii=False).encode("utf-8")
    return {"Content-Type": "application/json; charset=utf-8"}, body


def pay_method_of(trade: SandboxTrade) -> str:
    return str(trade.extra.get("payMethod") or "ECNY")


def _trade_biz(trade: SandboxTrade) -> dict[str, str]:
    return {
        "orderId": trade.out_trade_no,
        "bankOrderId": trade.trade_no,
        "payMethod": pay_method_of(trade),
        "txnAmt": str(to_minor(trade.amount)),
        "currencyCode": trade.currency,
        "payTime": protocol.stamp(trade.paid_at) if trade.paid_at else "",
        "walletId": "0021****" + trade.trade_no[-4:],
    }


# ---------------------------------------------------------------------------------------------
# Request handling


class Refusal(Exception):
    def __init__(self, code: str, message: str = ""):
        super().__init__(message or _reason(code) or code)
        self.code = code


def _respond(
    merchant_id: str, *, biz: Mapping[str, Any] | None = None, error: Refusal | None = None
) -> HttpResponse:
    envelope = {
        "version": protocol.VERSION,
        "encoding": "UTF-8",
        "signMethod": protocol.SIGN_METHOD,
        "merId": merchant_id,
        "respTime": protocol.stamp(),
        "nonce": secrets.token_hex(16),
        "returnCode": "FAIL" if error else "SUCCESS",
        "errCode": error.code if error else "",
        "errMsg": str(error) if error else "",
        "bizContent": protocol.compact_json(biz) if biz is not None else "",
    }
    return JsonResponse(bank_sign(envelope), json_dumps_params={"ensure_ascii": False})


Handler = Callable[[SandboxMerchant, dict[str, Any]], Mapping[str, Any]]


def _endpoint(handler: Handler):
    """Fault switches, then envelope checks (JSON, merchant, SM2 signature, APPID, reqTime),
    then the handler; its Refusal becomes a signed FAIL answer."""

    @csrf_exempt
    @require_POST
    def view(request: HttpRequest) -> HttpResponse:
        fault = core.fault_response(CHANNEL)
        if fault is not None:
            return fault
        try:
            envelope = json.loads(request.body.decode("utf-8"))
            if not isinstance(envelope, dict):
                raise ValueError
        except (UnicodeDecodeError, ValueError):
            return _respond("", error=Refusal("PARAM_ERROR", "body is not a JSON object"))
        merchant_id = str(envelope.get("merId", ""))
        try:
            merchant = ECNYSandbox().merchant(merchant_id)
            if merchant is None:
                raise Refusal("MER_NOT_EXIST")
            if not protocol.verify_envelope(envelope, merchant.config["public_key"]):
                raise Refusal("SIGN_ERROR")
            if merchant.config.get("app_id") and envelope.get("appId") != merchant.config["app_id"]:
                raise Refusal("APPID_MISMATCH")
            try:
                sent = protocol.parse_stamp(str(envelope.get("reqTime", "")))
            except ValueError:
                raise Refusal("PARAM_ERROR", "reqTime is not yyyyMMddHHmmss") from None
            if abs(sent - protocol.beijing_now()) > protocol.REQUEST_TOLERANCE:
                raise Refusal("TIMESTAMP_EXPIRED")
            try:
                biz = json.loads(envelope.get("bizContent") or "{}")
            except ValueError:
                raise Refusal("PARAM_ERROR", "bizContent is not JSON") from None
            if not isinstance(biz, dict):
                raise Refusal("PARAM_ERROR", "bizContent is not an object")
            return _respond(merchant_id, biz=handler(merchant, biz))
        except Refusal as refusal:
            return _respond(merchant_id, error=refusal)

    return view


def _fen(biz: Mapping[str, Any], key: str) -> Decimal:
    value = str(biz.get(key, ""))
    if not value.isdigit() or int(value) <= 0:
        raise Refusal("PARAM_ERROR", f"{key} must be a positive amount in fen")
    return from_minor(value)


def _trade(
    merchant: SandboxMerchant, biz: Mapping[str, Any], *, lock: bool = False
) -> SandboxTrade:
    queryset = SandboxTrade.objects.select_for_update() if lock else SandboxTrade.objects
    trade = queryset.filter(
        channel=CHANNEL, merchant_id=merchant.merchant_id, out_trade_no=str(biz.get("orderId", ""))
    ).first()
    if trade is None:
        raise Refusal("ORDER_NOT_EXIST")
    return _expire(trade)


def _expire(trade: SandboxTrade) -> SandboxTrade:
    expire = trade.extra.get("expireTime", "")
    if (
        trade.status == SandboxTrade.Status.WAITING
        and expire
        and protocol.parse_stamp(expire) < protocol.beijing_now()
    ):
        trade.status = SandboxTrade.Status.CLOSED
        trade.save(update_fields=["status"])
    return trade


STATE = {"waiting": "NOTPAY", "paid": "SUCCESS", "declined": "FAIL", "closed": "CLOSED"}


def qrcode_apply(merchant: SandboxMerchant, biz: dict[str, Any]) -> Mapping[str, Any]:
    order_id = str(biz.get("orderId", ""))
    if not re.fullmatch(r"[0-9A-Za-z_-]{6,32}", order_id):
        raise Refusal("PARAM_ERROR", "orderId must be 6-32 letters, digits, - or _")
    amount = _fen(biz, "txnAmt")
    if biz.get("currencyCode", "CNY") != "CNY":
        raise Refusal("PARAM_ERROR", "currencyCode must be CNY")
    if not biz.get("notifyUrl"):
        raise Refusal("PARAM_ERROR", "notifyUrl is required")
    pay_method = str(biz.get("payMethod", ""))
    if pay_method not in PAY_METHODS:
        raise Refusal("PARAM_ERROR", f"payMethod must be one of {', '.join(PAY_METHODS)}")
    opened = merchant.config.get("pay_methods")
    if opened is not None and pay_method not in opened:
        raise Refusal("PAY_METHOD_NOT_OPEN", f"{pay_method} is not opened for this merchant")
    try:
        expire = protocol.stamp(
            protocol.parse_stamp(
                str(
                    biz.get("expireTime")
                    or protocol.stamp(protocol.beijing_now() + dt.timedelta(minutes=30))
                )
            )
        )
    except ValueError:
        raise Refusal("PARAM_ERROR", "expireTime is not yyyyMMddHHmmss") from None
    trade, created = SandboxTrade.objects.get_or_create(
        channel=CHANNEL,
        merchant_id=merchant.merchant_id,
        out_trade_no=order_id,
        defaults={
            "amount": amount,
            "currency": "CNY",
            "subject": str(biz.get("body", ""))[:255],
            "notify_url": str(biz["notifyUrl"]),
            "return_url": str(biz.get("returnUrl", "")),
            "extra": {"expireTime": expire, "txnTime": protocol.stamp(), "payMethod": pay_method},
        },
    )
    if not created and (
        trade.amount != amount
        or pay_method_of(trade) != pay_method
        or trade.status != SandboxTrade.Status.WAITING
    ):
        raise Refusal("ORDER_EXISTS")
    provider = ECNYSandbox()
    return {
        "orderId": order_id,
        "bankOrderId": trade.trade_no,
        "payMethod": pay_method,
        "qrCode": qr_payload(trade),
        "cashierUrl": provider.cashier_url(trade),
        "expireTime": expire,
    }


def order_query(merchant: SandboxMerchant, biz: dict[str, Any]) -> Mapping[str, Any]:
    trade = _trade(merchant, biz)
    refunded = trade.refunds.filter(status=SandboxRefund.Status.SUCCESS).aggregate(s=Sum("amount"))[
        "s"
    ] or Decimal("0")
    answer = {
        **_trade_biz(trade),
        "tradeState": STATE[trade.status],
        "refundAmt": str(to_minor(Decimal(refunded))),
    }
    if trade.status == SandboxTrade.Status.DECLINED:
        answer.update(errCode=trade.decline_code, errMsg=_reason(trade.decline_code))
    return answer


def close_order(merchant: SandboxMerchant, biz: dict[str, Any]) -> Mapping[str, Any]:
    with transaction.atomic():
        trade = _trade(merchant, biz, lock=True)
        if trade.status == SandboxTrade.Status.PAID:
            raise Refusal("ORDER_PAID")
        if trade.status == SandboxTrade.Status.WAITING:
            trade.status = SandboxTrade.Status.CLOSED
            trade.save(update_fields=["status"])
    return {
        "orderId": trade.out_trade_no,
        "bankOrderId": trade.trade_no,
        "tradeState": STATE[trade.status],
    }


def _refund_biz(refund: SandboxRefund) -> dict[str, str]:
    return {
        "orderId": refund.trade.out_trade_no,
        "bankOrderId": refund.trade.trade_no,
        "refundId": refund.out_refund_no,
        "bankRefundId": refund.refund_id,
        "refundAmt": str(to_minor(refund.amount)),
        "currencyCode": refund.trade.currency,
        "refundState": {"success": "SUCCESS", "processing": "PROCESSING", "failed": "FAIL"}[
            refund.status
        ],
        "refundTime": protocol.stamp(refund.created_at),
    }


def refund_order(merchant: SandboxMerchant, biz: dict[str, Any]) -> Mapping[str, Any]:
    refund_id = str(biz.get("refundId", ""))
    if not re.fullmatch(r"[0-9A-Za-z_-]{6,64}", refund_id):
        raise Refusal("PARAM_ERROR", "refundId must be 6-64 letters, digits, - or _")
    amount = _fen(biz, "refundAmt")
    with transaction.atomic():
        trade = _trade(merchant, biz, lock=True)
        existing = trade.refunds.filter(out_refund_no=refund_id).first()
        if existing is not None:
            if existing.amount != amount:
                raise Refusal("REFUND_CONFLICT")
            return _refund_biz(existing)
        if trade.status != SandboxTrade.Status.PAID:
            raise Refusal("ORDER_NOT_PAID")
        done = trade.refunds.filter(status=SandboxRefund.Status.SUCCESS).aggregate(s=Sum("amount"))[
            "s"
        ] or Decimal("0")
        if done + amount > trade.amount:
            raise Refusal("REFUND_AMOUNT_EXCEED")
        refund = SandboxRefund.objects.create(
            trade=trade, out_refund_no=refund_id, amount=amount, status=SandboxRefund.Status.SUCCESS
        )
        answer = _refund_biz(refund)
        headers, body = notification(merchant.merchant_id, "REFUND", answer)
        core.enqueue_notification(
            CHANNEL, str(biz.get("notifyUrl") or trade.notify_url), headers, body
        )
    return answer


def refund_query(merchant: SandboxMerchant, biz: dict[str, Any]) -> Mapping[str, Any]:
    refund = (
        SandboxRefund.objects.select_related("trade")
        .filter(
            trade__channel=CHANNEL,
            trade__merchant_id=merchant.merchant_id,
            trade__out_trade_no=str(biz.get("orderId", "")),
            out_refund_no=str(biz.get("refundId", "")),
        )
        .first()
    )
    if refund is None:
        raise Refusal("REFUND_NOT_EXIST")
    return _refund_biz(refund)


def statement(merchant: SandboxMerchant, biz: dict[str, Any]) -> Mapping[str, Any]:
    try:
        day = dt.datetime.strptime(str(biz.get("billDate", "")), "%Y%m%d").date()
    except ValueError:
        raise Refusal("PARAM_ERROR", "billDate is not yyyyMMdd") from None
    if day >= protocol.beijing_now().date() + dt.timedelta(days=1):
        raise Refusal("BILL_NOT_EXIST")
    data = build_file(merchant.merchant_id, day)
    return {
        "billDate": biz["billDate"],
        "fileName": f"ECNY_{merchant.merchant_id}_{day:%Y%m%d}.txt",
        "fileContent": base64.b64encode(data).decode("ascii"),
        "digest": protocol.sm3_hex(data),
    }


def qr_payload(trade: SandboxTrade) -> str:
    """The QR payload / deeplink of the order's wallet. The real bank answers each wallet's
    own format (an e-CNY wallet link, ``https://qr.alipay.com/…``, ``weixin://wxpay/…``,
    ``https://qr.95516.com/…``); the sandbox's stand-ins are pages that open its cashier."""
    wallet = QR_WALLETS.get(pay_method_of(trade))
    if wallet is None:
        return core.own_url() + reverse(f"sandbox:{CHANNEL}:qr", args=[trade.trade_no])
    return core.own_url() + reverse(f"sandbox:{CHANNEL}:wallet-qr", args=[wallet, trade.trade_no])


@require_GET
def qr(request: HttpRequest, trade_no: str, wallet: str = "") -> HttpResponse:
    """What a wallet app does with the QR payload: open the bank's cashier for that order.
    A QR is only good in its own wallet: another wallet's path does not know the order."""
    trade = get_object_or_404(SandboxTrade, channel=CHANNEL, trade_no=trade_no)
    if QR_WALLETS.get(pay_method_of(trade), "") != wallet:
        raise Http404("no such order for this wallet")
    return HttpResponseRedirect(ECNYSandbox().cashier_url(trade))


# ---------------------------------------------------------------------------------------------
# Reconciliation file


def fee_of(amount: Decimal, pay_method: str = "ECNY") -> Decimal:
    rate = FEE_RATES.get(pay_method, FEE_RATE)
    return (amount * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def build_file(merchant_id: str, day: dt.date) -> bytes:
    """H / D / T records for one merchant and Beijing day, UTF-8 with CRLF."""
    start = dt.datetime(day.year, day.month, day.day, tzinfo=protocol.BEIJING)
    end = start + dt.timedelta(days=1)
    rows: list[tuple[dt.datetime, str, Decimal, Decimal]] = []
    for trade in SandboxTrade.objects.filter(
        channel=CHANNEL,
        merchant_id=merchant_id,
        status=SandboxTrade.Status.PAID,
        paid_at__gte=start,
        paid_at__lt=end,
    ):
        fee = fee_of(trade.amount, pay_method_of(trade))
        fields = [
            "D",
            "PAY",
            merchant_id,
            trade.out_trade_no,
            trade.trade_no,
            "",
            "",
            protocol.stamp(trade.paid_at),
            f"{trade.amount:.2f}",
            f"{fee:.2f}",
            trade.currency,
            "SUCCESS",
        ]
        rows.append((trade.paid_at, "|".join(fields), trade.amount, fee))
    refunds = SandboxRefund.objects.select_related("trade").filter(
        trade__channel=CHANNEL,
        trade__merchant_id=merchant_id,
        status=SandboxRefund.Status.SUCCESS,
        created_at__gte=start,
        created_at__lt=end,
    )
    for refund in refunds:
        fee = -fee_of(refund.amount, pay_method_of(refund.trade))
        fields = [
            "D",
            "REFUND",
            merchant_id,
            refund.trade.out_trade_no,
            refund.trade.trade_no,
            refund.out_refund_no,
            refund.refund_id,
            protocol.stamp(refund.created_at),
            f"{refund.amount:.2f}",
            f"{fee:.2f}",
            refund.trade.currency,
            "SUCCESS",
        ]
        rows.append((refund.created_at, "|".join(fields), -refund.amount, fee))
    rows.sort(key=lambda row: row[0])
    pays = [r for r in rows if r[2] > 0]
    backs = [r for r in rows if r[2] < 0]
    pay_amount = sum((r[2] for r in pays), Decimal("0.00"))
    refund_amount = -sum((r[2] for r in backs), Decimal("0.00"))
    fees = sum((r[3] for r in rows), Decimal("0.00"))
    header = f"H|{protocol.FILE_TAG}|1.0|{merchant_id}|{day:%Y%m%d}|{protocol.stamp()}"
    trailer = "|".join(
        [
            "T",
            str(len(rows)),
            str(len(pays)),
            f"{pay_amount:.2f}",
            str(len(backs)),
            f"{refund_amount:.2f}",
            f"{fees:.2f}",
            f"{pay_amount - refund_amount - fees:.2f}",
        ]
    )
    return ("\r\n".join([header, *(r[1] for r in rows), trailer]) + "\r\n").encode("utf-8")


urlpatterns = [
    path("polypay/v1.0/mchorders/qrcodeapply", _endpoint(qrcode_apply), name="qrcodeapply"),
    path("polypay/v1.0/mchorders/orderquery", _endpoint(order_query), name="orderquery"),
    path("polypay/v1.0/mchorders/close", _endpoint(close_order), name="close"),
    path("polypay/v1.0/mchorders/refund", _endpoint(refund_order), name="refund"),
    path("polypay/v1.0/mchorders/refundquery", _endpoint(refund_query), name="refundquery"),
    path("polypay/v1.0/mchorders/statement", _endpoint(statement), name="statement"),
    path("qr/<str:trade_no>/", qr, name="qr"),
    path("qr/<slug:wallet>/<str:trade_no>/", qr, name="wallet-qr"),
]
