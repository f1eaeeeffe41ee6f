"""PayPal STL settlement report parsing (CHANNELS.md §4.3).

Data files in tests/data/paypal/:

* ``EXCERPT_STL_settlement_report_v009_masked__nifi_blog_post.csv`` — the real RH/FH/SH/CH/SB
  lines from samples/paypal (masking broke its quoting): a shape reference for the header and
  columns only.
* ``DERIVED_STL-20240820.01.009.CSV`` — a complete report hand-built on that shape (BOM, CRLF):
  two T0006 payments, one T1107 refund with a returned fee and one T0400 withdrawal, with the
  SF/SC/RF/RC/FF trailer: gross CR 12550, gross DR 9000, fee CR 128, fee DR 424, 4 rows.
"""

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest

from payments.channels.base import SettlementFileError
from payments.channels.paypal.backend import PayPalBackend
from payments.channels.paypal.settlement import STL_COLUMNS, stl_file_name

DATA = Path(__file__).resolve().parents[2] / "data" / "paypal"
EXCERPT = DATA / "EXCERPT_STL_settlement_report_v009_masked__nifi_blog_post.csv"
DERIVED = DATA / "DERIVED_STL-20240820.01.009.CSV"


def parse(data: bytes, **kwargs):
    report = PayPalBackend.open_settlement(io.BytesIO(data), **kwargs)
    return list(report.lines()), report.totals


def derived_text() -> str:
    return DERIVED.read_bytes().decode("utf-8-sig")


def test_column_header_matches_the_real_v009_report():
    lines = EXCERPT.read_text(encoding="utf-8").splitlines()
    ch = next(line for line in lines if line.startswith('"CH"'))
    assert tuple(next(csv.reader([ch]))[1:]) == STL_COLUMNS
    rh = next(csv.reader([lines[0]]))
    assert rh[0] == "RH" and rh[2] == "A" and rh[4] == "009"


def test_the_masked_excerpt_is_refused_because_it_has_no_trailer():
    with pytest.raises(SettlementFileError) as err:
        parse(EXCERPT.read_bytes())
    assert err.value.line_no is not None


def test_file_name_follows_the_spec():
    assert stl_file_name(dt.date(2024, 8, 20)) == "STL-20240820.01.009.CSV"


def test_derived_report_parses_to_its_own_trailer_totals():
    lines, totals = parse(DERIVED.read_bytes())
    assert [line.kind for line in lines] == ["payment", "payment", "refund"]
    first, second, refund = lines
    assert (
        first.out_trade_no,
        first.channel_trade_no,
        first.amount,
        first.fee,
        first.currency,
    ) == ("INV-0001", "0AX12345B6789012C", Decimal("100.00"), Decimal("3.20"), "USD")
    assert first.occurred_at == dt.datetime(
        2024, 8, 20, 9, 15, 3, tzinfo=dt.timezone(dt.timedelta(hours=-7))
    )
    assert (second.amount, second.fee) == (Decimal("25.50"), Decimal("1.04"))
    assert (refund.out_trade_no, refund.refund_no, refund.channel_trade_no) == (
        "INV-0001",
        "RF-0001",
        "5TY05013RG002845M",
    )
    assert (refund.amount, refund.fee) == (Decimal("40.00"), Decimal("-1.28"))
    assert totals.merchant_id == "PAYPALTEST001"
    assert totals.day == dt.date(2024, 8, 20)
    assert (totals.payments, totals.refunds, totals.lines) == (2, 1, 3)
    assert (totals.gross, totals.refunded, totals.fees) == (
        Decimal("125.50"),
        Decimal("40.00"),
        Decimal("2.96"),
    )


def test_lf_and_no_bom_parse_the_same():
    data = derived_text().replace("\r\n", "\n").encode()
    lines, totals = parse(data)
    assert len(lines) == 3 and totals.gross == Decimal("125.50")


def test_totals_are_available_before_iterating():
    report = PayPalBackend.open_settlement(io.BytesIO(DERIVED.read_bytes()))
    assert report.totals.payments == 2
    assert len(list(report.lines())) == 3


def test_other_merchant_is_refused():
    with pytest.raises(SettlementFileError, match="PAYPALTEST001, not PAYPALOTHER01") as err:
        parse(DERIVED.read_bytes(), merchant_id="PAYPALOTHER01")
    assert err.value.line_no == 1


def test_own_merchant_is_accepted():
    _lines, totals = parse(DERIVED.read_bytes(), merchant_id="PAYPALTEST001")
    assert totals.merchant_id == "PAYPALTEST001"


def test_wrong_encoding_is_refused_with_its_line():
    text = derived_text().replace('"QYR5Z8XDVJNXQ"', '"付款人"', 1)
    with pytest.raises(SettlementFileError, match="not UTF-8") as err:
        parse(text.encode("gbk"))
    assert err.value.line_no == 5


def test_truncated_file_is_refused():
    text = derived_text()
    truncated = text[: text.index('"RC"')]
    with pytest.raises(SettlementFileError, match="truncated"):
        parse(truncated.encode())


def test_section_totals_that_do_not_add_up_are_refused():
    text = derived_text().replace('"SF","USD",12550', '"SF","USD",12551')
    with pytest.raises(
        SettlementFileError,
        match="SF USD total gross credit is 12551 but the SB rows add up to 12550",
    ) as err:
        parse(text.encode())
    assert err.value.line_no == 9


def test_fee_totals_are_checked():
    text = derived_text().replace('"RF","USD",12550,9000,128,424', '"RF","USD",12550,9000,128,400')
    with pytest.raises(SettlementFileError, match="RF USD total fee debit") as err:
        parse(text.encode())
    assert err.value.line_no == 11


def test_record_counts_are_checked():
    text = derived_text().replace('"SC",4', '"SC",5')
    with pytest.raises(SettlementFileError, match="SC says 5 SB rows but the file holds 4"):
        parse(text.encode())
    text = derived_text().replace('"FF",4', '"FF",3')
    with pytest.raises(SettlementFileError, match="FF says 3"):
        parse(text.encode())


def test_a_tampered_row_breaks_the_totals():
    text = derived_text().replace('"CR",2550,', '"CR",2560,')
    with pytest.raises(SettlementFileError, match="SF USD total gross credit"):
        parse(text.encode())


def test_missing_column_is_refused():
    text = derived_text().replace('"Custom Field",', '"Custom",')
    with pytest.raises(SettlementFileError, match="CH lacks column"):
        parse(text.encode())


def test_signed_amount_is_refused():
    text = derived_text().replace('"CR",10000,', '"CR",-10000,')
    with pytest.raises(SettlementFileError, match="not an unsigned whole number") as err:
        parse(text.encode())
    assert err.value.line_no == 5


def test_not_an_stl_file_is_refused():
    with pytest.raises(SettlementFileError, match="unknown STL record type"):
        parse(b"Date,Time,Name\n2024-08-20,10:00,x\n")
    with pytest.raises(SettlementFileError, match="no RH"):
        parse(b"")


def test_missing_currency_footer_is_refused():
    text = derived_text().replace('"SF","USD",12550,9000,128,424\r\n', "")
    with pytest.raises(SettlementFileError, match="no SF totals for currency USD"):
        parse(text.encode())
