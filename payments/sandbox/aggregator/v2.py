"""The simulated aggregator's epay v2 endpoints (``api/pay/submit``, ``api/pay/create``,
``api/pay/query``, ``api/pay/refund``): requests signed SHA256withRSA with the merchant's
private key and a fresh ``timestamp``, answers (``code`` 0) signed with the platform's key.
The signing is this simulator's own (``protocol``), not the backend's."""

from __future__ import annotations

from collections.abc import Mapping

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from payments.sandbox import core
from payments.sandbox.aggregator.endpoint import creation, receive, refused_page, to_cashier
from payments.sandbox.aggregator.protocol import (
    CHANNEL,
    merchant_verify,
    platform_sign,
    timestamp_now,
    timestamp_ok,
)
from payments.sandbox.aggregator.trades import order_fields, refund_trade
from payments.sandbox.models import SandboxMerchant, SandboxTrade

RSA = "RSA"


def _merchant(params: Mapping[str, str]) -> tuple[SandboxMerchant | None, str]:
    """The merchant whose registered public key verifies this fresh, RSA-signed request."""
    merchant = SandboxMerchant.objects.filter(
        channel=CHANNEL, merchant_id=params.get("pid", "")
    ).first()
    if merchant is None:
        return None, "商户不存在"
    if params.get("sign_type", "").upper() != RSA:
        return None, "签名类型错误"
    public_pem = merchant.config.get("merchant_public_key", "")
    if not public_pem:
        return None, "商户未配置RSA公钥"
    if not timestamp_ok(params.get("timestamp", "")):
        return None, "时间戳无效"
    if not merchant_verify(params, public_pem):
        return None, "签名校验失败"
    return merchant, ""


def answer(fields: Mapping[str, object]) -> dict:
    """A v1 answer restated for v2: success is ``code`` 0 and carries the platform's sign;
    a refusal is a negative code with its ``msg``, unsigned."""
    data = dict(fields)
    if str(data.get("code")) != "1":
        return {"code": data.get("code", -1), "msg": data.get("msg", "")}
    data["code"] = 0
    data["timestamp"] = timestamp_now()
    data["sign"] = platform_sign(data)
    data["sign_type"] = RSA
    return data


@csrf_exempt
def submit(request: HttpRequest) -> HttpResponse:
    """v2 page jump: the buyer's browser brings the signed order, the cashier opens."""
    return creation(request, _merchant, sign_type=RSA, opened=to_cashier, refused=refused_page)


def _create_opened(trade: SandboxTrade) -> HttpResponse:
    fields = {
        "code": 1,
        "msg": "",
        "trade_no": trade.trade_no,
        "pay_type": "qrcode",
        "pay_info": core.provider(CHANNEL).cashier_url(trade),
    }
    return JsonResponse(answer(fields))


@csrf_exempt
def create(request: HttpRequest) -> HttpResponse:
    """v2 API creation: ``pay_type`` qrcode, ``pay_info`` the cashier as a QR payload."""
    return creation(
        request,
        _merchant,
        sign_type=RSA,
        opened=_create_opened,
        refused=lambda message: JsonResponse({"code": -1, "msg": message}),
    )


@csrf_exempt
def query(request: HttpRequest) -> HttpResponse:
    got = receive(request, _merchant)
    if isinstance(got, HttpResponse):
        return got
    if got.merchant is None:
        return JsonResponse({"code": -3, "msg": got.error})
    return JsonResponse(answer(order_fields(got.merchant, got.params)))


@csrf_exempt
def refund(request: HttpRequest) -> HttpResponse:
    got = receive(request, _merchant)
    if isinstance(got, HttpResponse):
        return got
    if got.merchant is None:
        return JsonResponse({"code": -3, "msg": got.error})
    params = got.params
    fields = refund_trade(got.merchant, params)
    if str(fields.get("code")) == "1":
        fields = {
            **fields,
            "out_trade_no": params.get("out_trade_no", ""),
            "out_refund_no": params.get("out_refund_no", ""),
            "money": params.get("money", ""),
        }
    return JsonResponse(answer(fields))
