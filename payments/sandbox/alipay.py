"""A local Alipay open-platform gateway that speaks CHANNELS.md §1 from Alipay's side.

Endpoints (mounted under ``/sandbox/alipay/``):

* ``gateway.do`` — every API method by its ``method`` parameter, GET or POST form. Requests are
  verified with the merchant's registered application public key (RSA2 over the sorted,
  unencoded ``k=v`` string, ``sign_type`` included); answers are ``{"<method>_response": {…},
  "sign": "…"}`` signed over the raw response object with the sandbox's Alipay key.
  ``alipay.trade.page.pay`` / ``wap.pay`` arrive from the buyer's browser and redirect to the
  cashier; ``alipay.trade.precreate``'s ``qr_code`` is the cashier URL.
* ``downloadBillFile.resource`` — the trade bill ZIP behind ``bill_download_url`` (valid 30 s).

Sandbox choices (documented in docs/channels/alipay.md): the service fee is a fixed 0.6 % of
each payment (rounded half-up to the fen), returned pro rata on refunds and written in 服务费
as a negative number on 交易 rows and a positive one on 退款 rows; bills are available for any
day up to today; a payer's decline closes the trade (``TRADE_CLOSED`` notification) except a
timeout, which leaves it waiting until ``time_expire``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import secrets
import uuid
import zipfile
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from django.core import signing
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt

from payments.sandbox import core, keys
from payments.sandbox.core import DeclineReason, SandboxProvider
from payments.sandbox.models import SandboxMerchant, SandboxRefund, SandboxTrade

CHANNEL = "alipay"
BEIJING = ZoneInfo("Asia/Shanghai")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
FEE_RATE = Decimal("0.006")  # the sandbox's fixed service fee: 0.6 %
CENT = Decimal("0.01")
BILL_LINK_SECONDS = 30  # "获取连接后30秒后未下载，链接地址失效" (§1.6)
BILL_SALT = "sandbox.alipay.bill"

PAGE_METHODS = {"alipay.trade.page.pay": "FAST_INSTANT_TRADE_PAY", "alipay.trade.wap.pay": "QUICK_WAP_WAY"}

DETAIL_COLUMNS = (
    "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,"
    "订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,"
    "券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注"
)
SUMMARY_COLUMNS = (
    "门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,"
    "商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）"
)
# marker lines copied from the real bill (samples/alipay, §1.7)
DETAIL_BEGIN = "#-----------------------------------------业务明细列表----------------------------------------"
DETAIL_END = "#-----------------------------------------业务明细列表结束------------------------------------"
SUMMARY_BEGIN = "#-----------------------------------------业务汇总列表----------------------------------------"
SUMMARY_END = "#-----------------------------------------业务汇总列表结束------------------------------------"


class GatewayError(Exception):
    """An Alipay error answer: ``code`` (40001/40002/40004/20000) and ``sub_code``."""

    MESSAGES = {"40001": "Missing Required Arguments", "40002": "Invalid Arguments", "40004": "Business Failed", "20000": "Service Currently Unavailable"}

    def __init__(self, code: str, sub_code: str, sub_msg: str):
        super().__init__(sub_msg)
        self.code, self.sub_code, self.sub_msg = code, sub_code, sub_msg

    def body(self) -> dict[str, str]:
        return {"code": self.code, "msg": self.MESSAGES.get(self.code, "Failed"), "sub_code": self.sub_code, "sub_msg": self.sub_msg}


def _business(sub_code: str, sub_msg: str) -> GatewayError:
    return GatewayError("40004", sub_code, sub_msg)


# ---------------------------------------------------------------------------------------------
# Keys and signatures (Alipay's side)


def _alipay_private_key():
    return serialization.load_pem_private_key(keys.provider_private_pem(CHANNEL).encode(), password=None)


def _string_to_sign(params: Mapping[str, str], exclude: tuple[str, ...]) -> str:
    return "&".join(f"{k}={params[k]}" for k in sorted(params) if k not in exclude and params[k] != "")


def _sign(content: str) -> str:
    return base64.b64encode(_alipay_private_key().sign(content.encode(), padding.PKCS1v15(), hashes.SHA256())).decode()


def _verify(content: str, signature: str, public_pem: str) -> bool:
    try:
        key = serialization.load_pem_public_key(public_pem.encode())
        key.verify(base64.b64decode(signature, validate=True), content.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def _beijing(moment: dt.datetime | None = None) -> str:
    return (moment or timezone.now()).astimezone(BEIJING).strftime(TIME_FORMAT)


def _yuan(amount: Decimal) -> str:
    return format(Decimal(amount).quantize(CENT), "f")


def fee_for(amount: Decimal) -> Decimal:
    return (Decimal(amount) * FEE_RATE).quantize(CENT, rounding=ROUND_HALF_UP)


def _digits(seed: str, count: int) -> str:
    value = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    return str(value)[-count:].rjust(count, "0")


def _new_trade_no() -> str:
    """28 digits like Alipay's (yyyyMMdd + 22001 + 15 digits)."""
    return timezone.now().astimezone(BEIJING).strftime("%Y%m%d") + "22001" + "".join(secrets.choice("0123456789") for _ in range(15))


def _buyer(trade: SandboxTrade) -> tuple[str, str]:
    """A stable simulated buyer (user id, masked logon id) for a trade."""
    return "2088" + _digits(trade.trade_no, 12), f"sbx***@{_digits(trade.trade_no, 3)}.sandbox.com"


# ---------------------------------------------------------------------------------------------
# The provider


class AlipaySandbox(SandboxProvider):
    channel = CHANNEL
    #: after the first try: 2m, 10m, 10m, 1h, 2h, 6h, 15h — 8 deliveries within 25 h (§1.4)
    retry_schedule = (120, 600, 600, 3600, 7200, 21600, 54000)
    declines = (
        DeclineReason("insufficient_funds", "买家余额不足 · balance too low", "ACQ.BUYER_BALANCE_NOT_ENOUGH"),
        DeclineReason("phone_mismatch", "身份/银行预留手机号不符 · identity or phone mismatch", "ACQ.ERROR_BUYER_CERTIFY_LEVEL_LIMIT"),
        DeclineReason("risk", "支付有风险 · risk decline", "ACQ.PAYMENT_REQUEST_HAS_RISK"),
        DeclineReason("timeout", "超时未支付 · payer walked away", "ACQ.TRADE_HAS_CLOSE"),
    )

    def provision(self, *, merchant_id: str, app_id: str = "") -> dict:
        """Register PID ``merchant_id`` with application ``app_id``: the application key pair is
        made once per machine (like running Alipay's key tool), its PUBLIC half registered here."""
        if not app_id:
            raise ValueError("an Alipay application id (app_id) is required")
        private_pem = keys.provider_file(f"alipay-app-{merchant_id}.key.pem", keys.generate_rsa_private_pem)
        with transaction.atomic():
            for other in SandboxMerchant.objects.filter(channel=CHANNEL).exclude(merchant_id=merchant_id):
                if other.config.get("app_id") == app_id:  # an app belongs to one partner
                    other.config = {k: v for k, v in other.config.items() if k != "app_id"}
                    other.save(update_fields=["config"])
            SandboxMerchant.objects.update_or_create(
                channel=CHANNEL,
                merchant_id=merchant_id,
                defaults={"config": {"app_id": app_id, "app_public_key": keys.public_pem_of(private_pem)}},
            )
        return {"app_private_key": private_pem, "alipay_public_key": keys.provider_public_pem(CHANNEL)}

    def settle(self, trade: SandboxTrade, *, approve: bool, decline_key: str = "") -> None:
        expire_if_due(trade)
        super().settle(trade, approve=approve, decline_key=decline_key)

    def payment_notification(self, trade: SandboxTrade) -> tuple[Mapping[str, str], bytes] | None:
        """trade_status_sync as a signed form post (§1.4): TRADE_SUCCESS when paid,
        TRADE_CLOSED when the payer's decline closed the trade."""
        if trade.status == SandboxTrade.Status.PAID:
            status = "TRADE_SUCCESS"
        elif trade.status == SandboxTrade.Status.DECLINED and trade.decline_code != self.decline_code("timeout"):
            status = "TRADE_CLOSED"
        else:
            return None
        buyer_id, logon = _buyer(trade)
        amount = _yuan(trade.amount)
        params = {
            "notify_time": _beijing(),
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
            "gmt_create": _beijing(trade.created_at),
        }
        if status == "TRADE_SUCCESS":
            params.update(
                receipt_amount=amount,
                invoice_amount=amount,
                buyer_pay_amount=amount,
                point_amount="0.00",
                gmt_payment=_beijing(trade.paid_at),
                fund_bill_list=json.dumps([{"amount": amount, "fundChannel": "ALIPAYACCOUNT"}], separators=(",", ":")),
            )
        else:
            params["gmt_close"] = _beijing()
        params["sign"] = _sign(_string_to_sign(params, exclude=("sign", "sign_type")))
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
    if not expires or trade.status not in (SandboxTrade.Status.WAITING, SandboxTrade.Status.DECLINED):
        return
    if timezone.now() >= dt.datetime.fromisoformat(expires):
        SandboxTrade.objects.filter(pk=trade.pk, status=trade.status).update(status=SandboxTrade.Status.CLOSED)
        trade.refresh_from_db()


def trade_status(trade: SandboxTrade) -> str:
    """§1.5: TRADE_CLOSED covers unpaid-and-closed as well as paid-then-fully-refunded."""
    if trade.status == SandboxTrade.Status.PAID:
        return "TRADE_CLOSED" if trade.refunded >= trade.amount else "TRADE_SUCCESS"
    if trade.status == SandboxTrade.Status.DECLINED and trade.decline_code == AlipaySandbox().decline_code("timeout"):
        return "WAIT_BUYER_PAY"
    if trade.status in (SandboxTrade.Status.CLOSED, SandboxTrade.Status.DECLINED):
        return "TRADE_CLOSED"
    return "WAIT_BUYER_PAY"


def _amount(value: Any, name: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise _business("ACQ.INVALID_PARAMETER", f"{name} 格式错误") from None
    if not amount.is_finite() or amount != amount.quantize(CENT) or not Decimal("0.01") <= amount <= Decimal("100000000"):
        raise _business("ACQ.INVALID_PARAMETER", f"{name} 取值范围为[0.01,100000000]，精确到小数点后两位")
    return amount


def _find_trade(merchant: SandboxMerchant, biz: Mapping[str, Any], *, lock: bool = False) -> SandboxTrade:
    trades = SandboxTrade.objects.filter(channel=CHANNEL, merchant_id=merchant.merchant_id)
    if lock:
        trades = trades.select_for_update()
    if biz.get("trade_no"):
        trade = trades.filter(trade_no=biz["trade_no"]).first()
    elif biz.get("out_trade_no"):
        trade = trades.filter(out_trade_no=biz["out_trade_no"]).first()
    else:
        raise _business("ACQ.INVALID_PARAMETER", "out_trade_no 和 trade_no 不能同时为空")
    if trade is None:
        raise _business("ACQ.TRADE_NOT_EXIST", "交易不存在")
    return trade


def open_trade(merchant: SandboxMerchant, params: Mapping[str, str], biz: Mapping[str, Any], *, product_code: str) -> SandboxTrade:
    """Open (or re-open idempotently) the trade for ``out_trade_no``."""
    out_trade_no = str(biz.get("out_trade_no", ""))
    if not out_trade_no or len(out_trade_no) > 64:
        raise _business("ACQ.INVALID_PARAMETER", "out_trade_no 不能为空且长度不超过64")
    amount = _amount(biz.get("total_amount"), "total_amount")
    subject = str(biz.get("subject", ""))
    if not subject:
        raise _business("ACQ.INVALID_PARAMETER", "subject 不能为空")
    time_expire = None
    if biz.get("time_expire"):
        try:
            time_expire = dt.datetime.strptime(str(biz["time_expire"]), TIME_FORMAT).replace(tzinfo=BEIJING).isoformat()
        except ValueError:
            raise _business("ACQ.INVALID_PARAMETER", "time_expire 格式应为 yyyy-MM-dd HH:mm:ss") from None
    existing = SandboxTrade.objects.filter(channel=CHANNEL, merchant_id=merchant.merchant_id, out_trade_no=out_trade_no).first()
    if existing is None:
        try:
            with transaction.atomic():
                return SandboxTrade.objects.create(
                    channel=CHANNEL,
                    merchant_id=merchant.merchant_id,
                    out_trade_no=out_trade_no,
                    trade_no=_new_trade_no(),
                    amount=amount,
                    subject=subject[:255],
                    notify_url=params.get("notify_url", ""),
                    return_url=params.get("return_url", ""),
                    extra={"app_id": params.get("app_id", ""), "product_code": product_code, "method": params.get("method", ""), "time_expire": time_expire},
                )
        except IntegrityError:
            existing = SandboxTrade.objects.get(channel=CHANNEL, merchant_id=merchant.merchant_id, out_trade_no=out_trade_no)
    expire_if_due(existing)
    if existing.status == SandboxTrade.Status.PAID:
        raise _business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付")
    if trade_status(existing) == "TRADE_CLOSED":
        raise _business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭")
    if existing.amount != amount or existing.subject != subject[:255]:
        raise _business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改")
    return existing


# ---------------------------------------------------------------------------------------------
# API methods


def api_precreate(request: HttpRequest, merchant: SandboxMerchant, params: Mapping[str, str], biz: Mapping[str, Any]) -> dict:
    trade = open_trade(merchant, params, biz, product_code="FACE_TO_FACE_PAYMENT")
    return {"code": "10000", "msg": "Success", "out_trade_no": trade.out_trade_no, "qr_code": AlipaySandbox().cashier_url(trade)}


def api_query(request: HttpRequest, merchant: SandboxMerchant, params: Mapping[str, str], biz: Mapping[str, Any]) -> dict:
    trade = _find_trade(merchant, biz)
    expire_if_due(trade)
    status = trade_status(trade)
    amount = _yuan(trade.amount)
    answer: dict[str, Any] = {
        "code": "10000", "msg": "Success", "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
        "trade_status": status, "total_amount": amount,
    }
    if trade.status == SandboxTrade.Status.PAID:
        buyer_id, logon = _buyer(trade)
        answer.update(
            buyer_logon_id=logon, buyer_user_id=buyer_id, buyer_pay_amount=amount, receipt_amount=amount,
            invoice_amount=amount, point_amount="0.00", send_pay_date=_beijing(trade.paid_at),
            fund_bill_list=[{"amount": amount, "fund_channel": "ALIPAYACCOUNT"}],
        )
    return answer


def api_close(request: HttpRequest, merchant: SandboxMerchant, params: Mapping[str, str], biz: Mapping[str, Any]) -> dict:
    with transaction.atomic():
        trade = _find_trade(merchant, biz, lock=True)
        if trade.status == SandboxTrade.Status.PAID:
            raise _business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if trade.status != SandboxTrade.Status.CLOSED:
            trade.status = SandboxTrade.Status.CLOSED
            trade.save(update_fields=["status"])
    return {"code": "10000", "msg": "Success", "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}


def api_refund(request: HttpRequest, merchant: SandboxMerchant, params: Mapping[str, str], biz: Mapping[str, Any]) -> dict:
    """Idempotent by out_request_no; a repeat answers ``fund_change=N`` (§1.6)."""
    amount = _amount(biz.get("refund_amount"), "refund_amount")
    with transaction.atomic():
        trade = _find_trade(merchant, biz, lock=True)
        request_no = str(biz.get("out_request_no") or trade.out_trade_no)
        if trade.status != SandboxTrade.Status.PAID:
            raise _business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        existing = trade.refunds.filter(out_refund_no=request_no).first()
        if existing is not None:
            fund_change = "N"
            refunded_at = existing.created_at
        else:
            if amount > trade.amount - trade.refunded:
                raise _business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
            refund = SandboxRefund.objects.create(trade=trade, out_refund_no=request_no, amount=amount, status=SandboxRefund.Status.SUCCESS)
            fund_change = "Y"
            refunded_at = refund.created_at
        buyer_id, logon = _buyer(trade)
        return {
            "code": "10000", "msg": "Success", "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": logon, "buyer_user_id": buyer_id, "fund_change": fund_change,
            "refund_fee": _yuan(trade.refunded), "gmt_refund_pay": _beijing(refunded_at),
        }


def api_refund_query(request: HttpRequest, merchant: SandboxMerchant, params: Mapping[str, str], biz: Mapping[str, Any]) -> dict:
    trade = _find_trade(merchant, biz)
    request_no = str(biz.get("out_request_no") or "")
    if not request_no:
        raise _business("ACQ.INVALID_PARAMETER", "out_request_no 不能为空")
    answer: dict[str, Any] = {"code": "10000", "msg": "Success", "trade_no": trade.trade_no, "out_trade_no": trade.out_trade_no}
    refund = trade.refunds.filter(out_refund_no=request_no, status=SandboxRefund.Status.SUCCESS).first()
    if refund is not None:
        answer.update(
            out_request_no=request_no, total_amount=_yuan(trade.amount), refund_amount=_yuan(refund.amount),
            refund_status="REFUND_SUCCESS", gmt_refund_pay=_beijing(refund.created_at),
        )
    return answer


def api_bill_url(request: HttpRequest, merchant: SandboxMerchant, params: Mapping[str, str], biz: Mapping[str, Any]) -> dict:
    if biz.get("bill_type") != "trade":
        raise _business("INVAILID_ARGUMENTS", "沙箱只提供 bill_type=trade 的账单")
    try:
        day = dt.date.fromisoformat(str(biz.get("bill_date", "")))
    except ValueError:
        raise _business("INVAILID_ARGUMENTS", "bill_date 格式应为 yyyy-MM-dd") from None
    if day > timezone.now().astimezone(BEIJING).date() or day < dt.date(2016, 1, 1):
        raise _business("BILL_NOT_EXIST", "账单不存在")
    stamp = day.strftime("%Y%m%d")
    token = signing.dumps({"pid": merchant.merchant_id, "day": day.isoformat()}, salt=BILL_SALT)
    query = urlencode({
        "bizType": "trade", "userId": merchant.merchant_id, "fileType": "csv.zip", "bizDates": stamp,
        "downloadFileName": f"{merchant.merchant_id}0156_{stamp}.csv.zip", "fileId": f"/trade/{merchant.merchant_id}/{stamp}",
        "timestamp": str(int(timezone.now().timestamp() * 1000)), "token": token,
    })
    url = request.build_absolute_uri(reverse("sandbox:alipay:bill")) + "?" + query
    return {"code": "10000", "msg": "Success", "bill_download_url": url}


API: dict[str, Callable[[HttpRequest, SandboxMerchant, Mapping[str, str], Mapping[str, Any]], dict]] = {
    "alipay.trade.precreate": api_precreate,
    "alipay.trade.query": api_query,
    "alipay.trade.close": api_close,
    "alipay.trade.refund": api_refund,
    "alipay.trade.fastpay.refund.query": api_refund_query,
    "alipay.data.dataservice.bill.downloadurl.query": api_bill_url,
}


# ---------------------------------------------------------------------------------------------
# The gateway


def authenticate(params: Mapping[str, str]) -> SandboxMerchant:
    """Common-parameter checks and the RSA2 signature over everything but ``sign`` (§1.2)."""
    for name in ("app_id", "method", "sign_type", "timestamp", "version", "charset"):
        if not params.get(name):
            raise GatewayError("40001", f"isv.missing-{name.replace('_', '-')}", f"缺少{name}参数")
    if not params.get("sign"):
        raise GatewayError("40001", "isv.missing-signature", "缺少签名参数")
    if params["sign_type"] != "RSA2":
        raise GatewayError("40002", "isv.invalid-signature-type", "无效的签名类型")
    try:
        dt.datetime.strptime(params["timestamp"], TIME_FORMAT)
    except ValueError:
        raise GatewayError("40002", "isv.invalid-timestamp", "非法的时间戳参数") from None
    if params["charset"].lower() != "utf-8":
        raise GatewayError("40002", "isv.invalid-charset", "字符集错误")
    merchant = next(
        (m for m in SandboxMerchant.objects.filter(channel=CHANNEL) if m.config.get("app_id") == params["app_id"]),
        None,
    )
    if merchant is None:
        raise GatewayError("40002", "isv.invalid-app-id", "无效的AppID参数")
    content = _string_to_sign(params, exclude=("sign",))
    if not _verify(content, params["sign"], merchant.config.get("app_public_key", "")):
        raise GatewayError("40002", "isv.invalid-signature", f"验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：{content}")
    return merchant


def _biz(params: Mapping[str, str]) -> dict[str, Any]:
    try:
        biz = json.loads(params.get("biz_content") or "{}")
    except ValueError:
        raise _business("ACQ.INVALID_PARAMETER", "biz_content 不是合法的 JSON") from None
    if not isinstance(biz, dict):
        raise _business("ACQ.INVALID_PARAMETER", "biz_content 不是 JSON 对象")
    return biz


def signed_answer(method: str, inner: Mapping[str, Any]) -> HttpResponse:
    """``{"<method>_response": {…}, "sign": "…"}`` signed over the exact inner text (§1.3)."""
    content = json.dumps(dict(inner), ensure_ascii=False, separators=(",", ":"))
    key = method.replace(".", "_") + "_response"
    text = "{" + f'"{key}":{content},"sign":"{_sign(content)}"' + "}"
    return HttpResponse(text.encode("utf-8"), content_type="application/json;charset=utf-8")


def _error_page(error: GatewayError) -> HttpResponse:
    body = (
        "<!doctype html><meta charset='utf-8'><title>支付宝 · 错误</title>"
        f"<h1>抱歉，支付遇到问题</h1><p>错误代码 {escape(error.sub_code)}</p><p>{escape(error.sub_msg)}</p>"
    )
    return HttpResponse(body, status=200)


@csrf_exempt
def gateway(request: HttpRequest) -> HttpResponse:
    fault = core.fault_response(CHANNEL)
    if fault is not None:
        return fault
    params = {**request.GET.dict(), **request.POST.dict()}
    method = params.get("method", "")
    product_code = PAGE_METHODS.get(method)
    try:
        merchant = authenticate(params)
        if product_code:
            trade = open_trade(merchant, params, _biz(params), product_code=product_code)
            return redirect(reverse("sandbox:cashier", args=[CHANNEL, trade.trade_no]))
        handler = API.get(method)
        if handler is None:
            raise GatewayError("40002", "isv.invalid-method", "不存在的方法名")
        return signed_answer(method, handler(request, merchant, params, _biz(params)))
    except GatewayError as error:
        if product_code:
            return _error_page(error)
        if method in API:
            return signed_answer(method, error.body())
        text = json.dumps({"error_response": error.body()}, ensure_ascii=False, separators=(",", ":"))
        return HttpResponse(text.encode("utf-8"), content_type="application/json;charset=utf-8")


# ---------------------------------------------------------------------------------------------
# The trade bill (§1.7)


def _cn_date(moment: dt.datetime) -> str:
    return moment.strftime("%Y年%m月%d日 %H:%M:%S")


def _safe(text: str) -> str:
    """Alipay writes cells unquoted: keep commas and line breaks out of free text."""
    return text.replace(",", "，").replace("\r", " ").replace("\n", " ").replace("\t", " ")


def bill_files(pid: str, day: dt.date, *, exported_at: dt.datetime | None = None) -> tuple[str, str]:
    """The 业务明细 and 业务明细(汇总) texts of ``pid`` for ``day`` (Beijing), from the
    sandbox's own trades (paid that day) and refunds (made that day)."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=BEIJING)
    end = start + dt.timedelta(days=1)
    exported = (exported_at or timezone.now()).astimezone(BEIJING)
    rows: list[tuple[dt.datetime, list[str], str, Decimal, Decimal]] = []
    trades = SandboxTrade.objects.filter(channel=CHANNEL, merchant_id=pid, paid_at__gte=start, paid_at__lt=end).exclude(paid_at=None)
    for trade in trades:
        _, logon = _buyer(trade)
        fee = fee_for(trade.amount)
        amount = _yuan(trade.amount)
        cells = [
            f"{trade.trade_no}\t", f"{trade.out_trade_no}\t", "交易\t", _safe(trade.subject), _beijing(trade.created_at),
            _beijing(trade.paid_at), "\t", "\t", "\t", "\t", f"*沙箱({logon})\t", amount, amount, "0.00", "0.00", "0.00",
            "0.00", "0.00", "", "0.00\t", "0.00", "\t", _yuan(-fee), "0.00", "",
        ]
        rows.append((trade.paid_at, cells, "交易", trade.amount, -fee))
    refunds = SandboxRefund.objects.filter(
        trade__channel=CHANNEL, trade__merchant_id=pid, status=SandboxRefund.Status.SUCCESS,
        created_at__gte=start, created_at__lt=end,
    ).select_related("trade")
    for refund in refunds:
        trade = refund.trade
        _, logon = _buyer(trade)
        fee = fee_for(refund.amount)
        amount = _yuan(-refund.amount)
        cells = [
            f"{trade.trade_no}\t", f"{trade.out_trade_no}\t", "退款\t", _safe(trade.subject), _beijing(trade.created_at),
            _beijing(refund.created_at), "\t", "\t", "\t", "\t", f"*沙箱({logon})\t", amount, amount, "0.00", "0.00",
            "0.00", "0.00", "0.00", "", "0.00\t", "0.00", f"{refund.out_refund_no}\t", _yuan(fee), "0.00", "",
        ]
        rows.append((refund.created_at, cells, "退款", -refund.amount, fee))
    rows.sort(key=lambda r: r[0])
    account = f"{pid}0156"
    period = f"#起始日期：[{_cn_date(start)}]   终止日期：[{_cn_date(end)}]"
    trade_rows = [r for r in rows if r[2] == "交易"]
    refund_rows = [r for r in rows if r[2] == "退款"]
    trade_total = sum((r[3] for r in trade_rows), Decimal(0))
    refund_total = sum((r[3] for r in refund_rows), Decimal(0))
    fee_total = sum((r[4] for r in rows), Decimal(0))
    detail = [
        "#支付宝业务明细查询", f"#账号：[{account}]", period, DETAIL_BEGIN, DETAIL_COLUMNS,
        *(",".join(r[1]) for r in rows),
        DETAIL_END,
        f"#交易合计：{len(trade_rows)}笔，商家实收共{_yuan(trade_total)}元，商家优惠共0.00元",
        f"#退款合计：{len(refund_rows)}笔，商家实收退款共{_yuan(refund_total)}元，商家优惠退款共0.00元",
        f"#导出时间：[{_cn_date(exported)}]",
    ]
    net = trade_total + refund_total
    totals = [str(len(trade_rows)), str(len(refund_rows)), _yuan(net), _yuan(net), "0.00", "0.00", "0.00", _yuan(fee_total), "0.00", _yuan(net + fee_total)]
    summary = [
        "#支付宝业务汇总查询", f"#账号：[{account}]", period, SUMMARY_BEGIN, SUMMARY_COLUMNS,
        ",".join(["\t", "\t", *totals]),
        ",".join(["合计", "", *totals]),
        SUMMARY_END,
        f"#导出时间：[{_cn_date(exported)}]",
    ]
    return "\r\n".join(detail) + "\r\n", "\r\n".join(summary) + "\r\n"


class _GbkName(zipfile.ZipInfo):
    """Entry names written in GBK without the UTF-8 flag (0x800), as Alipay's ZIPs are (§1.7)."""

    def _encodeFilenameFlags(self):  # noqa: N802 - zipfile's own hook
        return self.filename.encode("gbk"), self.flag_bits & ~0x800


def bill_zip(pid: str, day: dt.date) -> tuple[str, bytes]:
    """(``{PID}0156_{yyyyMMdd}.csv.zip``, its bytes): GBK CSVs, GBK entry names."""
    stamp = day.strftime("%Y%m%d")
    prefix = f"{pid}0156_{stamp}"
    detail, summary = bill_files(pid, day)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in ((f"{prefix}_业务明细.csv", detail), (f"{prefix}_业务明细(汇总).csv", summary)):
            info = _GbkName(name, date_time=timezone.now().astimezone(BEIJING).timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("gbk"))
    return f"{prefix}.csv.zip", buffer.getvalue()


@csrf_exempt
def bill_file(request: HttpRequest) -> HttpResponse:
    fault = core.fault_response(CHANNEL)
    if fault is not None:
        return fault
    try:
        grant = signing.loads(request.GET.get("token", ""), salt=BILL_SALT, max_age=BILL_LINK_SECONDS)
    except signing.BadSignature:
        return HttpResponse("链接已失效 (the bill link is invalid or older than 30 s)", status=404, content_type="text/plain; charset=utf-8")
    name, data = bill_zip(grant["pid"], dt.date.fromisoformat(grant["day"]))
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


urlpatterns = [
    path("gateway.do", gateway, name="gateway"),
    path("downloadBillFile.resource", bill_file, name="bill"),
]
