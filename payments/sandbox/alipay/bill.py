"""The trade bill the simulated Alipay exports (CHANNELS.md §1.7): the day's 业务明细 and
汇总 files from the sandbox's trades and refunds, zipped with GBK names, behind a link that
lives 30 seconds."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from decimal import ROUND_HALF_UP, Decimal

from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from payments.sandbox import core
from payments.sandbox.alipay.protocol import (
    BEIJING,
    CENT,
    CHANNEL,
    beijing,
    buyer_of,
    yuan,
)
from payments.sandbox.models import SandboxRefund, SandboxTrade

FEE_RATE = Decimal("0.006")  # the sandbox's fixed service fee: 0.6 %
BILL_LINK_SECONDS = 30  # "获取连接后30秒后未下载，链接地址失效" (§1.6)
BILL_SALT = "sandbox.alipay.bill"

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
DETAIL_BEGIN = (
    "#-----------------------------------------业务明细列表----------------------------------------"
)
DETAIL_END = (
    "#-----------------------------------------业务明细列表结束------------------------------------"
)
SUMMARY_BEGIN = (
    "#-----------------------------------------业务汇总列表----------------------------------------"
)
SUMMARY_END = (
    "#-----------------------------------------业务汇总列表结束------------------------------------"
)


def fee_for(amount: Decimal) -> Decimal:
    return (Decimal(amount) * FEE_RATE).quantize(CENT, rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------------------------------------
# The trade bill (§1.7)


def _cn_date(moment: dt.datetime) -> str:
    return moment.strftime("%Y年%m月%d日 %H:%M:%S")


def _safe(text: str) -> str:
    """Alipay writes cells unquoted: keep commas and line breaks out of free text."""
    return text.replace(",", "，").replace("\r", " ").replace("\n", " ").replace("\t", " ")


def bill_files(
    pid: str, day: dt.date, *, exported_at: dt.datetime | None = None
) -> tuple[str, str]:
    """The 业务明细 and 业务明细(汇总) texts of ``pid`` for ``day`` (Beijing), from the
    sandbox's own trades (paid that day) and refunds (made that day)."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=BEIJING)
    end = start + dt.timedelta(days=1)
    exported = (exported_at or timezone.now()).astimezone(BEIJING)
    rows: list[tuple[dt.datetime, list[str], str, Decimal, Decimal]] = []
    trades = SandboxTrade.objects.filter(
        channel=CHANNEL, merchant_id=pid, paid_at__gte=start, paid_at__lt=end
    ).exclude(paid_at=None)
    for trade in trades:
        _, logon = buyer_of(trade)
        fee = fee_for(trade.amount)
        amount = yuan(trade.amount)
        cells = [
            f"{trade.trade_no}\t",
            f"{trade.out_trade_no}\t",
            "交易\t",
            _safe(trade.subject),
            beijing(trade.created_at),
            beijing(trade.paid_at),
            "\t",
            "\t",
            "\t",
            "\t",
            f"*沙箱({logon})\t",
            amount,
            amount,
            "0.00",
            "0.00",
            "0.00",
            "0.00",
            "0.00",
            "",
            "0.00\t",
            "0.00",
            "\t",
            yuan(-fee),
            "0.00",
            "",
        ]
        rows.append((trade.paid_at, cells, "交易", trade.amount, -fee))
    refunds = SandboxRefund.objects.filter(
        trade__channel=CHANNEL,
        trade__merchant_id=pid,
        status=SandboxRefund.Status.SUCCESS,
        created_at__gte=start,
        created_at__lt=end,
    ).select_related("trade")
    for refund in refunds:
        trade = refund.trade
        _, logon = buyer_of(trade)
        fee = fee_for(refund.amount)
        amount = yuan(-refund.amount)
        cells = [
            f"{trade.trade_no}\t",
            f"{trade.out_trade_no}\t",
            "退款\t",
            _safe(trade.subject),
            beijing(trade.created_at),
            beijing(refund.created_at),
            "\t",
            "\t",
            "\t",
            "\t",
            f"*沙箱({logon})\t",
            amount,
            amount,
            "0.00",
            "0.00",
            "0.00",
            "0.00",
            "0.00",
            "",
            "0.00\t",
            "0.00",
            f"{refund.out_refund_no}\t",
            yuan(fee),
            "0.00",
            "",
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
        "#支付宝业务明细查询",
        f"#账号：[{account}]",
        period,
        DETAIL_BEGIN,
        DETAIL_COLUMNS,
        *(",".join(r[1]) for r in rows),
        DETAIL_END,
        f"#交易合计：{len(trade_rows)}笔，商家实收共{yuan(trade_total)}元，商家优惠共0.00元",
        f"#退款合计：{len(refund_rows)}笔，商家实收退款共{yuan(refund_total)}元，商家优惠退款共0.00元",
        f"#导出时间：[{_cn_date(exported)}]",
    ]
    net = trade_total + refund_total
    totals = [
        str(len(trade_rows)),
        str(len(refund_rows)),
        yuan(net),
        yuan(net),
        "0.00",
        "0.00",
        "0.00",
        yuan(fee_total),
        "0.00",
        yuan(net + fee_total),
    ]
    summary = [
        "#支付宝业务汇总查询",
        f"#账号：[{account}]",
        period,
        SUMMARY_BEGIN,
        SUMMARY_COLUMNS,
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
        for name, text in (
            (f"{prefix}_业务明细.csv", detail),
            (f"{prefix}_业务明细(汇总).csv", summary),
        ):
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
        grant = signing.loads(
            request.GET.get("token", ""), salt=BILL_SALT, max_age=BILL_LINK_SECONDS
        )
    except signing.BadSignature:
        return HttpResponse(
            "链接已失效 (the bill link is invalid or older than 30 s)",
            status=404,
            content_type="text/plain; charset=utf-8",
        )
    name, data = bill_zip(grant["pid"], dt.date.fromisoformat(grant["day"]))
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
