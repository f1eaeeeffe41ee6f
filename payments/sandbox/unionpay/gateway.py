"""The simulated gateway: the provider hooks (notifications, retries, declines) and the
ACP endpoints a merchant calls — front consumption, refunds, status query and file
transfer."""

from __future__ import annotations

import base64
import datetime as dt
import re
import zlib
from decimal import Decimal
from urllib.parse import urlencode

from cryptography import x509
from django.db import transaction
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments.channels.base import from_minor, to_minor
from payments.sandbox import core, keys
from payments.sandbox.models import SandboxMerchant, SandboxRefund, SandboxTrade
from payments.sandbox.unionpay import protocol
from payments.sandbox.unionpay.certificates import (
    MIDDLE_CN,
    issue_certificate,
    load_key,
    material,
    provider_sign,
)
from payments.sandbox.unionpay.identifiers import CHANNEL, ensure_ids, new_ids
from payments.sandbox.unionpay.settlement import build_zip

# ---------------------------------------------------------------------------------------------
# Provider hooks


class UnionPaySandbox(core.SandboxProvider):
    channel = CHANNEL
    retry_schedule = (60, 120, 240, 480, 960, 1920, 3600, 7200)
    declines = (
        core.DeclineReason("insufficient_funds", "Insufficient funds (卡上的余额不足)", "64"),
        core.DeclineReason(
            "phone_mismatch", "ID or phone number mismatch (持卡人身份信息或手机号输入不正确)", "66"
        ),
        core.DeclineReason("risk", "UnionPay risk control (银联风险受限)", "38"),
        core.DeclineReason("timeout", "Payer timed out (您的输入超时，交易失败)", "69"),
    )

    def provision(self, *, merchant_id: str, app_id: str = "") -> dict:
        """Issue the merchant a signing key + certificate under the sandbox middle CA (UnionPay
        hands merchants a .pfx); register the certificate, return what the account holds."""
        mat = material()
        safe = re.sub(r"[^0-9A-Za-z]", "_", merchant_id)
        key_pem = keys.provider_file(
            f"unionpay-merchant-{safe}.key.pem", keys.generate_rsa_private_pem
        )
        public_key = load_key(key_pem).public_key()
        cert_pem = keys.provider_file(
            f"unionpay-merchant-{safe}.cert.pem",
            lambda: issue_certificate(
                subject=f"041@Z12@{merchant_id}@00000001",
                public_key=public_key,
                issuer=MIDDLE_CN,
                issuer_key=mat.middle_key,
                ca=False,
            ),
        )
        cert_id = str(x509.load_pem_x509_certificate(cert_pem.encode()).serial_number)
        SandboxMerchant.objects.update_or_create(
            channel=CHANNEL,
            merchant_id=merchant_id,
            defaults={"config": {"cert_id": cert_id, "cert_pem": cert_pem}},
        )
        return {
            "sign_private_key": key_pem,
            "sign_cert_id": cert_id,
            "trusted_ca_pem": mat.root_pem + mat.middle_pem,
        }

    def payment_notification(self, trade: SandboxTrade) -> tuple[dict[str, str], bytes] | None:
        """backUrl POST for a successful consumption; ACP sends none for a declined one."""
        if trade.status != SandboxTrade.Status.PAID:
            return None
        ids = ensure_ids(trade)
        fields = {
            "version": protocol.VERSION,
            "encoding": "UTF-8",
            "signMethod": protocol.SIGN_METHOD_RSA,
            "txnType": "01",
            "txnSubType": "01",
            "bizType": "000201",
            "accessType": "0",
            "merId": trade.merchant_id,
            "orderId": trade.out_trade_no,
            "txnTime": trade.extra.get("txnTime", ""),
            "txnAmt": str(to_minor(trade.amount)),
            "currencyCode": protocol.CURRENCY_CNY,
            "queryId": ids["queryId"],
            "traceNo": ids["traceNo"],
            "traceTime": ids["traceTime"],
            "settleAmt": str(to_minor(trade.amount)),
            "settleCurrencyCode": protocol.CURRENCY_CNY,
            "settleDate": ids["settleDate"],
            "respCode": "00",
            "respMsg": "成功[0000000]",
            "accNo": "6216***********0018",
            "payCardType": "01",
            "payType": "0001",
        }
        return form_message(provider_sign(fields))

    def notification_accepted(self, status_code: int, body: bytes) -> bool:
        """UnionPay re-sends until the merchant answers HTTP 200 (CHANNELS.md §3.3)."""
        return status_code == 200


def form_message(fields: dict[str, str]) -> tuple[dict[str, str], bytes]:
    return {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}, urlencode(
        fields
    ).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Endpoints


def _provider() -> UnionPaySandbox:
    return UnionPaySandbox()


def _check(fields: dict[str, str]) -> tuple[SandboxMerchant | None, str]:
    """Verify the merchant's message: known merId, registered certId, valid signature."""
    merchant = _provider().merchant(fields.get("merId", ""))
    if merchant is None:
        return None, "31"
    if (
        fields.get("version") != protocol.VERSION
        or fields.get("signMethod") != protocol.SIGN_METHOD_RSA
    ):
        return merchant, "10"
    if fields.get("certId") != merchant.config.get("cert_id"):
        return merchant, "11"
    cert = x509.load_pem_x509_certificate(merchant.config["cert_pem"].encode())
    if not protocol.verify_message(fields, cert.public_key()):
        return merchant, "11"
    return merchant, ""


def _answer(request_fields: dict[str, str], code: str, **extra: str) -> HttpResponse:
    """A signed synchronous answer echoing the request's key fields (raw k=v&k=v)."""
    echo = {
        k: request_fields[k]
        for k in (
            "version",
            "encoding",
            "bizType",
            "txnTime",
            "txnType",
            "txnSubType",
            "accessType",
            "merId",
            "orderId",
        )
        if request_fields.get(k)
    }
    fields = {
        **echo,
        "signMethod": protocol.SIGN_METHOD_RSA,
        "respCode": code,
        "respMsg": protocol.RESP_MSG.get(code, ""),
        **extra,
    }
    return HttpResponse(
        protocol.render_answer(provider_sign(fields)), content_type="text/plain;charset=UTF-8"
    )


def _error_page(code: str, status: int = 400) -> HttpResponse:
    return HttpResponse(
        "<!doctype html><title>UnionPay sandbox</title><h1>交易失败</h1>"
        f'<p data-testid="sandbox-error">{code} {protocol.RESP_MSG.get(code, "")}</p>',
        status=status,
    )


def _amount(text: str) -> Decimal | None:
    return from_minor(text) if text.isdigit() and int(text) > 0 else None


@csrf_exempt
@require_POST
def front_trans_req(request: HttpRequest) -> HttpResponse:
    """The buyer's browser posts the signed consumption form here; on success the buyer is
    sent to the cashier page (UnionPay's own card-entry page in real life)."""
    fault = core.fault_response(CHANNEL)
    if fault is not None:
        return fault
    fields = request.POST.dict()
    merchant, error = _check(fields)
    if error:
        return _error_page(error)
    amount = _amount(fields.get("txnAmt", ""))
    if (fields.get("txnType"), fields.get("txnSubType"), fields.get("bizType")) != (
        "01",
        "01",
        "000201",
    ):
        return _error_page("32")
    if (
        amount is None
        or not protocol.ORDER_ID_RE.fullmatch(fields.get("orderId", ""))
        or not protocol.TXN_TIME_RE.fullmatch(fields.get("txnTime", ""))
    ):
        return _error_page("10")
    if fields.get("currencyCode") != protocol.CURRENCY_CNY or not fields.get("backUrl"):
        return _error_page("13")
    trade, created = SandboxTrade.objects.get_or_create(
        channel=CHANNEL,
        merchant_id=merchant.merchant_id,
        out_trade_no=fields["orderId"],
        defaults={
            "amount": amount,
            "currency": "CNY",
            "subject": f"UnionPay order {fields['orderId']}",
            "notify_url": fields["backUrl"],
            "return_url": fields.get("frontUrl", ""),
            "extra": {
                "txnTime": fields["txnTime"],
                "channelType": fields.get("channelType", "07"),
                "payTimeout": fields.get("payTimeout", ""),
            },
        },
    )
    if not created and (
        trade.amount != amount
        or trade.extra.get("txnTime") != fields["txnTime"]
        or trade.status != SandboxTrade.Status.WAITING
    ):
        return _error_page("12")
    return HttpResponseRedirect(_provider().cashier_url(trade))


@csrf_exempt
@require_POST
def back_trans_req(request: HttpRequest) -> HttpResponse:
    """退货 (txnType 04): answered 00 = accepted, then a backUrl notification with the result."""
    fault = core.fault_response(CHANNEL)
    if fault is not None:
        return fault
    fields = request.POST.dict()
    merchant, error = _check(fields)
    if error:
        return _answer(fields, error)
    if (fields.get("txnType"), fields.get("txnSubType")) != ("04", "00"):
        return _answer(fields, "32")
    amount = _amount(fields.get("txnAmt", ""))
    order_id = fields.get("orderId", "")
    if (
        amount is None
        or not protocol.ORDER_ID_RE.fullmatch(order_id)
        or not protocol.TXN_TIME_RE.fullmatch(fields.get("txnTime", ""))
    ):
        return _answer(fields, "10")
    if not fields.get("origQryId") or not fields.get("backUrl"):
        return _answer(fields, "13")
    with transaction.atomic():
        trade = (
            SandboxTrade.objects.select_for_update()
            .filter(
                channel=CHANNEL,
                merchant_id=merchant.merchant_id,
                extra__queryId=fields["origQryId"],
            )
            .first()
        )
        if trade is None or trade.status != SandboxTrade.Status.PAID:
            return _answer(fields, "35")
        if SandboxRefund.objects.filter(
            trade__channel=CHANNEL, trade__merchant_id=merchant.merchant_id, out_refund_no=order_id
        ).exists():
            return _answer(fields, "12")
        done = trade.refunds.filter(status=SandboxRefund.Status.SUCCESS).aggregate(s=Sum("amount"))[
            "s"
        ] or Decimal("0")
        if done + amount > trade.amount:
            return _answer(fields, "33")
        refund = SandboxRefund.objects.create(
            trade=trade, out_refund_no=order_id, amount=amount, status=SandboxRefund.Status.SUCCESS
        )
        ids = new_ids(refund.created_at)
        trade.extra.setdefault("refunds", {})[order_id] = {
            **ids,
            "txnTime": fields["txnTime"],
            "reqReserved": fields.get("reqReserved", ""),
        }
        trade.save(update_fields=["extra"])
        notice = {
            "version": protocol.VERSION,
            "encoding": "UTF-8",
            "signMethod": protocol.SIGN_METHOD_RSA,
            "txnType": "04",
            "txnSubType": "00",
            "bizType": "000201",
            "accessType": "0",
            "merId": merchant.merchant_id,
            "orderId": order_id,
            "origQryId": fields["origQryId"],
            "txnTime": fields["txnTime"],
            "txnAmt": fields["txnAmt"],
            "queryId": ids["queryId"],
            "traceNo": ids["traceNo"],
            "traceTime": ids["traceTime"],
            "settleAmt": fields["txnAmt"],
            "settleCurrencyCode": protocol.CURRENCY_CNY,
            "settleDate": ids["settleDate"],
            "reqReserved": fields.get("reqReserved", ""),
            "respCode": "00",
            "respMsg": "成功[0000000]",
        }
        headers, body = form_message(provider_sign(notice))
        core.enqueue_notification(CHANNEL, fields["backUrl"], headers, body)
    return _answer(
        fields,
        "00",
        queryId=ids["queryId"],
        origQryId=fields["origQryId"],
        txnAmt=fields["txnAmt"],
        reqReserved=fields.get("reqReserved", ""),
    )


@csrf_exempt
@require_POST
def query_trans(request: HttpRequest) -> HttpResponse:
    """交易状态查询 by orderId + txnTime; 34 until the buyer has paid or been declined."""
    fault = core.fault_response(CHANNEL)
    if fault is not None:
        return fault
    fields = request.POST.dict()
    merchant, error = _check(fields)
    if error:
        return _answer(fields, error)
    if (
        fields.get("txnType") != "00"
        or not fields.get("orderId")
        or not protocol.TXN_TIME_RE.fullmatch(fields.get("txnTime", ""))
    ):
        return _answer(fields, "10")
    trade = SandboxTrade.objects.filter(
        channel=CHANNEL, merchant_id=merchant.merchant_id, out_trade_no=fields["orderId"]
    ).first()
    if trade is not None and trade.extra.get("txnTime") == fields["txnTime"]:
        if trade.status == SandboxTrade.Status.PAID:
            ids = ensure_ids(trade)
            return _answer(
                fields,
                "00",
                origRespCode="00",
                origRespMsg="成功[0000000]",
                txnAmt=str(to_minor(trade.amount)),
                queryId=ids["queryId"],
                traceNo=ids["traceNo"],
                traceTime=ids["traceTime"],
                settleDate=ids["settleDate"],
                currencyCode=protocol.CURRENCY_CNY,
            )
        if trade.status == SandboxTrade.Status.DECLINED:
            code = trade.decline_code
            return _answer(
                fields,
                "00",
                origRespCode=code,
                origRespMsg=_decline_message(code),
                txnAmt=str(to_minor(trade.amount)),
            )
        return _answer(fields, "34")
    refund = (
        SandboxRefund.objects.select_related("trade")
        .filter(
            trade__channel=CHANNEL,
            trade__merchant_id=merchant.merchant_id,
            out_refund_no=fields["orderId"],
        )
        .first()
    )
    info = refund.trade.extra.get("refunds", {}).get(refund.out_refund_no, {}) if refund else {}
    if refund is not None and info.get("txnTime") == fields["txnTime"]:
        return _answer(
            fields,
            "00",
            origRespCode="00",
            origRespMsg="成功[0000000]",
            txnAmt=str(to_minor(refund.amount)),
            queryId=info["queryId"],
            traceNo=info["traceNo"],
            traceTime=info["traceTime"],
            settleDate=info["settleDate"],
        )
    return _answer(fields, "34")


def _decline_message(code: str) -> str:
    return protocol.RESP_MSG.get(code, "")


@csrf_exempt
@require_POST
def file_transfer(request: HttpRequest) -> HttpResponse:
    """文件传输 (txnType 76, fileType 00): the day's ZIP as base64(zlib(zip)) in fileContent."""
    fault = core.fault_response(CHANNEL)
    if fault is not None:
        return fault
    fields = request.POST.dict()
    merchant, error = _check(fields)
    if error:
        return _answer(fields, error)
    settle = fields.get("settleDate", "")
    if (
        (fields.get("txnType"), fields.get("fileType")) != ("76", "00")
        or not re.fullmatch(r"\d{4}", settle)
        or not protocol.TXN_TIME_RE.fullmatch(fields.get("txnTime", ""))
    ):
        return _answer(fields, "10")
    day = settle_day(settle, fields["txnTime"])
    if day is None:
        return _answer(fields, "10")
    data = build_zip(merchant.merchant_id, day)
    content = base64.b64encode(zlib.compress(data)).decode("ascii")
    return _answer(
        fields,
        "00",
        settleDate=settle,
        fileType="00",
        fileName=f"{merchant.merchant_id}_{day:%Y%m%d}.zip",
        fileContent=content,
    )


def settle_day(mmdd: str, sent: str) -> dt.date | None:
    """settleDate has no year: the latest such date not after the request's txnTime."""
    sent_day = dt.datetime.strptime(sent, "%Y%m%d%H%M%S").date()
    for year in (sent_day.year, sent_day.year - 1):
        try:
            candidate = dt.datetime.strptime(f"{year}{mmdd}", "%Y%m%d").date()
        except ValueError:
            continue
        if candidate <= sent_day:
            return candidate
    return None


urlpatterns = [
    path("", file_transfer, name="file_transfer"),
    path("gateway/api/frontTransReq.do", front_trans_req, name="front_trans"),
    path("gateway/api/backTransReq.do", back_trans_req, name="back_trans"),
    path("gateway/api/queryTrans.do", query_trans, name="query_trans"),
]
