"""The trade bill the simulated WeChat Pay exports (CHANNELS.md §2.5, §2.6): the day's rows
in the ALL, SUCCESS or REFUND layout with the two summary lines, behind a signed link that
lives 30 seconds, gzip when asked."""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
from decimal import ROUND_HALF_UP, Decimal

from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone

from payments.sandbox.models import (
    SandboxMerchant,
    SandboxRefund,
    SandboxTrade,
)
from payments.sandbox.wechatpay.protocol import (
    BEIJING,
    CENT,
    CHANNEL,
    ApiError,
    answer,
    openid,
    yuan,
)

FEE_RATE = Decimal("0.006")  # the sandbox's fixed fee: 0.6 %
BILL_SALT = "sandbox.wechatpay.bill"
BILL_LINK_SECONDS = 30

COLUMNS = {
    "ALL": (
        "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,"
        "用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,"
        "微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,"
        "商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注"
    ),
    "SUCCESS": (
        "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,"
        "用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,"
        "商品名称,商户数据包,手续费,费率,订单金额,费率备注"
    ),
    "REFUND": (
        "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,"
        "用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,"
        "退款申请时间,退款成功时间,微信退款单号,商户退款单号,退款金额,"
        "充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,"
        "申请退款金额,费率备注"
    ),
}
SUMMARY_COLUMNS = (
    "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额"
)


def fee_for(amount: Decimal) -> Decimal:
    return (Decimal(amount) * FEE_RATE).quantize(CENT, rounding=ROUND_HALF_UP)


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
        paid = SandboxTrade.objects.filter(
            channel=CHANNEL, merchant_id=mchid, paid_at__gte=start, paid_at__lt=end
        ).exclude(paid_at=None)
        for trade in paid:
            amount = yuan(trade.amount)
            rows.append(
                (
                    trade.paid_at,
                    trade.pk,
                    {
                        **_common(trade),
                        "交易状态": "SUCCESS",
                        "应结订单金额": amount,
                        "微信退款单号": "0",
                        "商户退款单号": "0",
                        "退款金额": "0.00",
                        "充值券退款金额": "0.00",
                        "退款类型": "",
                        "退款状态": "",
                        "手续费": f"{fee_for(trade.amount):.5f}",
                        "订单金额": amount,
                        "申请退款金额": "0.00",
                    },
                )
            )
    if bill_type in ("ALL", "REFUND"):
        refunds = SandboxRefund.objects.filter(
            trade__channel=CHANNEL,
            trade__merchant_id=mchid,
            status=SandboxRefund.Status.SUCCESS,
            created_at__gte=start,
            created_at__lt=end,
        ).select_related("trade")
        for refund in refunds:
            amount = yuan(refund.amount)
            rows.append(
                (
                    refund.created_at,
                    refund.pk,
                    {
                        **_common(refund.trade),
                        "交易状态": "REFUND",
                        "应结订单金额": "0.00",
                        "退款申请时间": _bill_time(refund.created_at),
                        "退款成功时间": _bill_time(refund.created_at),
                        "微信退款单号": refund.refund_id,
                        "商户退款单号": refund.out_refund_no,
                        "退款金额": amount,
                        "充值券退款金额": "0.00",
                        "退款类型": "ORIGINAL",
                        "退款状态": "SUCCESS",
                        "手续费": f"{-fee_for(refund.amount):.5f}",
                        "订单金额": "0.00",
                        "申请退款金额": amount,
                    },
                )
            )
    if not rows:
        return None
    rows.sort(key=lambda r: (r[0], r[1]))
    columns = COLUMNS[bill_type].split(",")
    lines = [COLUMNS[bill_type]]
    lines += ["`" + ",`".join(row.get(c, "") for c in columns) for _, _, row in rows]

    def total(column: str) -> Decimal:
        return sum((Decimal(row[column]) for _, _, row in rows), Decimal(0))

    lines.append(SUMMARY_COLUMNS)
    lines.append(
        "`"
        + ",`".join(
            [
                str(len(rows)),
                yuan(total("应结订单金额")),
                yuan(total("退款金额")),
                yuan(total("充值券退款金额")),
                f"{total('手续费'):.5f}",
                yuan(total("订单金额")),
                yuan(total("申请退款金额")),
            ]
        )
    )
    return "\ufeff" + "\r\n".join(lines) + "\r\n"


def _common(trade: SandboxTrade) -> dict[str, str]:
    return {
        "交易时间": _bill_time(trade.paid_at),
        "公众账号ID": str(trade.extra.get("appid", "")),
        "商户号": trade.merchant_id,
        "特约商户号": "0",
        "设备号": "",
        "微信订单号": trade.trade_no,
        "商户订单号": trade.out_trade_no,
        "用户标识": openid(trade),
        "交易类型": str(trade.extra.get("trade_type", "NATIVE")),
        "付款银行": "OTHERS",
        "货币种类": "CNY",
        "代金券金额": "0.00",
        "商品名称": _cell(trade.subject),
        "商户数据包": _cell(str(trade.extra.get("attach", ""))),
        "费率": "0.60%",
        "费率备注": "",
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
    token = signing.dumps(
        {
            "mchid": merchant.merchant_id,
            "day": day.isoformat(),
            "bill_type": bill_type,
            "tar_type": tar_type,
        },
        salt=BILL_SALT,
    )
    url = request.build_absolute_uri(reverse("sandbox:wechatpay:billfile")) + "?token=" + token
    return answer(
        200,
        {
            "hash_type": "SHA1",
            "hash_value": hashlib.sha1(text.encode("utf-8")).hexdigest(),
            "download_url": url,
        },
    )


def api_billfile(request: HttpRequest, merchant: SandboxMerchant) -> HttpResponse:
    """The bill stream itself: not signed (integrity via the SHA-1), gzip when asked (§2.5)."""
    try:
        grant = signing.loads(
            request.GET.get("token", ""), salt=BILL_SALT, max_age=BILL_LINK_SECONDS
        )
    except signing.BadSignature:
        raise ApiError(400, "INVALID_REQUEST", "下载链接无效或已过期") from None
    if grant["mchid"] != merchant.merchant_id:
        raise ApiError(403, "NO_AUTH", "无权下载该账单")
    text = bill_text(grant["mchid"], dt.date.fromisoformat(grant["day"]), grant["bill_type"]) or ""
    data = text.encode("utf-8")
    if grant["tar_type"] == "GZIP":
        data = gzip.compress(data, mtime=0)
    return HttpResponse(data, content_type="application/octet-stream")
