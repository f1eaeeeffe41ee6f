"""The WeChat Pay APIv3 endpoints the backend calls, under the same paths as
api.mch.weixin.qq.com: Native and H5 orders, queries, closing and refunds, each behind the
fault switches and the merchant's signature."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from payments.sandbox import core
from payments.sandbox.models import (
    SandboxMerchant,
    SandboxRefund,
    SandboxTrade,
)
from payments.sandbox.wechatpay.bill import api_billfile, api_tradebill
from payments.sandbox.wechatpay.protocol import (
    CENT,
    CHANNEL,
    ApiError,
    answer,
    authenticate,
    fen,
    new_refund_id,
    new_transaction_id,
)
from payments.sandbox.wechatpay.state import (
    WechatPaySandbox,
    event,
    expire_if_due,
    refund_json,
    refund_notice,
    transaction_json,
)

OUT_TRADE_NO = re.compile(r"^[0-9A-Za-z_\-|*]{6,32}$")


def request_json(request: HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        raise ApiError(400, "PARAM_ERROR", "请求体不是合法的 JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "PARAM_ERROR", "请求体不是 JSON 对象")
    return data


def order_create(request: HttpRequest, merchant: SandboxMerchant, trade_type: str) -> SandboxTrade:
    """The order a create call names (made, or found again for the same out_trade_no with
    the same content), after WeChat's checks of the common fields."""
    data = request_json(request)
    for name in ("appid", "mchid", "description", "out_trade_no", "notify_url", "amount"):
        if not data.get(name):
            raise ApiError(
                400,
                "PARAM_ERROR",
                f"输入源“/body/{name}”映射到字段“{name}”必填性规则校验失败，此字段为必填项",
            )
    if data["mchid"] != merchant.merchant_id:
        raise ApiError(400, "PARAM_ERROR", "请求的商户号与认证的商户号不一致")
    if data["appid"] != merchant.config.get("appid"):
        raise ApiError(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
    out_trade_no = str(data["out_trade_no"])
    if not OUT_TRADE_NO.match(out_trade_no):
        raise ApiError(400, "PARAM_ERROR", "out_trade_no 须为6-32位数字、大小写字母或_-|*")
    amount = data["amount"]
    if (
        not isinstance(amount, dict)
        or not isinstance(amount.get("total"), int)
        or amount["total"] < 1
    ):
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
                    channel=CHANNEL,
                    merchant_id=merchant.merchant_id,
                    out_trade_no=out_trade_no,
                    trade_no=new_transaction_id(),
                    amount=total,
                    subject=subject,
                    notify_url=str(data["notify_url"]),
                    extra={
                        "appid": data["appid"],
                        "trade_type": trade_type,
                        "time_expire": time_expire,
                        "attach": str(data.get("attach", "")),
                    },
                )
        except IntegrityError:
            trade = trades.get(out_trade_no=out_trade_no)
    expire_if_due(trade)
    if trade.status == SandboxTrade.Status.PAID:
        raise ApiError(400, "ORDERPAID", "该订单已支付")
    if trade.status == SandboxTrade.Status.CLOSED:
        raise ApiError(400, "ORDER_CLOSED", "订单已关闭")
    if (
        trade.amount != total
        or trade.subject != subject
        or trade.extra.get("trade_type") != trade_type
    ):
        raise ApiError(403, "OUT_TRADE_NO_USED", "商户订单号重复，且订单信息不一致")
    return trade


def api_native(request: HttpRequest, merchant: SandboxMerchant) -> HttpResponse:
    trade = order_create(request, merchant, "NATIVE")
    return answer(200, {"code_url": WechatPaySandbox().cashier_url(trade)})


def api_h5(request: HttpRequest, merchant: SandboxMerchant) -> HttpResponse:
    trade = order_create(request, merchant, "MWEB")
    return answer(200, {"h5_url": WechatPaySandbox().cashier_url(trade)})


def _require_mchid(request: HttpRequest, merchant: SandboxMerchant) -> None:
    if request.GET.get("mchid") != merchant.merchant_id:
        raise ApiError(400, "PARAM_ERROR", "mchid 必填且须与认证的商户号一致")


def api_query_out_trade_no(
    request: HttpRequest, merchant: SandboxMerchant, out_trade_no: str
) -> HttpResponse:
    _require_mchid(request, merchant)
    trade = SandboxTrade.objects.filter(
        channel=CHANNEL, merchant_id=merchant.merchant_id, out_trade_no=out_trade_no
    ).first()
    if trade is None:
        raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
    expire_if_due(trade)
    return answer(200, transaction_json(trade))


def api_query_id(
    request: HttpRequest, merchant: SandboxMerchant, transaction_id: str
) -> HttpResponse:
    _require_mchid(request, merchant)
    trade = SandboxTrade.objects.filter(
        channel=CHANNEL,
        merchant_id=merchant.merchant_id,
        trade_no=transaction_id,
        status=SandboxTrade.Status.PAID,
    ).first()
    if trade is None:
        raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
    return answer(200, transaction_json(trade))


def api_close(request: HttpRequest, merchant: SandboxMerchant, out_trade_no: str) -> HttpResponse:
    if request_json(request).get("mchid") != merchant.merchant_id:
        raise ApiError(400, "PARAM_ERROR", "mchid 必填且须与认证的商户号一致")
    with transaction.atomic():
        trade = (
            SandboxTrade.objects.select_for_update()
            .filter(channel=CHANNEL, merchant_id=merchant.merchant_id, out_trade_no=out_trade_no)
            .first()
        )
        if trade is None:
            raise ApiError(404, "ORDER_NOT_EXIST", "订单不存在")
        if trade.status == SandboxTrade.Status.PAID:
            raise ApiError(400, "ORDERPAID", "订单已支付，不能关闭")
        if trade.status != SandboxTrade.Status.CLOSED:
            trade.status = SandboxTrade.Status.CLOSED
            trade.save(update_fields=["status"])
    return answer(204)


# ---------------------------------------------------------------------------------------------
def api_refund(request: HttpRequest, merchant: SandboxMerchant) -> HttpResponse:
    """Idempotent by out_refund_no; a new refund answers PROCESSING and notifies REFUND.SUCCESS."""
    data = request_json(request)
    out_refund_no = str(data.get("out_refund_no") or "")
    amount = data.get("amount")
    if (
        not out_refund_no
        or not isinstance(amount, dict)
        or not isinstance(amount.get("refund"), int)
        or not isinstance(amount.get("total"), int)
    ):
        raise ApiError(400, "PARAM_ERROR", "out_refund_no、amount.refund、amount.total 为必填项")
    if amount["refund"] < 1:
        raise ApiError(400, "PARAM_ERROR", "amount.refund 须为正整数（分）")
    with transaction.atomic():
        trades = SandboxTrade.objects.select_for_update().filter(
            channel=CHANNEL, merchant_id=merchant.merchant_id
        )
        if data.get("transaction_id"):
            trade = trades.filter(trade_no=data["transaction_id"]).first()
        elif data.get("out_trade_no"):
            trade = trades.filter(out_trade_no=data["out_trade_no"]).first()
        else:
            raise ApiError(400, "PARAM_ERROR", "transaction_id 与 out_trade_no 须二选一")
        if trade is None:
            raise ApiError(404, "RESOURCE_NOT_EXISTS", "订单不存在")
        existing = SandboxRefund.objects.filter(
            trade__channel=CHANNEL,
            trade__merchant_id=merchant.merchant_id,
            out_refund_no=out_refund_no,
        ).first()
        if existing is not None:
            if existing.trade_id != trade.pk or fen(existing.amount) != amount["refund"]:
                raise ApiError(
                    400, "INVALID_REQUEST", "退款单号已存在，且与本次请求的订单或金额不一致"
                )
            return answer(200, refund_json(existing))
        if trade.status != SandboxTrade.Status.PAID:
            raise ApiError(400, "INVALID_REQUEST", "订单未支付，不能退款")
        if amount["total"] != fen(trade.amount):
            raise ApiError(400, "PARAM_ERROR", "订单金额与原订单不一致")
        value = (Decimal(amount["refund"]) / 100).quantize(CENT)
        if value > trade.amount - trade.refunded:
            raise ApiError(400, "INVALID_REQUEST", "申请退款金额超过订单可退金额")
        refund = SandboxRefund.objects.create(
            trade=trade, out_refund_no=out_refund_no, refund_id=new_refund_id(), amount=value
        )
        notify_url = str(data.get("notify_url") or trade.notify_url)
        if notify_url:
            headers, body = event(
                merchant.merchant_id, "REFUND.SUCCESS", "退款成功", "refund", refund_notice(refund)
            )
            core.enqueue_notification(CHANNEL, notify_url, headers, body)
    return answer(200, refund_json(refund, status="PROCESSING"))


def api_refund_query(
    request: HttpRequest, merchant: SandboxMerchant, out_refund_no: str
) -> HttpResponse:
    refund = (
        SandboxRefund.objects.filter(
            trade__channel=CHANNEL,
            trade__merchant_id=merchant.merchant_id,
            out_refund_no=out_refund_no,
        )
        .select_related("trade")
        .first()
    )
    if refund is None:
        raise ApiError(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
    return answer(200, refund_json(refund))


def api(
    methods: tuple[str, ...], handler: Callable[..., HttpResponse]
) -> Callable[..., HttpResponse]:
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
    path(
        "v3/pay/transactions/out-trade-no/<str:out_trade_no>/close",
        api(("POST",), api_close),
        name="close",
    ),
    path(
        "v3/pay/transactions/out-trade-no/<str:out_trade_no>",
        api(("GET",), api_query_out_trade_no),
        name="query",
    ),
    path(
        "v3/pay/transactions/id/<str:transaction_id>", api(("GET",), api_query_id), name="query-id"
    ),
    path(
        "v3/refund/domestic/refunds/<str:out_refund_no>",
        api(("GET",), api_refund_query),
        name="refund-query",
    ),
    path("v3/refund/domestic/refunds", api(("POST",), api_refund), name="refund"),
    path("v3/bill/tradebill", api(("GET",), api_tradebill), name="tradebill"),
    path("v3/billdownload/file", api(("GET",), api_billfile), name="billfile"),
]
