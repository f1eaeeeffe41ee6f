"""Simulated UnionPay ACP 5.1.0 gateway (CHANNELS.md §3), speaking the provider's side.

* ``gateway/api/frontTransReq.do`` — the buyer's browser posts the merchant's signed form;
  the signature is verified against the merchant certificate registered under its certId,
  then the buyer lands on the cashier page (approve / decline).
* ``gateway/api/backTransReq.do`` — refunds (txnType 04), partial allowed.
* ``gateway/api/queryTrans.do`` — status query (txnType 00) by orderId + txnTime.
* ``/`` (the mount point) — file transfer (txnType 76), standing in for the separate
  ``filedownload`` host; answers base64(zlib(ZIP)) with the ZM detail and RD summary.

Every answer and notification is signed SHA256withRSA(sha256hex) by the sandbox's own
"UnionPay" signing certificate, which chains sandbox root → middle CA (generated once with
``cryptography``) and carries 中国银联股份有限公司 in its CN as the real one does.

Sandbox policies (the real ones are not published): notification retries after 1, 2, 4, 8,
16, 32, 60 and 120 minutes; a fixed fee of 0.60 % per payment (ROUND_HALF_UP to the fen, as
UnionPay's own sample file rounds), the same rate returned on refunds; the file for day D
holds payments paid and refunds made on Beijing calendar day D (real UnionPay cuts the
clearing day at 23:00).
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import io
import re
import secrets
import zipfile
import zlib
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments.channels import unionpay as acp
from payments.channels.base import from_minor, to_minor
from payments.sandbox import core, keys
from payments.sandbox.models import SandboxMerchant, SandboxRefund, SandboxTrade

CHANNEL = "unionpay"
FEE_RATE = Decimal("0.006")
ACQUIRER = "48021000"  # 代理机构标识码 / 发送机构标识码 used in the sandbox's ZM records
FORWARDER = "00049992"
TERMINAL = "01080209"


# ---------------------------------------------------------------------------------------------
# Certificates


@dataclass(frozen=True)
class Material:
    root_pem: str
    middle_pem: str
    middle_key: rsa.RSAPrivateKey
    sign_key: rsa.RSAPrivateKey
    sign_cert: x509.Certificate
    sign_cert_pem: str


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Cardex Sandbox CFCA"),
            x509.NameAttribute(x509.NameOID.COMMON_NAME, cn),
        ]
    )


def issue_certificate(
    *,
    subject: str,
    public_key,
    issuer: str,
    issuer_key: rsa.RSAPrivateKey,
    ca: bool,
    days: int = 3650,
    serial: int | None = None,
) -> str:
    """A PEM certificate; CA certificates get BasicConstraints CA:TRUE (checked by backends)."""
    now = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return (
        builder.sign(issuer_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
        .decode("ascii")
    )


def _key(pem: str) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


ROOT_CN = "Cardex Sandbox UnionPay Root CA"
MIDDLE_CN = "Cardex Sandbox UnionPay Middle CA"
SIGN_CN = f"041@Z12@{acp.UNIONPAY_CN_NAME}@00000001"


def material() -> Material:
    """The sandbox's CA chain and signing certificate, created once per key directory."""
    return _material(str(getattr(settings, "SANDBOX_KEY_DIR", settings.VAR_DIR / "sandbox")))


def _issued(name: str, subject: str, issuer: str, issuer_key: rsa.RSAPrivateKey | None, *, ca: bool, days: int = 3650) -> tuple[rsa.RSAPrivateKey, str]:
    """A key pair and its certificate, each created once under the key directory; a CA with
    no ``issuer_key`` signs itself."""
    key = _key(keys.provider_private_pem(name))
    pem = keys.provider_file(
        f"{name}.cert.pem",
        lambda: issue_certificate(
            subject=subject, public_key=key.public_key(), issuer=issuer, issuer_key=issuer_key or key, ca=ca, days=days,
        ),
    )
    return key, pem


@functools.lru_cache(maxsize=4)
def _material(_key_dir: str) -> Material:
    root_key, root_pem = _issued("unionpay-root-ca", ROOT_CN, ROOT_CN, None, ca=True)
    middle_key, middle_pem = _issued("unionpay-middle-ca", MIDDLE_CN, ROOT_CN, root_key, ca=True)
    sign_key, sign_pem = _issued("unionpay-sign", SIGN_CN, MIDDLE_CN, middle_key, ca=False, days=1825)
    return Material(
        root_pem,
        middle_pem,
        middle_key,
        sign_key,
        x509.load_pem_x509_certificate(sign_pem.encode()),
        sign_pem,
    )


def provider_sign(fields: dict[str, str]) -> dict[str, str]:
    """Sign as UnionPay: signPubKeyCert is part of the signed string (SDK ``validate``)."""
    mat = material()
    return acp.sign(
        {**fields, "signPubKeyCert": mat.sign_cert_pem},
        mat.sign_key,
        str(mat.sign_cert.serial_number),
    )


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
        public_key = _key(key_pem).public_key()
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
            "version": acp.VERSION,
            "encoding": "UTF-8",
            "signMethod": acp.SIGN_METHOD_RSA,
            "txnType": "01",
            "txnSubType": "01",
            "bizType": "000201",
            "accessType": "0",
            "merId": trade.merchant_id,
            "orderId": trade.out_trade_no,
            "txnTime": trade.extra.get("txnTime", ""),
            "txnAmt": str(to_minor(trade.amount)),
            "currencyCode": acp.CURRENCY_CNY,
            "queryId": ids["queryId"],
            "traceNo": ids["traceNo"],
            "traceTime": ids["traceTime"],
            "settleAmt": str(to_minor(trade.amount)),
            "settleCurrencyCode": acp.CURRENCY_CNY,
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


def _beijing(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(acp.BEIJING)


def new_ids(moment: dt.datetime) -> dict[str, str]:
    """UnionPay's identifiers for a completed transaction: queryId = trace time (14) +
    traceNo (6) + 1 digit, as in UnionPay's own sample file."""
    local = _beijing(moment)
    trace_no = f"{secrets.randbelow(10**6):06d}"
    return {
        "queryId": local.strftime("%Y%m%d%H%M%S") + trace_no + str(secrets.randbelow(10)),
        "traceNo": trace_no,
        "traceTime": local.strftime("%m%d%H%M%S"),
        "settleDate": local.strftime("%m%d"),
    }


def ensure_ids(trade: SandboxTrade) -> dict[str, str]:
    if not trade.extra.get("queryId"):
        trade.extra.update(new_ids(trade.paid_at or trade.created_at))
        trade.save(update_fields=["extra"])
    return {k: trade.extra[k] for k in ("queryId", "traceNo", "traceTime", "settleDate")}


# ---------------------------------------------------------------------------------------------
# Endpoints


def _provider() -> UnionPaySandbox:
    return UnionPaySandbox()


def _check(fields: dict[str, str]) -> tuple[SandboxMerchant | None, str]:
    """Verify the merchant's message: known merId, registered certId, valid signature."""
    merchant = _provider().merchant(fields.get("merId", ""))
    if merchant is None:
        return None, "31"
    if fields.get("version") != acp.VERSION or fields.get("signMethod") != acp.SIGN_METHOD_RSA:
        return merchant, "10"
    if fields.get("certId") != merchant.config.get("cert_id"):
        return merchant, "11"
    cert = x509.load_pem_x509_certificate(merchant.config["cert_pem"].encode())
    if not acp.verify(fields, cert.public_key()):
        return merchant, "11"
    return merchant, ""


RESP_MSG = {
    "00": "成功[0000000]",
    "10": "报文格式错误",
    "11": "验证签名失败",
    "12": "重复交易",
    "13": "报文交易要素缺失",
    "31": "商户状态不正确",
    "32": "无此交易权限",
    "33": "交易金额超限",
    "34": "查无此交易",
    "35": "原交易不存在或状态不正确",
    "98": "文件不存在",
}


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
        "signMethod": acp.SIGN_METHOD_RSA,
        "respCode": code,
        "respMsg": RESP_MSG.get(code, ""),
        **extra,
    }
    return HttpResponse(
        acp.render_response(provider_sign(fields)), content_type="text/plain;charset=UTF-8"
    )


def _error_page(code: str, status: int = 400) -> HttpResponse:
    return HttpResponse(
        f'<!doctype html><title>UnionPay sandbox</title><h1>交易失败</h1><p data-testid="sandbox-error">{code} {RESP_MSG.get(code, "")}</p>',
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
        or not acp.ORDER_ID_RE.fullmatch(fields.get("orderId", ""))
        or not acp.TXN_TIME_RE.fullmatch(fields.get("txnTime", ""))
    ):
        return _error_page("10")
    if fields.get("currencyCode") != acp.CURRENCY_CNY or not fields.get("backUrl"):
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
        or not acp.ORDER_ID_RE.fullmatch(order_id)
        or not acp.TXN_TIME_RE.fullmatch(fields.get("txnTime", ""))
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
            "version": acp.VERSION,
            "encoding": "UTF-8",
            "signMethod": acp.SIGN_METHOD_RSA,
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
            "settleCurrencyCode": acp.CURRENCY_CNY,
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
        or not acp.TXN_TIME_RE.fullmatch(fields.get("txnTime", ""))
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
                currencyCode=acp.CURRENCY_CNY,
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
    spec = acp.ERROR_CODES.get(code)
    return spec.reason_zh if spec else ""


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
        or not acp.TXN_TIME_RE.fullmatch(fields.get("txnTime", ""))
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


# ---------------------------------------------------------------------------------------------
# The reconciliation ZIP (CHANNELS.md §3.4)


def fee_of(amount: Decimal) -> Decimal:
    return (amount * FEE_RATE).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def _fen(amount: Decimal) -> str:
    return f"{to_minor(amount):012d}"


def zm_record(values: list[str]) -> bytes:
    """Join 42 values into one fixed-width record: each padded to its width, one space
    between fields."""
    assert len(values) == len(acp.ZM_WIDTHS)
    out = []
    for value, width in zip(values, acp.ZM_WIDTHS, strict=True):
        encoded = value.encode("gbk")
        if len(encoded) > width:
            raise ValueError(f"{value!r} does not fit {width} bytes")
        out.append(encoded + b" " * (width - len(encoded)))
    record = b" ".join(out)
    assert len(record) == acp.ZM_RECORD_LENGTH
    return record


def _zm_values(
    *,
    code: str,
    trace_no: str,
    trace_time: str,
    amount: Decimal,
    channel_type: str,
    query_id: str,
    order_id: str,
    fee: str,
    settle: str,
    txn_type: str,
    txn_sub: str,
    merchant_id: str,
    orig_trace: str = "",
    orig_time: str = "",
    orig_query_id: str = "",
    orig_order_id: str = "",
) -> list[str]:
    blank13 = " " + "0" * 12
    return [
        code,
        ACQUIRER,
        FORWARDER,
        trace_no,
        trace_time,
        "621700******0018",
        _fen(amount),
        "5999",
        channel_type,
        query_id,
        "01",
        order_id,
        "01",
        orig_trace,
        orig_time,
        fee,
        settle,
        "0001",
        "",
        txn_type,
        txn_sub,
        "000201",
        "",
        "",
        "",
        "",
        orig_query_id,
        merchant_id,
        "",
        "0" * 15,
        "",
        blank13,
        settle,
        TERMINAL,
        "",
        blank13,
        blank13,
        " " + "0" * 11,
        "",
        "7",
        orig_order_id,
        "",
    ]


def _day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime(day.year, day.month, day.day, tzinfo=acp.BEIJING)
    return start, start + dt.timedelta(days=1)


def build_zip(merchant_id: str, day: dt.date) -> bytes:
    """The day's ZIP for one merchant from the sandbox's own trades and refunds."""
    start, end = _day_bounds(day)
    rows: list[tuple[dt.datetime, str, bytes, Decimal, Decimal]] = []
    trades = SandboxTrade.objects.filter(
        channel=CHANNEL,
        merchant_id=merchant_id,
        status=SandboxTrade.Status.PAID,
        paid_at__gte=start,
        paid_at__lt=end,
    )
    for trade in trades:
        ids = ensure_ids(trade)
        fee = fee_of(trade.amount)
        values = _zm_values(
            code="S22",
            trace_no=ids["traceNo"],
            trace_time=ids["traceTime"],
            amount=trade.amount,
            channel_type=trade.extra.get("channelType", "07"),
            query_id=ids["queryId"],
            order_id=trade.out_trade_no,
            fee="D" + _fen(fee),
            settle="C" + _fen(trade.amount - fee),
            txn_type="01",
            txn_sub="01",
            merchant_id=merchant_id,
        )
        rows.append((trade.paid_at, "payment", zm_record(values), trade.amount, fee))
    refunds = SandboxRefund.objects.select_related("trade").filter(
        trade__channel=CHANNEL,
        trade__merchant_id=merchant_id,
        status=SandboxRefund.Status.SUCCESS,
        created_at__gte=start,
        created_at__lt=end,
    )
    for refund in refunds:
        trade = refund.trade
        paid = ensure_ids(trade)
        info = trade.extra.get("refunds", {}).get(refund.out_refund_no) or new_ids(
            refund.created_at
        )
        fee = fee_of(refund.amount)
        values = _zm_values(
            code="S30",
            trace_no=info["traceNo"],
            trace_time=info["traceTime"],
            amount=refund.amount,
            channel_type="07",
            query_id=info["queryId"],
            order_id=refund.out_refund_no,
            fee="C" + _fen(fee),
            settle="D" + _fen(refund.amount - fee),
            txn_type="04",
            txn_sub="00",
            merchant_id=merchant_id,
            orig_trace=paid["traceNo"],
            orig_time=paid["traceTime"],
            orig_query_id=paid["queryId"],
            orig_order_id=trade.out_trade_no,
        )
        rows.append((refund.created_at, "refund", zm_record(values), refund.amount, -fee))
    rows.sort(key=lambda row: row[0])
    zm = b"".join(record + b"\r\n" for _, _, record, _, _ in rows)
    rd = rd_summary(merchant_id, day, [(kind, amount, fee) for _, kind, _, amount, fee in rows])
    stamp = _beijing(dt.datetime.now(dt.UTC)).timetuple()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo(f"INN{day:%y%m%d}88ZM_{merchant_id}", stamp), zm)
        archive.writestr(zipfile.ZipInfo(f"RD2010{day:%y%m%d}01_{merchant_id}", stamp), rd)
    return buffer.getvalue()


def _pad(label: str, width: int) -> str:
    return label + " " * max(width - len(label.encode("gbk")), 1)


def _rd_row(
    label: str, count: int, debit: Decimal, credit: Decimal, fee_debit: Decimal, fee_credit: Decimal
) -> str:
    net = credit - debit - fee_debit + fee_credit
    net_debit, net_credit = (-net, Decimal("0.00")) if net < 0 else (Decimal("0.00"), net)
    return (
        _pad(label, 20)
        + f"{count:>8}{debit:>16}{credit:>16}{fee_debit:>16}{fee_credit:>16}{net_debit:>16}{net_credit:>20}"
    )


def rd_summary(merchant_id: str, day: dt.date, rows: list[tuple[str, Decimal, Decimal]]) -> bytes:
    """中国银联全渠道商户交易汇总表 in the layout of UnionPay's sample (GBK, CRLF)."""
    zero = Decimal("0.00")

    def sums(kind: str | None) -> tuple[int, Decimal, Decimal, Decimal, Decimal]:
        chosen = [r for r in rows if kind is None or r[0] == kind]
        debit = sum((a for k, a, _ in chosen if k == "refund"), zero)
        credit = sum((a for k, a, _ in chosen if k == "payment"), zero)
        fee_debit = sum((f for _, _, f in chosen if f > 0), zero)
        fee_credit = sum((-f for _, _, f in chosen if f < 0), zero)
        return len(chosen), debit, credit, fee_debit, fee_credit

    rule = "_" * 136
    header = [
        "交易类型            交易笔数               交易金额                         费用                              资金清算差额",
        "                                         借              贷              借              贷               借                  贷",
    ]
    today = _beijing(dt.datetime.now(dt.UTC)).date()
    lines = [
        " " * 73 + "中国银联全渠道商户交易汇总表" + " " * 12,
        "",
        _pad(f"商户代码:{merchant_id}", 64) + "清算币种:人民币",
        _pad(f"收单机构:{ACQUIRER}", 64) + f"清算日期:{day:%Y%m%d}",
        _pad("商户名称:Cardex沙箱商户", 64)
        + f"生成日期:{max(today, day + dt.timedelta(days=1)):%Y%m%d}",
        "",
        "",
        *header,
        rule,
        _rd_row("自助消费", *sums("payment")),
        _rd_row("退货", *sums("refund")),
        rule,
        _rd_row("总计", *sums(None)),
        "",
        header[0].replace("交易类型", "卡性质  "),
        header[1],
        rule,
        _rd_row("借记卡", *sums(None)),
        _rd_row("贷记卡", 0, zero, zero, zero, zero),
        _rd_row("准贷记卡", 0, zero, zero, zero, zero),
        _rd_row("其他卡", 0, zero, zero, zero, zero),
        rule,
        _rd_row("总计", *sums(None)),
    ]
    return "\r\n".join(lines).encode("gbk") + b"\r\n"


urlpatterns = [
    path("", file_transfer, name="file_transfer"),
    path("gateway/api/frontTransReq.do", front_trans_req, name="front_trans"),
    path("gateway/api/backTransReq.do", back_trans_req, name="back_trans"),
    path("gateway/api/queryTrans.do", query_trans, name="query_trans"),
]
