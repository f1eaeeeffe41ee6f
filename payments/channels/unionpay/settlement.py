"""The daily reconciliation file: the ZIP with the fixed-width ZM detail and the GBK RD
summary, or a bare ZM file (CHANNELS.md §3.4)."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any

from payments.channels.base import (
    FileTotals,
    SettlementFile,
    SettlementFileError,
    SettlementLine,
    from_minor,
)
from payments.channels.unionpay.wire import BEIJING, with_year

#: ZM record layout: 42 fixed-width fields separated by one space (official parseZMFile).
ZM_WIDTHS = (
    3,
    11,
    11,
    6,
    10,
    19,
    12,
    4,
    2,
    21,
    2,
    32,
    2,
    6,
    10,
    13,
    13,
    4,
    15,
    2,
    2,
    6,
    2,
    4,
    32,
    1,
    21,
    15,
    1,
    15,
    32,
    13,
    13,
    8,
    32,
    13,
    13,
    12,
    2,
    1,
    32,
    98,
)
ZM_NAMES = (
    "交易代码",
    "代理机构标识码",
    "发送机构标识码",
    "系统跟踪号",
    "交易传输时间",
    "帐号",
    "交易金额",
    "商户类别",
    "终端类型",
    "查询流水号",
    "支付方式旧",
    "商户订单号",
    "支付卡类型",
    "原始交易的系统跟踪号",
    "原始交易日期时间",
    "商户手续费",
    "结算金额",
    "支付方式",
    "集团商户代码",
    "交易类型",
    "交易子类",
    "业务类型",
    "帐号类型",
    "账单类型",
    "账单号码",
    "交互方式",
    "原交易查询流水号",
    "商户代码",
    "分账入账方式",
    "二级商户代码",
    "二级商户简称",
    "二级商户分账入账金额",
    "清算净额",
    "终端号",
    "商户自定义域",
    "优惠金额",
    "发票金额",
    "分期付款附加手续费",
    "分期付款期数",
    "交易介质",
    "原始交易订单号",
    "保留使用",
)
ZM_RECORD_LENGTH = sum(ZM_WIDTHS) + len(ZM_WIDTHS) - 1  # 607
assert ZM_RECORD_LENGTH == 607

#: 交易代码 → direction. S22 消费 / S30 退货 per dax-pay UnionPayCode; S56 appears in UnionPay's
#: own sample on consumption records (交易类型 01, credited to the merchant, listed under 自助消费
#: in the RD summary) and is read as a payment — CHANNELS.md §3.4 marks its meaning unverified.
TXN_CODES = {"S22": "payment", "S56": "payment", "S30": "refund"}
#: fallback when the 交易代码 is not in the table: field 20 交易类型 (01 消费, 04 退货)
TXN_TYPES = {"01": "payment", "04": "refund"}

ZM_NAME_RE = re.compile(r"INN(\d{6})(\d{2})ZM_(\w+)")
ZIP_NAME_RE = re.compile(r"(\w+)_(\d{8})\.zip")
_SIGNED_RE = re.compile(r"([DC ])(\d{11,12})")


def _signed_amount(value: str, *, field: str, line_no: int) -> Decimal:
    """X+n12 amounts: 'D' debits the merchant, 'C' credits it (blank = credit)."""
    match = _SIGNED_RE.fullmatch(value)
    if not match:
        raise SettlementFileError(f"{field} {value.strip()!r} is not a D/C amount", line_no=line_no)
    amount = from_minor(match.group(2))
    return -amount if match.group(1) == "D" else amount


@dataclass(frozen=True)
class RDSummary:
    """The totals UnionPay's RD summary (中国银联全渠道商户交易汇总表) states for the day."""

    merchant_id: str
    day: dt.date | None
    count: int
    debit: Decimal  # 交易金额 借 — refunds debited to the merchant
    credit: Decimal  # 交易金额 贷 — payments credited to the merchant
    fee_debit: Decimal  # 费用 借 — fees charged
    fee_credit: Decimal  # 费用 贷 — fees returned
    net_debit: Decimal  # 资金清算差额 借
    net_credit: Decimal  # 资金清算差额 贷
    line_no: int  # the 总计 line


def parse_rd(data: bytes) -> RDSummary:
    """Read the first 总计 row (by 交易类型) and the header facts from the GBK RD summary.
    Later 总计 rows (by 卡性质) must agree with it."""
    try:
        text = data.decode("gbk")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SettlementFileError("RD summary is not GBK text", line_no=line) from None
    text = text.lstrip("\ufeff")
    merchant = re.search(r"商户代码[:：]\s*(\S+)", text)
    if not merchant:
        raise SettlementFileError("RD summary has no 商户代码")
    day_match = re.search(r"清算日期[:：]\s*(\d{8})", text)
    day = dt.datetime.strptime(day_match.group(1), "%Y%m%d").date() if day_match else None
    totals: list[tuple[int, list[str]]] = []
    for no, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("总计"):
            values = stripped[2:].replace(",", "").split()
            if (
                len(values) != 7
                or not values[0].isdigit()
                or not all(re.fullmatch(r"-?\d+\.\d{2}", v) for v in values[1:])
            ):
                raise SettlementFileError(
                    "RD 总计 row does not hold a count and six amounts", line_no=no
                )
            totals.append((no, values))
    if not totals:
        raise SettlementFileError("RD summary has no 总计 row (truncated?)")
    first_no, first = totals[0]
    for no, other in totals[1:]:
        if other != first:
            raise SettlementFileError("RD 总计 rows disagree with each other", line_no=no)
    amounts = [Decimal(v) for v in first[1:]]
    return RDSummary(merchant.group(1), day, int(first[0]), *amounts, line_no=first_no)


class ZMSettlementFile(SettlementFile):
    """A day's UnionPay reconciliation: the ZIP as delivered, or its bare ZM file.

    ZIP: the RD summary gives the file's totals (count, 交易金额 借/贷, 费用 借/贷, 清算差额);
    after the last ZM record they are compared with the sums of the records. A bare ZM file
    states no totals (no footer): each record is checked on its own instead — length, field
    formats, one merchant throughout, and 结算金额 = 交易金额 ∓ 手续费 = 清算净额 where no
    discount or split applies. ZME (差错) files in the ZIP are not read.
    """

    def __init__(self, stream: IO[bytes]):
        self._source_name = str(getattr(stream, "name", "") or "")
        self._rd: RDSummary | None = None
        self._day: dt.date | None = None
        self._merchant = ""
        seekable = bool(getattr(stream, "seekable", lambda: False)())
        start = stream.tell() if seekable else 0
        head = stream.read(4)
        if head.startswith(b"PK\x03\x04"):
            if seekable:
                stream.seek(start)
                source: IO[bytes] = stream
            else:
                source = io.BytesIO(head + stream.read())
            self._open_zip(source)
            self._reader = self._zip_lines
        else:
            match = ZM_NAME_RE.search(self._source_name)
            if match:
                self._day = _yymmdd(match.group(1))
                self._merchant = match.group(3)
            self._head, self._stream = head, stream
            self._reader = self._bare_lines

    def _open_zip(self, source: IO[bytes]) -> None:
        try:
            archive = zipfile.ZipFile(source)
            names = archive.namelist()
        except (zipfile.BadZipFile, EOFError, ValueError, OSError) as exc:
            raise SettlementFileError(f"not a readable ZIP (truncated?): {exc}") from None
        zm = [n for n in names if ZM_NAME_RE.fullmatch(n.rsplit("/", 1)[-1])]
        rd = [n for n in names if n.rsplit("/", 1)[-1].startswith("RD")]
        if len(zm) != 1:
            raise SettlementFileError(f"ZIP holds {len(zm)} ZM files, expected one")
        if len(rd) != 1:
            raise SettlementFileError(
                f"ZIP holds {len(rd)} RD summaries, expected one (totals missing)"
            )
        try:
            summary = parse_rd(archive.read(rd[0]))
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise SettlementFileError(
                f"RD summary cannot be unpacked (truncated?): {exc}"
            ) from None
        match = ZM_NAME_RE.fullmatch(zm[0].rsplit("/", 1)[-1])
        if match.group(3) != summary.merchant_id:
            raise SettlementFileError(
                f"ZM file is for merchant {match.group(3)}, RD summary for {summary.merchant_id}"
            )
        if summary.day and _yymmdd(match.group(1)) != summary.day:
            raise SettlementFileError(
                f"ZM file is for {_yymmdd(match.group(1))}, RD summary for {summary.day}"
            )
        named = ZIP_NAME_RE.fullmatch(self._source_name.replace("\\", "/").rsplit("/", 1)[-1])
        day_text = f"{summary.day:%Y%m%d}" if summary.day else ""
        if named and (
            named.group(1) != summary.merchant_id or (day_text and named.group(2) != day_text)
        ):
            raise SettlementFileError(
                f"ZIP {named.group(0)} holds the file of merchant {summary.merchant_id} "
                f"for {summary.day}"
            )
        self._archive, self._zm_name, self._rd = archive, zm[0], summary
        self._day = summary.day or _yymmdd(match.group(1))
        self._merchant = summary.merchant_id

    def _zip_lines(self) -> Iterator[bytes]:
        with self._archive.open(self._zm_name) as member:
            yield from member

    def _bare_lines(self) -> Iterator[bytes]:
        buffer = self._head
        while True:
            newline = buffer.find(b"\n")
            if newline >= 0:
                yield buffer[: newline + 1]
                buffer = buffer[newline + 1 :]
                continue
            more = self._stream.readline()
            if not more:
                if buffer:
                    yield buffer
                return
            buffer += more

    @property
    def totals(self) -> FileTotals:
        rd = self._rd
        if rd is None:
            return FileTotals(merchant_id=self._merchant, day=self._day)
        return FileTotals(
            merchant_id=rd.merchant_id,
            day=self._day,
            lines=rd.count,
            gross=rd.credit,
            refunded=rd.debit,
            fees=rd.fee_debit - rd.fee_credit,
        )

    def lines(self) -> Iterator[SettlementLine]:
        sums = {
            "lines": 0,
            "gross": Decimal("0.00"),
            "refunded": Decimal("0.00"),
            "fees": Decimal("0.00"),
        }
        line_no = 0
        reader = self._reader()
        while True:
            try:
                raw = next(reader)
            except StopIteration:
                break
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise SettlementFileError(
                    f"ZM file cannot be unpacked (truncated?): {exc}", line_no=line_no + 1
                ) from None
            line_no += 1
            raw = raw.rstrip(b"\n").rstrip(b"\r")
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            line = self._parse_record(raw, line_no)
            sums["lines"] += 1
            sums["gross" if line.kind == "payment" else "refunded"] += line.amount
            sums["fees"] += line.fee
            yield line
        self._check(sums)

    def _parse_record(self, raw: bytes, line_no: int) -> SettlementLine:
        try:
            raw.decode("gbk")
        except UnicodeDecodeError:
            raise SettlementFileError(
                "ZM record is not ASCII/GBK text (wrong encoding?)", line_no=line_no
            ) from None
        if len(raw) < ZM_RECORD_LENGTH:
            raise SettlementFileError(
                f"ZM record has {len(raw)} bytes, expected {ZM_RECORD_LENGTH} (truncated?)",
                line_no=line_no,
            )
        values: list[str] = []
        pos = 0
        for width in ZM_WIDTHS:
            chunk = raw[pos : pos + width]
            try:
                values.append(chunk.decode("gbk"))
            except UnicodeDecodeError:
                raise SettlementFileError(
                    "a ZM field splits a GBK character (misaligned record)", line_no=line_no
                ) from None
            separator = raw[pos + width : pos + width + 1]
            if separator not in (b" ", b""):
                raise SettlementFileError(
                    f"ZM field {len(values)} is not followed by a space (misaligned record)",
                    line_no=line_no,
                )
            pos += width + 1
        fields = dict(zip(ZM_NAMES, values, strict=True))
        code = fields["交易代码"].strip()
        kind = TXN_CODES.get(code) or TXN_TYPES.get(fields["交易类型"].strip())
        if kind is None:
            raise SettlementFileError(
                f"unknown 交易代码 {code!r} (交易类型 {fields['交易类型'].strip()!r})",
                line_no=line_no,
            )
        merchant = fields["商户代码"].strip()
        if self._merchant and merchant != self._merchant:
            raise SettlementFileError(
                f"record for merchant {merchant}, file is for {self._merchant}", line_no=line_no
            )
        self._merchant = self._merchant or merchant
        amount_text = fields["交易金额"].strip()
        if not amount_text.isdigit():
            raise SettlementFileError(
                f"交易金额 {amount_text!r} is not an amount in fen", line_no=line_no
            )
        amount = from_minor(amount_text)
        fee = -_signed_amount(
            fields["商户手续费"], field="商户手续费", line_no=line_no
        )  # D = charged
        settle = _signed_amount(fields["结算金额"], field="结算金额", line_no=line_no)
        net = (
            _signed_amount(fields["清算净额"], field="清算净额", line_no=line_no)
            if fields["清算净额"].strip()
            else settle
        )
        plain = (
            not fields["分账入账方式"].strip()
            and _blank_or_zero(fields["优惠金额"])
            and _blank_or_zero(fields["二级商户分账入账金额"])
        )
        signed = amount if kind == "payment" else -amount
        if plain and (settle != signed - fee or net != settle):
            raise SettlementFileError(
                f"结算金额 {settle} ≠ 交易金额 {signed} − 手续费 {fee} (or 清算净额 {net} differs)",
                line_no=line_no,
            )
        refund = kind == "refund"
        return SettlementLine(
            line_no=line_no,
            kind=kind,
            out_trade_no=(
                fields["原始交易订单号"].strip() if refund else fields["商户订单号"].strip()
            ),
            channel_trade_no=(fields["原交易查询流水号"].strip() or fields["查询流水号"].strip())
            if refund
            else fields["查询流水号"].strip(),
            refund_no=fields["商户订单号"].strip() if refund else "",
            amount=amount,
            fee=fee,
            currency="CNY",
            occurred_at=with_year(fields["交易传输时间"], _anchor(self._day))
            if self._day
            else None,
            raw={k: v.strip() for k, v in fields.items()},
        )

    def _check(self, counts: Mapping[str, Any]) -> None:
        rd = self._rd
        if rd is None:
            return
        where = rd.line_no
        problems = []
        if counts["lines"] != rd.count:
            problems.append(f"{counts['lines']} ZM records but RD 总计 says {rd.count}")
        if counts["gross"] != rd.credit:
            problems.append(
                f"payments sum to {counts['gross']} but RD 交易金额(贷) says {rd.credit}"
            )
        if counts["refunded"] != rd.debit:
            problems.append(
                f"refunds sum to {counts['refunded']} but RD 交易金额(借) says {rd.debit}"
            )
        if counts["fees"] != rd.fee_debit - rd.fee_credit:
            problems.append(
                f"fees sum to {counts['fees']} but RD 费用 says {rd.fee_debit - rd.fee_credit}"
            )
        net = counts["gross"] - counts["refunded"] - counts["fees"]
        if net != rd.net_credit - rd.net_debit:
            problems.append(f"net {net} but RD 资金清算差额 says {rd.net_credit - rd.net_debit}")
        if problems:
            raise SettlementFileError(
                f"RD summary 总计 (RD line {where}) does not match the ZM records: "
                + "; ".join(problems)
            )


def _blank_or_zero(value: str) -> bool:
    digits = value.strip().lstrip("DC ").strip()
    return not digits or set(digits) == {"0"}


def _yymmdd(text: str) -> dt.date:
    return dt.datetime.strptime(text, "%y%m%d").date()


def _anchor(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, 12, tzinfo=BEIJING)
