"""Stripe-style itemized balance report parsing (CHANNELS.md §4.6).

No real Stripe report CSV is public (samples/README.md), so
``tests/data/card/DERIVED_balance_change_from_activity.itemized.3_2026-11-23.csv`` is hand-built
from the column descriptions with our explicit column list: two charges (100.00 / fee 0.60,
25.50 / fee 0.15), one refund of 40.00 with no fee returned, one Radar ``fee`` row of −2.00; a
description with a comma is quoted.
"""

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest

from payments.channels.base import SettlementFileError
from payments.channels.card import CardBackend
from payments.channels.card.settlement import REPORT_COLUMNS
from payments.channels.card.wire import from_units, to_units

REPORT = (
    Path(__file__).resolve().parents[2]
    / "data"
    / "card"
    / "DERIVED_balance_change_from_activity.itemized.3_2026-11-23.csv"
)
ACCOUNT = "acct_1CardexTEST0001"


def parse(data: bytes, **kwargs):
    report = CardBackend.open_settlement(io.BytesIO(data), **kwargs)
    return list(report.lines()), report.totals


def text() -> str:
    return REPORT.read_text(encoding="utf-8")


def test_header_is_our_explicit_column_list():
    assert tuple(text().splitlines()[0].split(",")) == REPORT_COLUMNS


def test_report_parses_to_lines_and_totals():
    lines, totals = parse(REPORT.read_bytes())
    assert [line.kind for line in lines] == ["payment", "payment", "refund"]
    first, _second, refund = lines
    assert (
        first.out_trade_no,
        first.channel_trade_no,
        first.amount,
        first.fee,
        first.currency,
    ) == (
        "CX20261123000001",
        "pi_3QAbCdEfGhIjKlMnOpQrStU1",
        Decimal("100.00"),
        Decimal("0.60"),
        "USD",
    )
    assert first.occurred_at == dt.datetime(2026, 11, 23, 2, 15, tzinfo=dt.UTC)
    assert first.raw["description"] == "Gift card, 100 USD"
    assert (refund.amount, refund.fee, refund.refund_no, refund.out_trade_no) == (
        Decimal("40.00"),
        Decimal("0.00"),
        "RF20261123000001",
        "CX20261123000001",
    )
    assert (totals.merchant_id, totals.day) == (ACCOUNT, dt.date(2026, 11, 23))
    assert (totals.payments, totals.refunds, totals.lines) == (2, 1, 3)
    assert (totals.gross, totals.refunded, totals.fees) == (
        Decimal("125.50"),
        Decimal("40.00"),
        Decimal("0.75"),
    )


def test_bom_and_crlf_are_accepted():
    data = b"\xef\xbb\xbf" + text().replace("\n", "\r\n").encode()
    lines, totals = parse(data)
    assert len(lines) == 3 and totals.gross == Decimal("125.50")


def test_gross_minus_fee_must_be_net():
    bad = text().replace("25.50,0.15,25.35", "25.50,0.15,25.30")
    with pytest.raises(
        SettlementFileError, match=r"gross 25.50 − fee 0.15 is not net 25.30"
    ) as err:
        parse(bad.encode())
    assert err.value.line_no == 3


def test_another_account_is_refused():
    with pytest.raises(
        SettlementFileError, match="row of account acct_1CardexTEST0001, not acct_other"
    ) as err:
        parse(REPORT.read_bytes(), merchant_id="acct_other")
    assert err.value.line_no == 2


def test_rows_of_two_accounts_are_refused():
    bad = text().replace(
        "CX20261123000002,acct_1CardexTEST0001", "CX20261123000002,acct_someone_else"
    )
    with pytest.raises(SettlementFileError, match="rows of two accounts"):
        parse(bad.encode())


def test_wrong_encoding_is_refused():
    bad = text().replace("Steam Wallet", "蒸汽钱包").encode("gbk")
    with pytest.raises(SettlementFileError, match="not UTF-8") as err:
        parse(bad)
    assert err.value.line_no == 3


def test_cut_off_report_is_refused():
    data = text().encode()
    with pytest.raises(SettlementFileError, match="truncated") as err:
        parse(data[:-30])
    assert err.value.line_no == 5
    with pytest.raises(
        SettlementFileError, match="truncated report: the last line has no line end"
    ):
        parse(data[:-1])
    with pytest.raises(SettlementFileError, match="fields"):
        parse(data[: data.index(b"Steam Wallet")] + b"\n")


def test_more_decimals_than_the_currency_has_are_refused():
    bad = text().replace("100.00,0.60,99.40", "100.001,0.601,99.400")
    with pytest.raises(SettlementFileError, match="more than 2 decimals"):
        parse(bad.encode())


def test_zero_decimal_currency_in_major_units():
    jpy = (
        text()
        .replace("usd,100.00,0.60,99.40", "jpy,1500,9,1491")
        .replace("usd,25.50,0.15,25.35", "jpy,500,3,497")
    )
    jpy = jpy.replace("usd,-40.00,0.00,-40.00", "jpy,-400,0,-400").replace(
        "usd,-2.00,0.00,-2.00", "jpy,-2,0,-2"
    )
    _lines, totals = parse(jpy.encode())
    assert (totals.gross, totals.refunded, totals.fees) == (
        Decimal("2000.00"),
        Decimal("400.00"),
        Decimal("12.00"),
    )


def test_rows_from_two_days_are_refused():
    bad = text().replace("2026-11-23 20:00:00", "2026-11-24 00:30:00")
    with pytest.raises(SettlementFileError, match="more than one day"):
        parse(bad.encode())


def test_wrong_sign_for_the_category_is_refused():
    bad = text().replace("usd,-40.00,0.00,-40.00,refund", "usd,40.00,0.00,40.00,refund")
    with pytest.raises(SettlementFileError, match="refund row with gross 40.00"):
        parse(bad.encode())


def test_not_a_report_is_refused():
    with pytest.raises(SettlementFileError, match="header lacks"):
        parse(b"id,amount\n1,2\n")
    with pytest.raises(SettlementFileError, match="no header"):
        parse(b"")


def test_header_only_report_is_an_empty_day():
    _lines, totals = parse((",".join(REPORT_COLUMNS) + "\n").encode())
    assert (totals.lines, totals.gross, totals.day) == (0, Decimal("0.00"), None)


# ---------------------------------------------------------------------------------------------
# Exact minor units for every currency exponent


@pytest.mark.parametrize(
    ("currency", "units", "major"),
    [
        ("JPY", 1500, "1500"),  # exponent 0
        ("USD", 1999, "19.99"),  # exponent 2
        ("KWD", 1234, "1.234"),  # exponent 3
        ("BHD", 5, "0.005"),
        ("TND", 100001, "100.001"),
    ],
)
def test_smallest_units_convert_to_major_units_exactly(currency, units, major):
    assert from_units(units, currency) == Decimal(major)
    assert to_units(from_units(units, currency), currency) == units


def test_a_three_decimal_report_keeps_its_thousandths():
    row = (
        "txn_1,2026-11-23 02:15:00,2026-11-23 10:15:00,2026-11-25 02:15:00,kwd,12.345,0.074,"
        "12.271,charge,ch_1,Gift card,pi_1,ch_1,card,visa,CX1,acct_1CardexTEST0001,"
    )
    lines, totals = parse((",".join(REPORT_COLUMNS) + "\n" + row + "\n").encode())
    assert (lines[0].amount, lines[0].fee, lines[0].currency) == (
        Decimal("12.345"),
        Decimal("0.074"),
        "KWD",
    )
    assert (totals.gross, totals.fees) == (Decimal("12.345"), Decimal("0.074"))
