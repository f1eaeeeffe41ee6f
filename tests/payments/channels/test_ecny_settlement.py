"""The e-CNY acquirer reconciliation file (docs/channels/ecny.md): pipe-separated UTF-8 with an
H header, D detail records and a T trailer whose totals must equal the sums of the lines."""

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest

from payments.channels.base import SettlementFileError
from payments.channels.ecny.backend import ECNYBackend

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "ecny" / "ECNY_ECNYTEST001_20261124.txt"


def parse(data: bytes):
    parsed = ECNYBackend.open_settlement(io.BytesIO(data))
    return parsed, list(parsed.lines())


def sample() -> bytes:
    return SAMPLE.read_bytes()


def test_sample_file_parses_to_its_own_totals():
    parsed, lines = parse(sample())
    totals = parsed.totals
    assert (totals.merchant_id, totals.day) == ("ECNYTEST001", dt.date(2026, 11, 24))
    assert (totals.lines, totals.payments, totals.refunds) == (4, 3, 1)
    assert (totals.gross, totals.refunded, totals.fees) == (
        Decimal("352.50"),
        Decimal("40.00"),
        Decimal("1.88"),
    )
    assert len(lines) == 4
    assert sum(line.amount for line in lines if line.kind == "payment") == totals.gross
    assert sum(line.fee for line in lines) == totals.fees


def test_lines_are_normalised():
    _, lines = parse(sample())
    payment, refund = lines[0], lines[3]
    assert (payment.kind, payment.out_trade_no, payment.channel_trade_no) == (
        "payment",
        "20261124A1B2C3D4E5F60001",
        "202611240000000000000001",
    )
    assert (payment.amount, payment.fee, payment.line_no) == (Decimal("100.00"), Decimal("0.60"), 2)
    assert payment.occurred_at.isoformat() == "2026-11-24T10:15:00+08:00"
    assert (refund.kind, refund.out_trade_no, refund.refund_no) == (
        "refund",
        "20261124A1B2C3D4E5F60001",
        "RF20261124AABBCCDDEEFF01",
    )
    assert (refund.amount, refund.fee) == (Decimal("40.00"), Decimal("-0.24"))


def test_bom_and_lf_line_ends_are_tolerated():
    _, lines = parse(b"\xef\xbb\xbf" + sample().replace(b"\r\n", b"\n"))
    assert len(lines) == 4


def _expect(data: bytes, match: str, line_no: int | None = None):
    with pytest.raises(SettlementFileError, match=match) as info:
        parse(data)
    if line_no is not None:
        assert info.value.line_no == line_no


def test_missing_trailer_is_a_truncated_file():
    lines = sample().split(b"\r\n")
    _expect(b"\r\n".join(lines[:-2]) + b"\r\n", "missing trailer")


def test_truncated_record_names_its_line():
    lines = sample().split(b"\r\n")
    lines[3] = lines[3][:40]
    _expect(b"\r\n".join(lines), "fields", line_no=4)


def test_trailer_that_does_not_add_up_is_refused():
    _expect(sample().replace(b"|352.50|", b"|352.51|"), "payment amount", line_no=6)


def test_wrong_fee_total_is_refused():
    _expect(sample().replace(b"|1.88|", b"|1.89|"), "fees", line_no=6)


def test_wrong_encoding_names_its_line():
    data = sample().replace(b"|CNY|SUCCESS\r\nD|PAY", "|人民币|SUCCESS\r\nD|PAY".encode("gbk"), 1)
    _expect(data, "UTF-8", line_no=2)


def test_record_of_another_merchant_is_refused():
    lines = sample().split(b"\r\n")
    lines[2] = lines[2].replace(b"|ECNYTEST001|", b"|ECNYOTHER99|")
    _expect(b"\r\n".join(lines), "merchant ECNYOTHER99", line_no=3)


def test_file_of_another_merchant_says_so_in_its_totals():
    parsed, _ = parse(sample().replace(b"ECNYTEST001", b"ECNYOTHER99"))
    assert parsed.totals.merchant_id == "ECNYOTHER99"


def test_not_a_reconciliation_file():
    _expect(b"hello|world\r\n", "first record", line_no=1)
    _expect(b"", "empty")


def test_records_after_the_trailer_are_refused():
    _expect(sample() + sample().split(b"\r\n")[1] + b"\r\n", "after the trailer", line_no=7)


def test_unknown_detail_type_and_bad_amounts_are_refused():
    _expect(sample().replace(b"D|PAY|", b"D|SETTLE|", 1), "unknown txnType", line_no=2)
    _expect(sample().replace(b"|100.00|0.60|", b"|100|0.60|", 1), "two decimals", line_no=2)
