"""The internal wallet: money the buyer holds on Cardex (top-ups, refunds), spent at
checkout. The wallets are the platform's (on its journal); this channel reaches them through
the wallet port of the contract (``payments/channels/wallet.py``), and the platform's capture
posting is a no-op for it because the wallet posts the same capture key.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import IO

from payments.channels import wallet as wallets
from payments.channels.base import (
    Action,
    ChannelBackend,
    ChannelDeclined,
    CreateRequest,
    CreateResult,
    ErrorSpec,
    FileTotals,
    Notice,
    NotificationRejected,
    QueryResult,
    RefundRequest,
    RefundResult,
    SettlementFile,
    SettlementFileError,
    SettlementLine,
    money,
)

HEADER = ["kind", "out_trade_no", "refund_no", "amount", "currency", "posted_at"]


class BalanceBackend(ChannelBackend):
    code = "balance"
    methods = ("balance",)
    display_name = "Account balance"
    settles_from_wallet = True
    error_codes = {
        "INSUFFICIENT_BALANCE": ErrorSpec(
            action="final",
            counts_against_channel=False,
            reason_zh="账户余额不足",
            reason_en="Your Cardex balance is too low",
            guidance_zh="请先充值，或换一种支付方式。",
            guidance_en="Top up your balance, or choose another method.",
        ),
        "NO_BUYER": ErrorSpec(
            action="final",
            counts_against_channel=False,
            reason_zh="无法识别付款账户",
            reason_en="We could not tell whose balance to use",
            guidance_zh="请重新登录后再试。",
            guidance_en="Log in again and retry.",
        ),
    }

    def create(self, request: CreateRequest) -> CreateResult:
        if not request.buyer_ref.isdigit():
            raise ChannelDeclined("no buyer for a balance payment", code="NO_BUYER")
        try:
            wallets.wallet().capture(
                owner=int(request.buyer_ref),
                out_trade_no=request.out_trade_no,
                amount=request.amount,
                currency=request.currency,
            )
        except wallets.InsufficientBalance as exc:
            raise ChannelDeclined(str(exc), code="INSUFFICIENT_BALANCE") from None
        return CreateResult(
            action=Action(type="none"),
            channel_trade_no=f"BAL{request.out_trade_no}",
            outcome="succeeded",
        )

    def parse_notification(self, *, headers: Mapping[str, str], body: bytes) -> Notice:
        raise NotificationRejected(
            "the balance channel settles in-process and sends no notifications"
        )

    def query(self, *, out_trade_no: str, channel_trade_no: str = "") -> QueryResult:
        capture = wallets.wallet().captured(out_trade_no)
        if capture is None:
            return QueryResult(outcome="closed")
        return QueryResult(
            outcome="succeeded",
            amount=capture.amount,
            channel_trade_no=f"BAL{out_trade_no}",
            paid_at=capture.posted_at,
        )

    def close(self, *, out_trade_no: str, channel_trade_no: str = "") -> None:
        """Nothing is ever open: a balance payment is captured or refused at once."""

    def refund(self, request: RefundRequest) -> RefundResult:
        port = wallets.wallet()
        capture = port.captured(request.out_trade_no)
        if capture is None:
            raise ChannelDeclined(f"no balance payment {request.out_trade_no}", code="NOT_FOUND")
        port.refund(
            capture=capture,
            refund_no=request.refund_no,
            amount=request.amount,
            currency=request.currency,
            memo=request.reason or "refund to balance",
        )
        return RefundResult(outcome="succeeded", channel_refund_no=request.refund_no)

    def download_settlement(self, day: dt.date) -> bytes:
        """The wallets' own statement of a day: their captures and refunds."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(HEADER)
        count, gross, refunded = 0, Decimal("0.00"), Decimal("0.00")
        for move in wallets.wallet().movements(day):
            amount = move.amount
            writer.writerow(
                [
                    move.kind,
                    move.out_trade_no,
                    move.refund_no,
                    f"{amount:.2f}",
                    move.currency,
                    move.posted_at.isoformat(),
                ]
            )
            count += 1
            if move.kind == "payment":
                gross += amount
            else:
                refunded += amount
        writer.writerow(["#total", count, "", f"{gross:.2f}", f"{refunded:.2f}", day.isoformat()])
        return out.getvalue().encode()

    @classmethod
    def open_settlement(cls, stream: IO[bytes]) -> SettlementFile:
        return _BalanceStatement(stream)


class _BalanceStatement(SettlementFile):
    def __init__(self, stream: IO[bytes]):
        self._stream = stream
        self._totals: FileTotals | None = None

    @property
    def totals(self) -> FileTotals:
        if self._totals is None:
            raise SettlementFileError("totals are known after reading the lines")
        return self._totals

    def lines(self) -> Iterator[SettlementLine]:
        text = io.TextIOWrapper(self._stream, encoding="utf-8", newline="")
        reader = csv.reader(text)
        if next(reader, None) != HEADER:
            raise SettlementFileError("not a balance statement (header differs)", line_no=1)
        count, gross, refunded = 0, Decimal("0.00"), Decimal("0.00")
        for row in reader:
            line_no = reader.line_num
            if row and row[0] == "#total":
                stated = FileTotals(
                    merchant_id="",
                    day=dt.date.fromisoformat(row[5]),
                    lines=int(row[1]),
                    gross=money(row[3]),
                    refunded=money(row[4]),
                    fees=Decimal("0.00"),
                )
                if (stated.lines, stated.gross, stated.refunded) != (count, gross, refunded):
                    raise SettlementFileError(
                        f"totals say {stated.lines} lines {stated.gross}/{stated.refunded}, "
                        f"lines sum to {count} {gross}/{refunded}",
                        line_no=line_no,
                    )
                self._totals = stated
                return
            try:
                kind, out_trade_no, refund_no, amount, currency, posted = row
                value = money(amount)
            except Exception as exc:
                raise SettlementFileError(f"malformed row ({exc})", line_no=line_no) from exc
            count += 1
            gross, refunded = (
                (gross + value, refunded) if kind == "payment" else (gross, refunded + value)
            )
            yield SettlementLine(
                line_no=line_no,
                kind="payment" if kind == "payment" else "refund",
                out_trade_no=out_trade_no,
                channel_trade_no=f"BAL{out_trade_no}",
                amount=value,
                fee=Decimal("0.00"),
                currency=currency,
                occurred_at=dt.datetime.fromisoformat(posted),
                refund_no=refund_no,
            )
        raise SettlementFileError("the file ends without its #total line (truncated?)")
