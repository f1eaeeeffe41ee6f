"""``gateway.do``: every Alipay API method the backend calls, the browser flows that open a
trade and land on the cashier, and answers signed over their raw ``*_response`` text."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from django.core import signing
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt

from config.prepared import PreparedRead
from payments.sandbox import core
from payments.sandbox.alipay.bill import BILL_SALT, bill_file
from payments.sandbox.alipay.protocol import (
    BEIJING,
    CHANNEL,
    TIME_FORMAT,
    GatewayError,
    beijing,
    business,
    buyer_of,
    sign,
    string_to_sign,
    verify,
    yuan,
)
from payments.sandbox.alipay.state import (
    AlipaySandbox,
    amount_param,
    expire_if_due,
    find_trade,
    open_trade,
    trade_status,
)
from payments.sandbox.models import SandboxMerchant, SandboxRefund, SandboxTrade

PAGE_METHODS = {
    "alipay.trade.page.pay": "FAST_INSTANT_TRADE_PAY",
    "alipay.trade.wap.pay": "QUICK_WAP_WAY",
}

# ---------------------------------------------------------------------------------------------
# API methods


def api_precreate(
    request: HttpRequest,
    merchant: SandboxMerchant,
    params: Mapping[str, str],
    biz: Mapping[str, Any],
) -> dict:
    trade = open_trade(merchant, params, biz, product_code="FACE_TO_FACE_PAYMENT")
    return {
        "code": "10000",
        "msg": "Success",
        "out_trade_no": trade.out_trade_no,
        "qr_code": AlipaySandbox().cashier_url(trade),
    }


def api_query(
    request: HttpRequest,
    merchant: SandboxMerchant,
    params: Mapping[str, str],
    biz: Mapping[str, Any],
) -> dict:
    trade = find_trade(merchant, biz)
    expire_if_due(trade)
    status = trade_status(trade)
    amount = yuan(trade.amount)
    answer: dict[str, Any] = {
        "code": "10000",
        "msg": "Success",
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
        "trade_status": status,
        "total_amount": amount,
    }
    if trade.status == SandboxTrade.Status.PAID:
        buyer_id, logon = buyer_of(trade)
        answer.update(
            buyer_logon_id=logon,
            buyer_user_id=buyer_id,
            buyer_pay_amount=amount,
            receipt_amount=amount,
            invoice_amount=amount,
            point_amount="0.00",
            send_pay_date=beijing(trade.paid_at),
            fund_bill_list=[{"amount": amount, "fund_channel": "ALIPAYACCOUNT"}],
        )
    return answer


def api_close(
    request: HttpRequest,
    merchant: SandboxMerchant,
    params: Mapping[str, str],
    biz: Mapping[str, Any],
) -> dict:
    with transaction.atomic():
        trade = find_trade(merchant, biz, lock=True)
        if trade.status == SandboxTrade.Status.PAID:
            raise business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        if trade.status != SandboxTrade.Status.CLOSED:
            trade.status = SandboxTrade.Status.CLOSED
            trade.save(update_fields=["status"])
    return {
        "code": "10000",
        "msg": "Success",
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
    }


def api_refund(
    request: HttpRequest,
    merchant: SandboxMerchant,
    params: Mapping[str, str],
    biz: Mapping[str, Any],
) -> dict:
    """Idempotent by out_request_no; a repeat answers ``fund_change=N`` (§1.6)."""
    amount = amount_param(biz.get("refund_amount"), "refund_amount")
    with transaction.atomic():
        trade = find_trade(merchant, biz, lock=True)
        request_no = str(biz.get("out_request_no") or trade.out_trade_no)
        if trade.status != SandboxTrade.Status.PAID:
            raise business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法")
        existing = trade.refunds.filter(out_refund_no=request_no).first()
        if existing is not None:
            fund_change = "N"
            refunded_at = existing.created_at
        else:
            if amount > trade.amount - trade.refunded:
                raise business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限")
            refund = SandboxRefund.objects.create(
                trade=trade,
                out_refund_no=request_no,
                amount=amount,
                status=SandboxRefund.Status.SUCCESS,
            )
            fund_change = "Y"
            refunded_at = refund.created_at
        buyer_id, logon = buyer_of(trade)
        return {
            "code": "10000",
            "msg": "Success",
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "buyer_logon_id": logon,
            "buyer_user_id": buyer_id,
            "fund_change": fund_change,
            "refund_fee": yuan(trade.refunded),
            "gmt_refund_pay": beijing(refunded_at),
        }


def api_refund_query(
    request: HttpRequest,
    merchant: SandboxMerchant,
    params: Mapping[str, str],
    biz: Mapping[str, Any],
) -> dict:
    trade = find_trade(merchant, biz)
    request_no = str(biz.get("out_request_no") or "")
    if not request_no:
        raise business("ACQ.INVALID_PARAMETER", "out_request_no 不能为空")
    answer: dict[str, Any] = {
        "code": "10000",
        "msg": "Success",
        "trade_no": trade.trade_no,
        "out_trade_no": trade.out_trade_no,
    }
    refund = trade.refunds.filter(
        out_refund_no=request_no, status=SandboxRefund.Status.SUCCESS
    ).first()
    if refund is not None:
        answer.update(
            out_request_no=request_no,
            total_amount=yuan(trade.amount),
            refund_amount=yuan(refund.amount),
            refund_status="REFUND_SUCCESS",
            gmt_refund_pay=beijing(refund.created_at),
        )
    return answer


def api_bill_url(
    request: HttpRequest,
    merchant: SandboxMerchant,
    params: Mapping[str, str],
    biz: Mapping[str, Any],
) -> dict:
    if biz.get("bill_type") != "trade":
        raise business("INVAILID_ARGUMENTS", "沙箱只提供 bill_type=trade 的账单")
    try:
        day = dt.date.fromisoformat(str(biz.get("bill_date", "")))
    except ValueError:
        raise business("INVAILID_ARGUMENTS", "bill_date 格式应为 yyyy-MM-dd") from None
    if day > timezone.now().astimezone(BEIJING).date() or day < dt.date(2016, 1, 1):
        raise business("BILL_NOT_EXIST", "账单不存在")
    stamp = day.strftime("%Y%m%d")
    token = signing.dumps({"pid": merchant.merchant_id, "day": day.isoformat()}, salt=BILL_SALT)
    query = urlencode(
        {
            "bizType": "trade",
            "userId": merchant.merchant_id,
            "fileType": "csv.zip",
            "bizDates": stamp,
            "downloadFileName": f"{merchant.merchant_id}0156_{stamp}.csv.zip",
            "fileId": f"/trade/{merchant.merchant_id}/{stamp}",
            "timestamp": str(int(timezone.now().timestamp() * 1000)),
            "token": token,
        }
    )
    url = request.build_absolute_uri(reverse("sandbox:alipay:bill")) + "?" + query
    return {"code": "10000", "msg": "Success", "bill_download_url": url}


API: dict[
    str, Callable[[HttpRequest, SandboxMerchant, Mapping[str, str], Mapping[str, Any]], dict]
] = {
    "alipay.trade.precreate": api_precreate,
    "alipay.trade.query": api_query,
    "alipay.trade.close": api_close,
    "alipay.trade.refund": api_refund,
    "alipay.trade.fastpay.refund.query": api_refund_query,
    "alipay.data.dataservice.bill.downloadurl.query": api_bill_url,
}


# ---------------------------------------------------------------------------------------------
# The gateway


# every call and page visit is authenticated: compiled once per connection
_MERCHANTS = PreparedRead(lambda: SandboxMerchant.objects.filter(channel=CHANNEL))


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
        (m for m in _MERCHANTS.all() if m.config.get("app_id") == params["app_id"]),
        None,
    )
    if merchant is None:
        raise GatewayError("40002", "isv.invalid-app-id", "无效的AppID参数")
    content = string_to_sign(params, exclude=("sign",))
    if not verify(content, params["sign"], merchant.config.get("app_public_key", "")):
        raise GatewayError(
            "40002",
            "isv.invalid-signature",
            f"验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为：{content}",
        )
    return merchant


def _biz(params: Mapping[str, str]) -> dict[str, Any]:
    try:
        biz = json.loads(params.get("biz_content") or "{}")
    except ValueError:
        raise business("ACQ.INVALID_PARAMETER", "biz_content 不是合法的 JSON") from None
    if not isinstance(biz, dict):
        raise business("ACQ.INVALID_PARAMETER", "biz_content 不是 JSON 对象")
    return biz


def signed_answer(method: str, inner: Mapping[str, Any]) -> HttpResponse:
    """``{"<method>_response": {…}, "sign": "…"}`` signed over the exact inner text (§1.3)."""
    content = json.dumps(dict(inner), ensure_ascii=False, separators=(",", ":"))
    key = method.replace(".", "_") + "_response"
    text = "{" + f'"{key}":{content},"sign":"{sign(content)}"' + "}"
    return HttpResponse(text.encode("utf-8"), content_type="application/json;charset=utf-8")


def _error_page(error: GatewayError) -> HttpResponse:
    body = (
        "<!doctype html><meta charset='utf-8'><title>支付宝 · 错误</title>"
        f"<h1>抱歉，支付遇到问题</h1><p>错误代码 {escape(error.sub_code)}</p>"
        f"<p>{escape(error.sub_msg)}</p>"
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
        text = json.dumps(
            {"error_response": error.body()}, ensure_ascii=False, separators=(",", ":")
        )
        return HttpResponse(text.encode("utf-8"), content_type="application/json;charset=utf-8")


urlpatterns = [
    path("gateway.do", gateway, name="gateway"),
    path("downloadBillFile.resource", bill_file, name="bill"),
]
