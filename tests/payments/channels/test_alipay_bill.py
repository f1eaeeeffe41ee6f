"""Alipay trade bill (CHANNELS.md §1.7): the real sample parses to its own footer totals, the
sandbox's ZIP round-trips through download → parse, and broken files are refused by line."""

import datetime as dt
import io
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from django.core import signing
from django.utils import timezone

from payments.accounts import backend_for
from payments.channels.alipay import AlipayBackend
from payments.channels.base import (
    ChannelDeclined,
    ClientInfo,
    CreateRequest,
    RefundRequest,
    SettlementFileError,
)
from payments.sandbox.alipay import bill as sandbox_bill
from payments.sandbox.alipay import protocol as sandbox_protocol
from payments.sandbox.models import SandboxTrade
from tests.payments.factories import sandbox_account

DATA = Path(__file__).resolve().parents[2] / "data" / "alipay"
UTF8_SAMPLE = DATA / "trade_detail_2019-09-16__qdingnet_AlipayGeneralPaymentHandlerTest.utf8.csv"
GBK_SAMPLE = DATA / "DERIVED_trade_detail_2019-09-16.gbk.csv"
SAMPLE_PID = "2088000000000000"


def parse(data: bytes, **kwargs):
    bill = AlipayBackend.open_settlement(io.BytesIO(data), **kwargs)
    return list(bill.lines()), bill.totals


def sample_zip(detail: bytes, summary: str | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(sandbox_bill._GbkName(f"{SAMPLE_PID}0156_20190916_业务明细.csv"), detail)
        if summary is not None:
            archive.writestr(
                sandbox_bill._GbkName(f"{SAMPLE_PID}0156_20190916_业务明细(汇总).csv"),
                summary.encode("gbk"),
            )
    return buffer.getvalue()


SAMPLE_SUMMARY = "\r\n".join(
    [
        "#支付宝业务汇总查询",
        f"#账号：[{SAMPLE_PID}0156]",
        sandbox_bill.SUMMARY_BEGIN,
        sandbox_bill.SUMMARY_COLUMNS,
        "合计,,6,4,0.02,0.02,0.00,0.00,0.00,0.00,0.00,0.02",
        sandbox_bill.SUMMARY_END,
    ]
)


# ---------------------------------------------------------------------------------------------
# The real sample


@pytest.mark.parametrize("path", [UTF8_SAMPLE, GBK_SAMPLE])
def test_the_real_sample_parses_to_its_own_footer_totals(path):
    lines, totals = parse(path.read_bytes())
    assert len(lines) == 10
    payments = [line for line in lines if line.kind == "payment"]
    refunds = [line for line in lines if line.kind == "refund"]
    assert (len(payments), len(refunds)) == (6, 4)
    assert totals.payments == 6 and totals.refunds == 4 and totals.lines == 10
    assert totals.gross == Decimal("0.06") == sum(line.amount for line in payments)
    assert totals.refunded == Decimal("0.04") == sum(line.amount for line in refunds)
    assert totals.merchant_id == SAMPLE_PID
    assert totals.day == dt.date(2019, 9, 16)
    assert totals.fees is None  # the bare detail file states no fee total


def test_sample_lines_are_normalised_without_tab_suffixes():
    lines, _ = parse(GBK_SAMPLE.read_bytes())
    first, refund = lines[0], lines[1]
    assert first.line_no == 6
    assert first.channel_trade_no == "2019091622001458860515315453"
    assert first.out_trade_no == "service_1568601259302"
    assert (
        first.amount == Decimal("0.01") and first.fee == Decimal("0.00") and first.currency == "CNY"
    )
    assert first.occurred_at == dt.datetime(
        2019, 9, 16, 10, 55, 23, tzinfo=dt.timezone(dt.timedelta(hours=8))
    )
    assert (
        refund.kind == "refund"
        and refund.refund_no == "re_test_1568602607356"
        and refund.amount == Decimal("0.01")
    )
    assert refund.raw["业务类型"] == "退款"


def test_crlf_and_bom_variants_parse_alike():
    text = UTF8_SAMPLE.read_bytes()
    crlf = text.replace(b"\n", b"\r\n")
    bom = b"\xef\xbb\xbf" + crlf
    assert parse(crlf)[1] == parse(text)[1] == parse(bom)[1]


def test_the_zip_with_gbk_names_and_its_summary_parses_with_fees():
    data = sample_zip(GBK_SAMPLE.read_bytes(), SAMPLE_SUMMARY)
    lines, totals = parse(data)
    assert len(lines) == 10 and totals.fees == Decimal("0.00")


def test_a_non_seekable_stream_is_accepted():
    class Pipe(io.RawIOBase):
        def __init__(self, data):
            self._data = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, buffer):
            chunk = self._data.read(min(len(buffer), 7))
            buffer[: len(chunk)] = chunk
            return len(chunk)

        def seekable(self):
            return False

    bill = AlipayBackend.open_settlement(Pipe(sample_zip(GBK_SAMPLE.read_bytes())))
    assert len(list(bill.lines())) == 10


# ---------------------------------------------------------------------------------------------
# Refusals


def test_another_merchants_bill_is_refused_at_the_account_line():
    with pytest.raises(
        SettlementFileError, match="merchant 2088000000000000, not 2088101122136241"
    ) as caught:
        parse(GBK_SAMPLE.read_bytes(), merchant_id="2088101122136241")
    assert caught.value.line_no == 2


def test_wrong_encoding_is_refused_at_line_one():
    utf16 = UTF8_SAMPLE.read_text(encoding="utf-8").encode("utf-16")
    with pytest.raises(SettlementFileError, match="encoding") as caught:
        parse(utf16)
    assert caught.value.line_no == 1


def test_a_line_that_is_not_gbk_is_refused_with_its_number():
    lines = GBK_SAMPLE.read_bytes().split(b"\n")
    lines[8] = lines[8].replace(b",", b"\xff\xff,", 1)
    with pytest.raises(SettlementFileError, match="GBK") as caught:
        parse(b"\n".join(lines))
    assert caught.value.line_no == 9


def test_totals_that_do_not_add_up_are_refused_at_the_footer():
    text = UTF8_SAMPLE.read_text(encoding="utf-8").replace("0.01,0.01,0.00", "0.02,0.02,0.00", 1)
    with pytest.raises(
        SettlementFileError, match="交易 total 0.06, the rows add up to 0.07"
    ) as caught:
        parse(text.encode("gbk"))
    assert caught.value.line_no == 17


def test_a_footer_count_that_does_not_match_is_refused():
    text = UTF8_SAMPLE.read_text(encoding="utf-8").replace("#退款合计：4笔", "#退款合计：5笔")
    with pytest.raises(SettlementFileError, match="5 退款 rows, the file has 4") as caught:
        parse(text.encode("utf-8"))
    assert caught.value.line_no == 18


def test_a_summary_whose_fees_disagree_is_refused():
    data = sample_zip(
        GBK_SAMPLE.read_bytes(), SAMPLE_SUMMARY.replace(",0.00,0.00,0.02", ",-0.01,0.00,0.02")
    )
    with pytest.raises(SettlementFileError, match="服务费"):
        parse(data)


@pytest.mark.parametrize("keep", [16, 15])
def test_a_truncated_bill_is_refused(keep):
    lines = UTF8_SAMPLE.read_bytes().split(b"\n")[:keep]
    with pytest.raises(SettlementFileError, match="truncated") as caught:
        parse(b"\n".join(lines))
    assert caught.value.line_no == keep


def test_a_line_cut_in_the_middle_is_refused_with_its_number():
    data = UTF8_SAMPLE.read_bytes()
    cut = data[: data.index(b"service_1568603173853")]
    with pytest.raises(SettlementFileError, match="columns") as caught:
        parse(cut)
    assert caught.value.line_no == 8


def test_a_truncated_zip_is_refused():
    data = sample_zip(GBK_SAMPLE.read_bytes(), SAMPLE_SUMMARY)
    with pytest.raises(SettlementFileError, match="ZIP"):
        parse(data[: len(data) // 2])


def test_a_zip_without_the_detail_file_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", b"x")
    with pytest.raises(SettlementFileError, match="业务明细"):
        parse(buffer.getvalue())


def test_an_unknown_business_type_is_refused():
    text = UTF8_SAMPLE.read_text(encoding="utf-8").replace("交易\t", "转账\t", 1)
    with pytest.raises(SettlementFileError, match="业务类型") as caught:
        parse(text.encode("utf-8"))
    assert caught.value.line_no == 6


@pytest.mark.parametrize("data", [b"", b"hello,world\n", b"\x89PNG\r\n"])
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
        subject="礼品卡, 面值100",
        method="alipay",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        client=ClientInfo(device="desktop"),
    )


@pytest.fixture
def paid_day(db, client):
    """Three payments and two refunds made today at the sandbox."""
    account = sandbox_account("alipay")
    backend = backend_for(account)
    trades = []
    for number, amount in (("CX-A", "100.00"), ("CX-B", "58.50"), ("CX-C", "0.01")):
        backend.create(_request(number, amount))
        trade = SandboxTrade.objects.get(out_trade_no=number)
        client.post(f"/sandbox/alipay/cashier/{trade.trade_no}/", {"decision": "approve"})
        trades.append(trade)
    backend.create(_request("CX-UNPAID", "9.99"))
    for trade, refund_no, amount in ((trades[0], "RF-A1", "30.00"), (trades[1], "RF-B1", "58.50")):
        result = backend.refund(
            RefundRequest(
                refund_no=refund_no,
                out_trade_no=trade.out_trade_no,
                channel_trade_no=trade.trade_no,
                amount=Decimal(amount),
                total_amount=trade.amount,
                currency="CNY",
            )
        )
        assert result.outcome == "succeeded"
    return backend


@pytest.mark.django_db
def test_download_is_the_real_zip_layout_with_gbk_entry_names(paid_day):
    data = paid_day.download_settlement(timezone.localdate())
    stamp = timezone.now().astimezone(sandbox_protocol.BEIJING).strftime("%Y%m%d")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        assert all(info.flag_bits & 0x800 == 0 for info in infos)
        names = [info.orig_filename.encode("cp437").decode("gbk") for info in infos]
        detail = archive.read(infos[0])
    assert names == [
        f"20881011221362410156_{stamp}_业务明细.csv",
        f"20881011221362410156_{stamp}_业务明细(汇总).csv",
    ]
    text = detail.decode("gbk")
    assert text.startswith("#支付宝业务明细查询\r\n#账号：[20881011221362410156]\r\n#起始日期：[")
    assert "]   终止日期：[" in text
    assert "#交易合计：3笔，商家实收共158.51元，商家优惠共0.00元\r\n" in text
    assert "#退款合计：2笔，商家实收退款共-88.50元，商家优惠退款共0.00元\r\n" in text
    assert "礼品卡， 面值100" in text  # commas kept out of unquoted cells


@pytest.mark.django_db
def test_downloaded_bill_parses_and_its_totals_agree(paid_day):
    bill = paid_day.open_settlement(
        io.BytesIO(paid_day.download_settlement(timezone.localdate())),
        merchant_id="2088101122136241",
    )
    lines = list(bill.lines())
    totals = bill.totals
    assert (
        totals.merchant_id == "2088101122136241"
        and totals.day == timezone.now().astimezone(sandbox_protocol.BEIJING).date()
    )
    assert (totals.payments, totals.refunds) == (3, 2)
    assert totals.gross == Decimal("158.51") and totals.refunded == Decimal("88.50")
    # 0.6 %: 0.60 + 0.35 + 0.00 charged, 0.18 + 0.35 returned
    assert [line.fee for line in lines if line.kind == "payment"] == [
        Decimal("0.60"),
        Decimal("0.35"),
        Decimal("0.00"),
    ]
    assert sorted(line.fee for line in lines if line.kind == "refund") == [
        Decimal("-0.35"),
        Decimal("-0.18"),
    ]
    assert totals.fees == sum(line.fee for line in lines) == Decimal("0.42")
    refund = next(line for line in lines if line.refund_no == "RF-A1")
    assert refund.out_trade_no == "CX-A" and refund.amount == Decimal("30.00")


@pytest.mark.django_db
def test_a_day_without_trades_is_an_empty_but_valid_bill(db):
    backend = backend_for(sandbox_account("alipay"))
    bill = backend.open_settlement(io.BytesIO(backend.download_settlement(dt.date(2020, 1, 2))))
    assert list(bill.lines()) == []
    assert bill.totals.lines == 0 and bill.totals.gross == Decimal("0.00")


@pytest.mark.django_db
def test_a_future_bill_does_not_exist(db):
    backend = backend_for(sandbox_account("alipay"))
    with pytest.raises(ChannelDeclined) as caught:
        backend.download_settlement(timezone.localdate() + dt.timedelta(days=2))
    assert caught.value.code == "BILL_NOT_EXIST"


@pytest.mark.django_db
def test_the_bill_link_expires_after_thirty_seconds(client, monkeypatch, paid_day):
    answer = paid_day.call(
        "alipay.data.dataservice.bill.downloadurl.query",
        {"bill_type": "trade", "bill_date": timezone.localdate().isoformat()},
    )
    url = answer["bill_download_url"].replace("http://testserver", "")
    assert client.get(url).status_code == 200
    later = signing.time.time() + 31
    monkeypatch.setattr(signing.time, "time", lambda: later)
    assert client.get(url).status_code == 404
