"""UnionPay reconciliation file (CHANNELS.md §3.4): the ZIP as delivered (ZM detail + RD
summary) or the bare ZM file; UnionPay's own published sample must parse to its own totals."""

import datetime as dt
import io
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

from payments.channels.base import SettlementFileError
from payments.channels.unionpay.backend import UnionPayBackend
from payments.channels.unionpay.settlement import ZM_RECORD_LENGTH, parse_rd

DATA = Path(__file__).resolve().parents[2] / "data" / "unionpay"
SAMPLE_ZIP = DATA / "802310048993424_20150905.zip"
SAMPLE_ZM = DATA / "INN15090588ZM_802310048993424"
SAMPLE_RD = DATA / "RD201015090501_802310048993424"
ZM_NAME, RD_NAME = SAMPLE_ZM.name, SAMPLE_RD.name


def parse(data: bytes, name: str = ""):
    stream = io.BytesIO(data)
    if name:
        stream.name = name
    parsed = UnionPayBackend.open_settlement(stream)
    return parsed, list(parsed.lines())


def make_zip(zm: bytes, rd: bytes, *, zm_name: str = ZM_NAME, rd_name: str = RD_NAME) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zm_name, zm)
        archive.writestr(rd_name, rd)
    return buffer.getvalue()


def test_official_sample_zip_parses_to_its_own_totals():
    parsed, lines = parse(SAMPLE_ZIP.read_bytes())
    totals = parsed.totals
    assert (totals.merchant_id, totals.day) == ("802310048993424", dt.date(2015, 9, 5))
    assert (totals.lines, totals.gross, totals.refunded, totals.fees) == (
        8,
        Decimal("13227.00"),
        Decimal("0.00"),
        Decimal("79.36"),
    )
    assert len(lines) == 8
    assert sum(line.amount for line in lines) == totals.gross
    assert sum(line.fee for line in lines) == totals.fees


def test_s56_records_in_the_sample_are_payments():
    # S56 is undocumented; the sample's records are 交易类型 01 (消费), credited to the merchant
    # and listed under 自助消费 in the RD summary, so they are read as payments.
    _, lines = parse(SAMPLE_ZIP.read_bytes())
    assert {line.raw["交易代码"] for line in lines} == {"S56"}
    assert {line.kind for line in lines} == {"payment"}


def test_first_sample_record_is_read_field_by_field():
    _, lines = parse(SAMPLE_ZIP.read_bytes())
    first = lines[0]
    assert first.line_no == 1
    assert first.out_trade_no == "10078087"
    assert first.channel_trade_no == "201509061122031906248"
    assert first.amount == Decimal("4768.00")
    assert first.fee == Decimal("28.61")  # D000000002861: charged to the merchant
    assert first.occurred_at.isoformat() == "2015-09-06T11:22:03+08:00"
    assert first.raw["商户代码"] == "802310048993424"
    assert first.raw["终端号"] == "01080209"


def test_bare_zm_file_parses_and_takes_day_and_merchant_from_its_name():
    parsed, lines = parse(SAMPLE_ZM.read_bytes(), name=str(SAMPLE_ZM))
    assert len(lines) == 8
    assert (parsed.totals.merchant_id, parsed.totals.day) == (
        "802310048993424",
        dt.date(2015, 9, 5),
    )
    assert sum(line.amount for line in lines) == Decimal("13227.00")


def test_bare_zm_without_a_name_still_names_its_merchant():
    parsed, lines = parse(SAMPLE_ZM.read_bytes())
    assert len(lines) == 8
    assert parsed.totals.merchant_id == "802310048993424"
    assert parsed.totals.day is None


def test_lf_line_ends_and_a_bom_are_tolerated():
    zm = b"\xef\xbb\xbf" + SAMPLE_ZM.read_bytes().replace(b"\r\n", b"\n")
    _, lines = parse(make_zip(zm, SAMPLE_RD.read_bytes()))
    assert len(lines) == 8


def test_rd_summary_of_the_sample():
    rd = parse_rd(SAMPLE_RD.read_bytes())
    assert (rd.merchant_id, rd.day, rd.count) == ("802310048993424", dt.date(2015, 9, 5), 8)
    assert (rd.credit, rd.debit, rd.fee_debit, rd.fee_credit, rd.net_credit) == (
        Decimal("13227.00"),
        Decimal("0.00"),
        Decimal("79.36"),
        Decimal("0.00"),
        Decimal("13147.64"),
    )


# ---------------------------------------------------------------------------------------------
# Files that must be refused


def _records() -> list[bytes]:
    return SAMPLE_ZM.read_bytes().split(b"\r\n")[:-1]


def _zm(records: list[bytes]) -> bytes:
    return b"".join(r + b"\r\n" for r in records)


def _expect(data: bytes, match: str, line_no: int | None = None, name: str = ""):
    with pytest.raises(SettlementFileError, match=match) as info:
        parse(data, name)
    if line_no is not None:
        assert info.value.line_no == line_no
    return info.value


def test_rd_totals_that_do_not_add_up_are_refused():
    rd = SAMPLE_RD.read_bytes().replace(b"13227.00", b"13228.00")
    error = _expect(make_zip(SAMPLE_ZM.read_bytes(), rd), "does not match the ZM records")
    assert "交易金额(贷)" in str(error)


def test_a_missing_record_is_caught_by_the_rd_count():
    records = _records()
    _expect(make_zip(_zm(records[:-1]), SAMPLE_RD.read_bytes()), "7 ZM records but RD 总计 says 8")


def test_truncated_record_names_its_line():
    records = _records()
    records[5] = records[5][:400]
    _expect(_zm(records), "truncated", line_no=6)


def test_truncated_zip_is_refused():
    data = SAMPLE_ZIP.read_bytes()
    _expect(data[: len(data) // 2], "ZIP")


def test_zip_without_rd_summary_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(ZM_NAME, SAMPLE_ZM.read_bytes())
    _expect(buffer.getvalue(), "RD summaries")


def test_rd_summary_without_total_row_is_refused():
    rd = SAMPLE_RD.read_bytes().decode("gbk")
    rd = rd[: rd.index("总计")]
    _expect(make_zip(SAMPLE_ZM.read_bytes(), rd.encode("gbk")), "no 总计 row")


def test_wrong_encoding_names_its_line():
    records = _records()
    records[2] = records[2][:100] + "订单".encode()[:3] + b"\xff" + records[2][104:]
    _expect(_zm(records), "encoding", line_no=3)


def test_rd_summary_in_utf8_instead_of_gbk_is_refused():
    rd = SAMPLE_RD.read_bytes().decode("gbk").encode("utf-8")
    with pytest.raises(SettlementFileError, match="GBK"):
        parse(make_zip(SAMPLE_ZM.read_bytes(), rd))


def test_record_of_another_merchant_is_refused():
    records = _records()
    records[4] = records[4].replace(b"802310048993424", b"802310048993999")
    _expect(_zm(records), "merchant 802310048993999", line_no=5)


def test_zip_whose_rd_names_another_merchant_is_refused():
    rd = SAMPLE_RD.read_bytes().replace(b"802310048993424", b"777290058110048")
    _expect(make_zip(SAMPLE_ZM.read_bytes(), rd), "merchant")


def test_record_whose_settlement_does_not_add_up_is_refused():
    records = _records()
    records[1] = records[1].replace(b"C000000083297 0001", b"C000000083298 0001")
    _expect(_zm(records), "结算金额", line_no=2)


def test_unknown_transaction_code_is_refused_not_skipped():
    records = _records()
    records[0] = b"S99" + records[0][3:]
    records[0] = records[0].replace(b" 01    000201 ", b" 99    000201 ")
    _expect(_zm(records), "unknown 交易代码 'S99'", line_no=1)


def test_misaligned_record_is_refused():
    records = _records()
    records[3] = b" " + records[3]
    _expect(_zm(records), "misaligned|not an amount|is not", line_no=4)


def test_sample_records_are_exactly_607_bytes():
    assert {len(r) for r in _records()} == {ZM_RECORD_LENGTH}


def test_zip_named_as_delivered_is_accepted():
    _, lines = parse(SAMPLE_ZIP.read_bytes(), name="/downloads/802310048993424_20150905.zip")
    assert len(lines) == 8


def test_zip_whose_name_names_another_merchant_or_day_is_refused():
    _expect(
        SAMPLE_ZIP.read_bytes(), "holds the file of merchant", name="802310048993999_20150905.zip"
    )
    _expect(
        SAMPLE_ZIP.read_bytes(), "holds the file of merchant", name="802310048993424_20150906.zip"
    )
