"""The simulated epay aggregator: ``submit.php`` (page jump to the cashier), ``mapi.php``
(API creation), ``api.php`` (``act=order`` query, ``act=refund``, ``act=bill`` export), the
v2 ``api/pay/*`` endpoints (``v2``) and the success notice sent by GET to the merchant's
notify_url — MD5-signed, or RSA-signed for a trade opened through v2."""

from __future__ import annotations

import csv
import datetime as dt
import io
import secrets
from collections.abc import Mapping
from decimal import Decimal
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from payments.sandbox import keys
from payments.sandbox.aggregator import v2
from payments.sandbox.aggregator.endpoint import creation, receive, refused_page, to_cashier
from payments.sandbox.aggregator.protocol import (
    BEIJING,
    CHANNEL,
    TYPES,
    beijing,
    epay_sign,
    fee_of,
    platform_public_pem,
    platform_sign,
    timestamp_now,
    yuan,
)
from payments.sandbox.aggregator.trades import order_fields, refund_trade
from payments.sandbox.core import DeclineReason, SandboxProvider
from payments.sandbox.models import SandboxMerchant, SandboxRefund, SandboxTrade


class AggregatorSandbox(SandboxProvider):
    channel = CHANNEL
    notify_method = "GET"
    #: epay deployments re-send an unanswered notice a handful of times over some minutes
    retry_schedule = (15, 60, 300, 900, 1800)
    declines = (
        DeclineReason("insufficient_funds", "余额不足 · balance too low", "NOT_PAID"),
        DeclineReason("risk", "风控拦截 · risk decline", "NOT_PAID"),
        DeclineReason("timeout", "超时未支付 · payer walked away", "NOT_PAID"),
    )

    def provision(self, *, merchant_id: str, app_id: str = "", sign_type: str = "MD5") -> dict:
        """Open merchant ``merchant_id`` (the pid) with every type enabled; the key the
        aggregator's console shows is kept, so provisioning again returns it. With
        ``sign_type="RSA"`` the merchant also turns on v2: its key pair is made once per
        machine (like running the console's key tool), the PUBLIC half registered here, and
        the credentials carry the platform's public key (and the MD5 key, for the export)."""
        merchant, _ = SandboxMerchant.objects.get_or_create(
            channel=CHANNEL, merchant_id=merchant_id
        )
        if not merchant.config.get("key"):
            merchant.config = {"key": secrets.token_hex(16), "types": list(TYPES)}
            merchant.save(update_fields=["config"])
        if sign_type.upper() != "RSA":
            return {"key": merchant.config["key"]}
        private_pem = keys.provider_file(
            f"aggregator-merchant-{merchant_id}.key.pem", keys.generate_rsa_private_pem
        )
        merchant.config = {
            **merchant.config,
            "merchant_public_key": keys.public_pem_of(private_pem),
        }
        merchant.save(update_fields=["config"])
        return {
            "sign_type": "RSA",
            "merchant_private_key": private_pem,
            "platform_public_key": platform_public_pem(),
            "key": merchant.config["key"],
        }

    def payment_notification(self, trade: SandboxTrade) -> tuple[Mapping[str, str], bytes] | None:
        """epay notifies successes only; the body is the GET query string. A trade opened
        through v2 is notified v2-style: ``timestamp``, signed with the platform's key."""
        if trade.status != SandboxTrade.Status.PAID:
            return None
        merchant = self.merchant(trade.merchant_id)
        params = {
            "pid": trade.merchant_id,
            "trade_no": trade.trade_no,
            "out_trade_no": trade.out_trade_no,
            "type": trade.extra.get("type", ""),
            "name": trade.subject,
            "money": yuan(trade.amount),
            "trade_status": "TRADE_SUCCESS",
            "param": "",
        }
        if trade.extra.get("sign_type") == "RSA":
            params.update({"api_trade_no": "", "buyer": "", "timestamp": timestamp_now()})
            params["sign"] = platform_sign(params)
            params["sign_type"] = "RSA"
        else:
            params["sign"] = epay_sign(params, merchant.config["key"] if merchant else "")
            params["sign_type"] = "MD5"
        return {}, urlencode(params).encode()

    def notification_accepted(self, status_code: int, body: bytes) -> bool:
        return status_code == 200 and body.strip() == b"success"


def _merchant_signed(params: Mapping[str, str]) -> tuple[SandboxMerchant | None, str]:
    merchant = AggregatorSandbox().merchant(params.get("pid", ""))
    if merchant is None:
        return None, "商户不存在"
    if params.get("sign_type", "MD5").upper() != "MD5":
        return None, "签名类型错误"
    if epay_sign(params, merchant.config.get("key", "")) != params.get("sign", "").lower():
        return None, "签名校验失败"
    return merchant, ""


def _merchant_keyed(params: Mapping[str, str]) -> tuple[SandboxMerchant | None, str]:
    merchant = AggregatorSandbox().merchant(params.get("pid", ""))
    if merchant is None or not secrets.compare_digest(
        merchant.config.get("key", ""), params.get("key", "")
    ):
        return None, "KEY校验失败"
    return merchant, ""


@csrf_exempt
def submit(request: HttpRequest) -> HttpResponse:
    """The page jump: the buyer's browser brings the signed order, the cashier opens."""
    return creation(
        request, _merchant_signed, sign_type="MD5", opened=to_cashier, refused=refused_page
    )


def _mapi_opened(trade: SandboxTrade) -> HttpResponse:
    return JsonResponse(
        {
            "code": 1,
            "msg": "",
            "trade_no": trade.trade_no,
            "qrcode": AggregatorSandbox().cashier_url(trade),
        }
    )


@csrf_exempt
def mapi(request: HttpRequest) -> HttpResponse:
    """API creation: JSON with ``qrcode`` (the cashier, as a QR payload)."""
    return creation(
        request,
        _merchant_signed,
        sign_type="MD5",
        opened=_mapi_opened,
        refused=lambda message: JsonResponse({"code": -1, "msg": message}),
    )


@csrf_exempt
def api(request: HttpRequest) -> HttpResponse:
    """``act=order`` / ``act=refund`` / ``act=bill``, authenticated by pid and key."""
    got = receive(request, _merchant_keyed)
    if isinstance(got, HttpResponse):
        return got
    merchant, params = got.merchant, got.params
    if merchant is None:
        return JsonResponse({"code": -3, "msg": got.error})
    act = params.get("act")
    if act == "order":
        return JsonResponse(order_fields(merchant, params))
    if act == "refund":
        return JsonResponse(refund_trade(merchant, params))
    if act == "bill":
        try:
            day = dt.date.fromisoformat(params.get("date", ""))
        except ValueError:
            return JsonResponse({"code": -1, "msg": "日期格式错误"})
        return HttpResponse(export(merchant.merchant_id, day), content_type="text/csv")
    return JsonResponse({"code": -5, "msg": "不支持的操作"})


def export(pid: str, day: dt.date) -> bytes:
    """The day's export (Beijing day): the format docs/channels/aggregator.md documents."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=BEIJING)
    end = start + dt.timedelta(days=1)
    out = io.StringIO()
    out.write(f"# epay export,pid={pid},date={day.isoformat()}\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["kind", "trade_no", "out_trade_no", "refund_no", "type", "money", "fee", "time"]
    )
    payments = SandboxTrade.objects.filter(
        channel=CHANNEL,
        merchant_id=pid,
        status=SandboxTrade.Status.PAID,
        paid_at__gte=start,
        paid_at__lt=end,
    ).order_by("paid_at", "pk")
    gross = fees = refunded = Decimal("0.00")
    count = 0
    for trade in payments:
        fee = fee_of(trade.amount)
        writer.writerow(
            [
                "payment",
                trade.trade_no,
                trade.out_trade_no,
                "",
                trade.extra.get("type", ""),
                yuan(trade.amount),
                yuan(fee),
                beijing(trade.paid_at),
            ]
        )
        gross, fees, count = gross + trade.amount, fees + fee, count + 1
    refunds = (
        SandboxRefund.objects.filter(
            trade__channel=CHANNEL,
            trade__merchant_id=pid,
            status=SandboxRefund.Status.SUCCESS,
            created_at__gte=start,
            created_at__lt=end,
        )
        .select_related("trade")
        .order_by("created_at", "pk")
    )
    refund_count = 0
    for refund in refunds:
        fee = -fee_of(refund.amount)
        writer.writerow(
            [
                "refund",
                refund.trade.trade_no,
                refund.trade.out_trade_no,
                refund.out_refund_no,
                refund.trade.extra.get("type", ""),
                yuan(refund.amount),
                yuan(fee),
                beijing(refund.created_at),
            ]
        )
        refunded, fees, refund_count = refunded + refund.amount, fees + fee, refund_count + 1
    out.write(
        f"# totals,payments={count},refunds={refund_count},gross={yuan(gross)},"
        f"refunded={yuan(refunded)},fees={yuan(fees)}\n"
    )
    return out.getvalue().encode("utf-8")


urlpatterns = [
    path("submit.php", submit, name="submit"),
    path("mapi.php", mapi, name="mapi"),
    path("api.php", api, name="api"),
    path("api/pay/submit", v2.submit, name="v2-submit"),
    path("api/pay/create", v2.create, name="v2-create"),
    path("api/pay/query", v2.query, name="v2-query"),
    path("api/pay/refund", v2.refund, name="v2-refund"),
]

__all__ = ["AggregatorSandbox", "export", "urlpatterns"]
