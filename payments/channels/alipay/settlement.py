"""The Alipay trade bill (CHANNELS.md §1.7): a ZIP of GBK CSV files whose 业务明细 file is
streamed line by line and checked against its footer totals and the 汇总 file's fees."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import IO, Any

from payments.channels.alipay.wire import (
    parse_amount,
    parse_beijing,
)
from payments.channels.base import (
    FileTotals,
    ReadOnceSettlementFile,
    SettlementFileError,
    SettlementLine,
    peek_stream,
)

DETAIL_TITLE = "#支付宝业务明细查询"
SUMMARY_TITLE = "#支付宝业务汇总查询"
DETAIL_END = "业务明细列表结束"
DETAIL_SUFFIX = "_业务明细.csv"
SUMMARY_SUFFIX = "_业务明细(汇总).csv"

COL_TRADE_NO = "支付宝交易号"
COL_OUT_TRADE_NO = "商户订单号"
COL_TYPE = "业务类型"
COL_CREATED = "创建时间"
COL_FINISHED = "完成时间"
COL_ORDER_AMOUNT = "订单金额（元）"
COL_RECEIVED = "商家实收（元）"
COL_MERCHANT_DISCOUNT = "商家优惠（元）"
COL_REFUND_NO = "退款批次号/请求号"
COL_FEE = "服务费（元）"

REQUIRED_COLUMNS = (
    COL_TRADE_NO,
    COL_OUT_TRADE_NO,
    COL_TYPE,
    COL_ORDER_AMOUNT,
    COL_RECEIVED,
    COL_REFUND_NO,
    COL_FEE,
)

KIND_BY_TYPE = {"交易": "payment", "退款": "refund"}

_ACCOUNT_RE = re.compile(r"^#账号[:：]\s*\[?(\d+)\]?")
_START_RE = re.compile(r"起始日期[:：]\s*\[(\d{4})年(\d{1,2})月(\d{1,2})日")
_COUNT_RE = re.compile(r"(\d+)笔")
_AMOUNT_RE = re.compile(r"共(-?[\d.]+)元")


def _normalise_header(name: str) -> str:
    return name.strip().strip("\t").replace("(", "（").replace(")", "）")


def _cells(text: str) -> list[str]:
    """One CSV line's cells with Alipay's anti-Excel TAB suffix removed (§1.7)."""
    row = next(csv.reader([text]), [])
    return [cell.replace("\t", "").strip() for cell in row]


def merchant_of_account(account: str) -> str:
    """``#账号`` holds the 16-digit PID followed by ``0156`` (the CNY currency code)."""
    return account[:16] if len(account) == 20 and account.endswith("0156") else account


class AlipayBill(ReadOnceSettlementFile):
    """A streaming reader of one 业务明细 file (plus, from the ZIP, its 汇总 file's totals).

    After the last line it compares the footer (``#交易合计`` / ``#退款合计``: counts by
    ``(\\d+)笔`` and amounts by ``共(-?[\\d.]+)元``) and the 汇总 file's 合计 row with the sums
    of the lines, and raises :class:`SettlementFileError` naming the line when they disagree.
    """

    def __init__(
        self,
        detail: IO[bytes],
        *,
        summary: bytes | None = None,
        merchant_id: str = "",
        keep_open: Any = None,
    ):
        self._detail = detail
        self._summary = summary
        self._expected_merchant = merchant_id
        self._keep_open = keep_open  # the ZipFile the detail stream reads from

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def open(cls, stream: IO[bytes], *, merchant_id: str = "") -> AlipayBill:
        head, stream = _peek(stream, 4)
        if not head:
            raise SettlementFileError("empty file: not an Alipay bill")
        if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
            return cls._open_zip(stream, merchant_id=merchant_id)
        return cls(stream, merchant_id=merchant_id)

    @classmethod
    def _open_zip(cls, stream: IO[bytes], *, merchant_id: str) -> AlipayBill:
        if not _seekable(stream):
            stream = io.BytesIO(stream.read())
        try:
            archive = zipfile.ZipFile(
                stream, metadata_encoding="gbk"
            )  # names: GBK, no UTF-8 flag (§1.7)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise SettlementFileError(f"not a readable ZIP (truncated or corrupt): {exc}") from None
        detail = summary = None
        for info in archive.infolist():
            if info.filename.endswith(SUMMARY_SUFFIX):
                summary = info
            elif info.filename.endswith(DETAIL_SUFFIX):
                detail = info
        if detail is None:
            names = ", ".join(i.filename for i in archive.infolist()) or "nothing"
            raise SettlementFileError(
                f"the ZIP holds no …{DETAIL_SUFFIX} trade bill (found {names})"
            )
        try:
            summary_bytes = archive.read(summary) if summary is not None else None
            detail_stream = archive.open(detail)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise SettlementFileError(f"the ZIP entry cannot be read (corrupt): {exc}") from None
        return cls(detail_stream, summary=summary_bytes, merchant_id=merchant_id, keep_open=archive)

    _read_errors = (zipfile.BadZipFile, EOFError, OSError)

    # -- parsing -----------------------------------------------------------------------------
    def _parse(self) -> Iterator[SettlementLine]:
        encoding = ""
        account = ""
        day: dt.date | None = None
        columns: dict[str, int] | None = None
        ended = False
        footer_trade: tuple[int, str] | None = None
        footer_refund: tuple[int, str] | None = None
        sums = {
            "payment": [0, Decimal(0), Decimal(0), Decimal(0)],
            "refund": [0, Decimal(0), Decimal(0), Decimal(0)],
        }
        fee_sum = Decimal(0)
        deduction_convention = False
        line_no = 0
        for line_no, raw in enumerate(self._detail, start=1):
            if line_no == 1:
                encoding = _detect_encoding(raw)
            try:
                text = raw.decode(encoding)
            except UnicodeDecodeError:
                raise SettlementFileError(
                    f"line is not valid {encoding.upper()} text (wrong encoding?)", line_no=line_no
                ) from None
            text = text.lstrip("\ufeff").rstrip("\r\n")
            if not text.strip():
                continue
            if line_no == 1:
                if text.strip() != DETAIL_TITLE:
                    raise SettlementFileError(
                        f"not an Alipay 业务明细 bill: first line is {text[:40]!r}", line_no=1
                    )
                continue
            if text.startswith("#"):
                if columns is None:
                    found = _ACCOUNT_RE.match(text)
                    if found:
                        account = found.group(1)
                        merchant = merchant_of_account(account)
                        if self._expected_merchant and merchant != self._expected_merchant:
                            raise SettlementFileError(
                                f"the bill belongs to merchant {merchant}, "
                                f"not {self._expected_merchant}",
                                line_no=line_no,
                            )
                    started = _START_RE.search(text)
                    if started:
                        day = dt.date(
                            int(started.group(1)), int(started.group(2)), int(started.group(3))
                        )
                    continue
                if DETAIL_END in text:
                    ended = True
                elif text.startswith("#交易合计"):
                    footer_trade = (line_no, text)
                elif text.startswith("#退款合计"):
                    footer_refund = (line_no, text)
                continue
            if ended:
                raise SettlementFileError("data after the end of the detail list", line_no=line_no)
            if columns is None:
                names = [_normalise_header(c) for c in _cells(text)]
                missing = [c for c in REQUIRED_COLUMNS if c not in names]
                if missing:
                    raise SettlementFileError(
                        f"the column header lacks {', '.join(missing)}", line_no=line_no
                    )
                columns = {name: i for i, name in enumerate(names)}
                width = len(names)
                continue
            cells = _cells(text)
            if len(cells) != width:
                raise SettlementFileError(
                    f"expected {width} columns, found {len(cells)} (truncated line?)",
                    line_no=line_no,
                )
            row = {name: cells[i] for name, i in columns.items()}
            kind = KIND_BY_TYPE.get(row[COL_TYPE])
            if kind is None:
                raise SettlementFileError(f"unknown 业务类型 {row[COL_TYPE]!r}", line_no=line_no)
            try:
                order_amount = parse_amount(row[COL_ORDER_AMOUNT], what=COL_ORDER_AMOUNT)
                received = parse_amount(row[COL_RECEIVED], what=COL_RECEIVED)
                fee = parse_amount(row[COL_FEE] or "0", what=COL_FEE)
                discount = parse_amount(
                    row.get(COL_MERCHANT_DISCOUNT) or "0", what=COL_MERCHANT_DISCOUNT
                )
            except ValueError as exc:
                raise SettlementFileError(str(exc), line_no=line_no) from None
            bucket = sums[kind]
            bucket[0] += 1
            bucket[1] += received
            bucket[2] += order_amount
            bucket[3] += discount
            fee_sum += fee
            if kind == "payment" and fee < 0:
                deduction_convention = True
            yield SettlementLine(
                line_no=line_no,
                kind=kind,
                out_trade_no=row[COL_OUT_TRADE_NO],
                channel_trade_no=row[COL_TRADE_NO],
                amount=abs(order_amount),
                # sign-agnostic: a charge on payments, a return on refunds
                # (§1.7 leaves 服务费's sign open)
                fee=abs(fee) if kind == "payment" else -abs(fee),
                currency="CNY",
                occurred_at=parse_beijing(row.get(COL_FINISHED, ""))
                or parse_beijing(row.get(COL_CREATED, "")),
                refund_no=row[COL_REFUND_NO] if kind == "refund" else "",
                raw=row,
            )
        last = line_no
        if last == 0:
            raise SettlementFileError("empty file: not an Alipay bill")
        if columns is None:
            raise SettlementFileError(
                "the bill ends before its column header (truncated)", line_no=last
            )
        if not ended:
            raise SettlementFileError(
                "the detail list has no end marker (file truncated)", line_no=last
            )
        if footer_trade is None or footer_refund is None:
            which = "#交易合计" if footer_trade is None else "#退款合计"
            raise SettlementFileError(f"missing footer line {which} (file truncated)", line_no=last)
        if not account:
            raise SettlementFileError("the bill names no #账号 (merchant)", line_no=2)
        payments, gross = _check_footer(footer_trade, sums["payment"], refund=False)
        refunds, refunded = _check_footer(footer_refund, sums["refund"], refund=True)
        fees = None
        if self._summary is not None:
            summary_fee = _check_summary(
                self._summary, payments=payments, refunds=refunds, fee_sum=fee_sum
            )
            fees = -summary_fee if deduction_convention else summary_fee
        self._totals = FileTotals(
            merchant_id=merchant_of_account(account),
            day=day,
            payments=payments,
            refunds=refunds,
            lines=payments + refunds,
            gross=gross,
            refunded=abs(refunded),
            fees=fees,
        )


def _check_footer(footer: tuple[int, str], bucket: list, *, refund: bool) -> tuple[int, Decimal]:
    line_no, text = footer
    counts = _COUNT_RE.findall(text)
    amounts = _AMOUNT_RE.findall(text)
    if not counts or not amounts:
        raise SettlementFileError(f"cannot read the footer {text!r}", line_no=line_no)
    count = int(counts[0])
    try:
        stated = [Decimal(a) for a in amounts]
    except InvalidOperation:
        raise SettlementFileError(f"cannot read the footer {text!r}", line_no=line_no) from None
    rows, received, ordered, discount = bucket
    label = "退款" if refund else "交易"
    if count != rows:
        raise SettlementFileError(
            f"footer says {count} {label} rows, the file has {rows}", line_no=line_no
        )
    # newer wording states 商家实收, the older one 交易金额 (= 订单金额)
    expected = received if "实收" in text else ordered
    if stated[0] not in (expected, -expected):
        raise SettlementFileError(
            f"footer says {label} total {stated[0]}, the rows add up to {expected}", line_no=line_no
        )
    if len(stated) > 1 and "优惠" in text and stated[1] not in (discount, -discount):
        raise SettlementFileError(
            f"footer says {label} 商家优惠 {stated[1]}, the rows add up to {discount}",
            line_no=line_no,
        )
    return count, stated[0]


def _check_summary(data: bytes, *, payments: int, refunds: int, fee_sum: Decimal) -> Decimal:
    """The 汇总 file's 合计 row must agree with the detail: order counts and 服务费."""
    encoding = _detect_encoding(data.split(b"\n", 1)[0], title=SUMMARY_TITLE)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        raise SettlementFileError(f"the 汇总 file is not valid {encoding.upper()} text") from None
    header: dict[str, int] | None = None
    for line_no, line in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = _cells(line)
        if header is None:
            header = {_normalise_header(c): i for i, c in enumerate(cells)}
            continue
        if cells and cells[0] == "合计":
            try:
                stated_payments = int(cells[header["交易订单总笔数"]])
                stated_refunds = int(cells[header["退款订单总笔数"]])
                stated_fee = Decimal(cells[header[COL_FEE]] or "0")
            except (KeyError, IndexError, ValueError, InvalidOperation):
                raise SettlementFileError(
                    f"汇总 file line {line_no}: cannot read the 合计 row"
                ) from None
            if (stated_payments, stated_refunds) != (payments, refunds):
                raise SettlementFileError(
                    f"汇总 file line {line_no}: 合计 says {stated_payments} trades / "
                    f"{stated_refunds} refunds, "
                    f"the detail has {payments} / {refunds}"
                )
            if stated_fee != fee_sum:
                raise SettlementFileError(
                    f"汇总 file line {line_no}: 合计 服务费 {stated_fee}, "
                    f"the detail adds up to {fee_sum}"
                )
            return stated_fee
    raise SettlementFileError("the 汇总 file has no 合计 row")


def _detect_encoding(first_line: bytes, *, title: str = DETAIL_TITLE) -> str:
    """UTF-8 (with or without BOM) or GBK, decided by the title line; else a wrong encoding."""
    stripped = first_line.rstrip(b"\r\n")
    for encoding in ("utf-8-sig", "gbk"):
        try:
            if stripped.decode(encoding).strip() == title:
                return "utf-8" if encoding == "utf-8-sig" else encoding
        except UnicodeDecodeError:
            continue
    raise SettlementFileError(
        f"not an Alipay bill in GBK or UTF-8: the first line is not {title} "
        "(wrong encoding or another file)",
        line_no=1,
    )


def _seekable(stream: IO[bytes]) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, ValueError):
        return False


_peek = peek_stream
