"""WeChat Pay trade bill (CHANNELS.md §2.6): the real v3 bill parses to its own summary,
every layout (ALL/SUCCESS/REFUND/legacy) is read by its header, the sandbox's gzipped BOM+CRLF
bill round-trips with its SHA-1, and broken bills are refused by line."""

import datetime as dt
import gzip
import hashlib
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from payments.accounts import backend_for
from payments.channels.base import (
    ChannelDeclined,
    ChannelUnavailable,
    ClientInfo,
    CreateRequest,
    RefundRequest,
    SettlementFileError,
)
from payments.channels.wechatpay import WechatPayBackend
from payments.sandbox.models import SandboxTrade
from payments.sandbox.wechatpay import bill as sandbox_bill
from tests.payments.factories import sandbox_account

DATA = Path(__file__).resolve().parents[2] / "data" / "wechatpay"
SAMPLE = DATA / "v3_tradebill_ALL_2021-01-28__gunsluo_wechatpay-go_client_test.csv"
BEIJING = dt.timezone(dt.timedelta(hours=8))


def parse(data: bytes, **kwargs):
    bill = WechatPayBackend.open_settlement(io.BytesIO(data), **kwargs)
    return list(bill.lines()), bill.totals


def with_summary(path: Path, values: str) -> bytes:
    """A WxJava layout excerpt with its summary values replaced by ones that match its rows."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return ("\n".join([*lines[:-1], values]) + "\n").encode("utf-8")


# ---------------------------------------------------------------------------------------------
# The real v3 bill


def test_the_real_bill_parses_to_its_own_summary():
    lines, totals = parse(SAMPLE.read_bytes())
    assert [line.out_trade_no for line in lines] == [
        "S20210128170702357723",
        "S20210128153505214586",
        "S20210128165824499930",
    ]
    assert all(
        line.kind == "payment" and line.amount == Decimal("0.01") and line.fee == 0
        for line in lines
    )
    assert (
        totals.lines == 3
        and totals.gross == Decimal("0.03")
        and totals.refunded == Decimal("0.00")
        and totals.fees == 0
    )
    assert totals.merchant_id == "1601959334"
    first = lines[0]
    assert (
        first.line_no == 2
        and first.channel_trade_no == "4200000925202101284997714292"
        and first.currency == "CNY"
    )
    assert first.occurred_at == dt.datetime(2021, 1, 28, 17, 7, 11, tzinfo=BEIJING)
    assert first.raw["交易类型"] == "NATIVE"


def test_the_real_bill_pairs_with_the_real_notification():
    lines, _ = parse(SAMPLE.read_bytes())
    plaintext = json.loads(
        (DATA / "DERIVED_v3_notification_TRANSACTION.SUCCESS_plaintext.json").read_text()
    )
    line = next(line for line in lines if line.out_trade_no == plaintext["out_trade_no"])
    assert (
        line.channel_trade_no == plaintext["transaction_id"]
        and line.amount == Decimal(plaintext["amount"]["total"]) / 100
    )


@pytest.mark.parametrize("variant", ["bom_crlf", "gzip", "gzip_bom_crlf", "count_as_float"])
def test_bom_crlf_gzip_and_float_counts_are_accepted(variant):
    data = SAMPLE.read_bytes()
    if "bom_crlf" in variant:
        data = b"\xef\xbb\xbf" + data.replace(b"\n", b"\r\n")
    if "gzip" in variant:
        data = gzip.compress(data)
    if variant == "count_as_float":
        data = data.replace(b"`3,`0.03", b"`3.0,`0.03")
    lines, totals = parse(data)
    assert len(lines) == 3 and totals.gross == Decimal("0.03")


# ---------------------------------------------------------------------------------------------
# Layouts, by their header


def test_the_all_layout_excerpt_is_read_and_its_mismatched_summary_refused():
    path = DATA / "WxJava_WxPayBillResultTest_PAY_BILL_RESULT_ALL_CONTENT.csv"
    with pytest.raises(
        SettlementFileError, match="summary says 48 lines, the bill has 1"
    ) as caught:
        parse(path.read_bytes())
    assert caught.value.line_no == 4
    lines, totals = parse(with_summary(path, "`1,`6.00,`0.00,`0.00,`0.04000,`6.00,`0.00"))
    assert (
        lines[0].amount == Decimal("6.00")
        and lines[0].fee == Decimal("0.04")
        and totals.fees == Decimal("0.04")
    )


def test_the_success_layout_has_no_refund_columns():
    path = DATA / "WxJava_WxPayBillResultTest_PAY_BILL_RESULT_SUCCESS_CONTENT.csv"
    bill = WechatPayBackend.open_settlement(
        io.BytesIO(with_summary(path, "`1,`0.01,`0.00,`0.00,`0.00000,`0.01,`0.00"))
    )
    lines = list(bill.lines())
    assert (
        bill.layout == "SUCCESS"
        and lines[0].kind == "payment"
        and bill.totals.gross == Decimal("0.01")
    )


def test_the_refund_layout_reads_refund_rows_with_their_success_time():
    header = (
        (DATA / "WxJava_WxPayBillResultTest_PAY_BILL_RESULT_REFUND_CONTENT.csv")
        .read_text(encoding="utf-8")
        .splitlines()[0]
    )
    row = (
        (DATA / "EXCERPT_v3_tradebill_REFUND_single_row__gunsluo_wechatpay-go_tradebill_test.txt")
        .read_text(encoding="utf-8")
        .strip()
    )
    summary = (
        "总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\n"
        "`1,`0.00,`0.01,`0.00,`0.00000,`0.00,`0.01\n"
    )
    bill = WechatPayBackend.open_settlement(io.BytesIO(f"{header}\n{row}\n{summary}".encode()))
    (line,) = list(bill.lines())
    assert bill.layout == "REFUND"
    assert (
        line.kind == "refund"
        and line.amount == Decimal("0.01")
        and line.refund_no == "S20210201143320649393"
    )
    assert line.occurred_at == dt.datetime(2021, 2, 1, 14, 33, 24, tzinfo=BEIJING)
    assert bill.totals.refunded == Decimal("0.01") and bill.totals.merchant_id == "1601959334"


def test_the_refund_layout_excerpt_with_its_mismatched_summary_is_refused():
    with pytest.raises(SettlementFileError, match="summary says 4 lines"):
        parse((DATA / "WxJava_WxPayBillResultTest_PAY_BILL_RESULT_REFUND_CONTENT.csv").read_bytes())


def test_the_legacy_2014_layout_with_full_width_colons_parses():
    bill = WechatPayBackend.open_settlement(
        io.BytesIO(
            (DATA / "WxJava_WxPayBillResultTest_PAY_BILL_RESULT_ALL_CONTENT_1.csv").read_bytes()
        )
    )
    lines = list(bill.lines())
    assert bill.layout == "LEGACY" and len(lines) == 2
    assert lines[0].occurred_at == dt.datetime(2014, 11, 10, 16, 33, 45, tzinfo=BEIJING)
    assert bill.totals.gross == Decimal("0.02") and bill.totals.merchant_id == "10000100"


def test_a_fund_flow_bill_is_not_a_trade_bill():
    with pytest.raises(SettlementFileError, match="not a WeChat Pay trade bill") as caught:
        parse(
            (
                DATA
                / "v3_fundflowbill_Basic_2021-02-01__gunsluo_wechatpay-go_fundflowbill_test.csv"
            ).read_bytes()
        )
    assert caught.value.line_no == 1


# ---------------------------------------------------------------------------------------------
# Refusals


def test_another_merchants_bill_is_refused_at_its_first_row():
    with pytest.raises(SettlementFileError, match="merchant 1601959334, not 1900000109") as caught:
        parse(SAMPLE.read_bytes(), merchant_id="1900000109")
    assert caught.value.line_no == 2


def test_rows_of_two_merchants_in_one_bill_are_refused():
    data = SAMPLE.read_bytes().replace(
        b"`1601959334,`0,`,`4200000910", b"`1601959335,`0,`,`4200000910"
    )
    with pytest.raises(SettlementFileError, match="differs") as caught:
        parse(data)
    assert caught.value.line_no == 3


def test_wrong_encoding_is_refused_at_line_one():
    with pytest.raises(SettlementFileError, match="UTF-8") as caught:
        parse(SAMPLE.read_text(encoding="utf-8").encode("gbk"))
    assert caught.value.line_no == 1


def test_totals_that_do_not_add_up_are_refused_at_the_summary():
    data = SAMPLE.read_bytes().replace(
        b"`0.01,`0.00,`0,`0,`0.00,`0.00,`,`,`for testing,`cipher code,`0.00000,`1.00%,`0.01",
        b"`0.02,`0.00,`0,`0,`0.00,`0.00,`,`,`for testing,`cipher code,`0.00000,`1.00%,`0.02",
        1,
    )
    with pytest.raises(
        SettlementFileError, match="应结订单总金额 is 0.03, the rows add up to 0.04"
    ) as caught:
        parse(data)
    assert caught.value.line_no == 6


def test_a_bill_without_its_summary_is_refused_as_truncated():
    lines = SAMPLE.read_bytes().split(b"\n")
    with pytest.raises(SettlementFileError, match="truncated") as caught:
        parse(b"\n".join(lines[:4]) + b"\n")
    assert caught.value.line_no == 4


def test_a_line_cut_in_the_middle_is_refused_with_its_number():
    data = SAMPLE.read_bytes()
    with pytest.raises(SettlementFileError, match="fields") as caught:
        parse(data[: data.index(b"S20210128165824499930")])
    assert caught.value.line_no == 4


def test_a_truncated_gzip_is_refused():
    data = gzip.compress(SAMPLE.read_bytes())
    with pytest.raises(SettlementFileError, match="gzip"):
        parse(data[: len(data) - 12])


def test_an_unknown_trade_state_is_refused():
    with pytest.raises(SettlementFileError, match="交易状态") as caught:
        parse(SAMPLE.read_bytes().replace(b"`NATIVE,`SUCCESS", b"`NATIVE,`NOTPAY", 1))
    assert caught.value.line_no == 2


@pytest.mark.parametrize("data", [b"", b"hello\n", b"`2021-01-01,`x\n"])
def test_other_files_are_refused(data):
    with pytest.raises(SettlementFileError):
        parse(data)


# ---------------------------------------------------------------------------------------------
# The sandbox bill, end to end


def _request(out_trade_no, amount):
    return CreateRequest(
        out_trade_no=out_trade_no,
        amount=Decimal(amount),
        currency="CNY",
        subject="礼品卡, `面值`100",
        method="wechatpay",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        client=ClientInfo(device="desktop"),
    )


@pytest.fixture
def paid_day(db, client):
    backend = backend_for(sandbox_account("wechatpay"))
    trades = []
    for number, amount in (("CX-A0001", "100.00"), ("CX-B0001", "58.50"), ("CX-C0001", "0.01")):
        backend.create(_request(number, amount))
        trade = SandboxTrade.objects.get(out_trade_no=number)
        client.post(f"/sandbox/wechatpay/cashier/{trade.trade_no}/", {"decision": "approve"})
        trades.append(trade)
    backend.create(_request("CX-UNPAID", "9.99"))
    for trade, refund_no, amount in ((trades[0], "RF-A1", "30.00"), (trades[1], "RF-B1", "58.50")):
        backend.refund(
            RefundRequest(
                refund_no=refund_no,
                out_trade_no=trade.out_trade_no,
                channel_trade_no=trade.trade_no,
                amount=Decimal(amount),
                total_amount=trade.amount,
                currency="CNY",
            )
        )
    return backend


@pytest.mark.django_db
def test_download_is_gzipped_bom_crlf_text_in_the_all_layout(paid_day):
    data = paid_day.download_settlement(timezone.localdate())
    assert data[:2] == b"\x1f\x8b"
    text = gzip.decompress(data)
    assert text.startswith(b"\xef\xbb\xbf" + sandbox_bill.COLUMNS["ALL"].encode() + b"\r\n")
    assert text.endswith(b"\r\n") and b"\n" not in text.replace(b"\r\n", b"")
    assert "礼品卡， '面值'100".encode() in text  # unquoted cells keep commas and backticks out
    assert text.decode("utf-8-sig").splitlines()[-2] == sandbox_bill.SUMMARY_COLUMNS


@pytest.mark.django_db
def test_downloaded_bill_parses_and_its_totals_agree(paid_day):
    bill = paid_day.open_settlement(
        io.BytesIO(paid_day.download_settlement(timezone.localdate())), merchant_id="1900000109"
    )
    lines = list(bill.lines())
    totals = bill.totals
    assert totals.merchant_id == "1900000109" and totals.lines == 5
    assert totals.gross == Decimal("158.51") and totals.refunded == Decimal("88.50")
    assert [line.fee for line in lines if line.kind == "payment"] == [
        Decimal("0.6"),
        Decimal("0.35"),
        Decimal("0"),
    ]
    assert sorted(line.fee for line in lines if line.kind == "refund") == [
        Decimal("-0.35"),
        Decimal("-0.18"),
    ]
    assert totals.fees == sum(line.fee for line in lines) == Decimal("0.42")
    refund = next(line for line in lines if line.refund_no == "RF-A1")
    assert (
        refund.kind == "refund"
        and refund.out_trade_no == "CX-A0001"
        and refund.amount == Decimal("30.00")
    )


@pytest.mark.django_db
def test_the_bill_hash_is_sha1_of_the_uncompressed_text(client, paid_day):
    answer = paid_day.call(
        "GET",
        f"/v3/bill/tradebill?bill_date={timezone.localdate().isoformat()}&bill_type=ALL&tar_type=GZIP",
    )
    _, content = paid_day.send("GET", answer["download_url"], verify=False)
    assert (
        answer["hash_type"] == "SHA1"
        and hashlib.sha1(gzip.decompress(content)).hexdigest() == answer["hash_value"]
    )


@pytest.mark.django_db
def test_a_bill_that_does_not_match_its_hash_is_refused(monkeypatch, paid_day):
    real = sandbox_bill.bill_text
    calls = []

    def drifting(*args):
        calls.append(1)
        text = real(*args)
        return text if len(calls) == 1 else text.replace("0.60000", "0.61000")

    monkeypatch.setattr(sandbox_bill, "bill_text", drifting)
    with pytest.raises(ChannelUnavailable) as caught:
        paid_day.download_settlement(timezone.localdate())
    assert caught.value.code == "BILL_HASH_MISMATCH"


@pytest.mark.django_db
def test_a_day_without_trades_has_no_statement(db):
    backend = backend_for(sandbox_account("wechatpay"))
    with pytest.raises(ChannelDeclined) as caught:
        backend.download_settlement(timezone.localdate() - dt.timedelta(days=3))
    assert caught.value.code == "NO_STATEMENT_EXIST"


@pytest.mark.django_db
@pytest.mark.parametrize("bill_type", ["SUCCESS", "REFUND"])
def test_the_sandbox_serves_success_and_refund_bills_too(paid_day, bill_type):
    answer = paid_day.call(
        "GET",
        f"/v3/bill/tradebill?bill_date={timezone.localdate().isoformat()}&bill_type={bill_type}",
    )
    _, content = paid_day.send("GET", answer["download_url"], verify=False)
    bill = WechatPayBackend.open_settlement(io.BytesIO(content))
    lines = list(bill.lines())
    assert bill.layout == bill_type
    assert {line.kind for line in lines} == ({"payment"} if bill_type == "SUCCESS" else {"refund"})
