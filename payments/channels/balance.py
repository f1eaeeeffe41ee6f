"""The internal wallet: money the buyer holds on Cardex (top-ups, refunds), spent at
checkout. Fully on the journal: a wallet balance is a sum of journal lines, never a field.

Capturing posts the same journal entry key the platform uses for every capture
(``capture:<out_trade_no>``), so the platform's own posting is a no-op for this channel.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import IO

from django.db import transaction
from django.utils import timezone

from payments import ledger
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
            action="final", counts_against_channel=False,
            reason_zh="账户余额不足", reason_en="Your Cardex balance is too low",
            guidance_zh="请先充值，或换一种支付方式。", guidance_en="Top up your balance, or choose another method.",
        ),
        "NO_BUYER": ErrorSpec(
            action="final", counts_against_channel=False,
            reason_zh="无法识别付款账户", reason_en="We could not tell whose balance to use",
            guidance_zh="请重新登录后再试。", guidance_en="Log in again and retry.",
        ),
    }

    def create(self, request: CreateRequest) -> CreateResult:
        if not request.buyer_ref.isdigit():
            raise ChannelDeclined("no buyer for a balance payment", code="NO_BUYER")
        wallet = ledger.buyer_wallet(int(request.buyer_ref))
        with transaction.atomic():
            # Lock the wallet's ledger account row so two checkouts cannot spend one balance.
            account = ledger.account(wallet, request.currency)
            type(account).objects.select_for_update().get(pk=account.pk)
            available = ledger.balance(wallet, natural=True)
            if available < request.amount:
                raise ChannelDeclined(f"balance {available} < {request.amount}", code="INSUFFICIENT_BALANCE")
            ledger.post(
                key=f"capture:{request.out_trade_no}", kind="payment_captured", reference=request.out_trade_no,
                lines=[(wallet, request.amount), (ledger.CLEARING, -request.amount)],
                memo="paid from balance", currency=request.currency,
            )
        return CreateResult(action=Action(type="none"), channel_trade_no=f"BAL{request.out_trade_no}", outcome="succeeded")

    def parse_notification(self, *, headers: Mapping[str, str], body: bytes) -> Notice:
        raise NotificationRejected("the balance channel settles in-process and sends no notifications")

    def query(self, *, out_trade_no: str, channel_trade_no: str = "") -> QueryResult:
        entry = ledger.JournalEntry.objects.filter(key=f"capture:{out_trade_no}").first()
        if entry is None:
            return QueryResult(outcome="closed")
        amount = entry.lines.filter(amount__gt=0).first().amount
        return QueryResult(outcome="succeeded", amount=amount, channel_trade_no=f"BAL{out_trade_no}", paid_at=entry.posted_at)

    def close(self, *, out_trade_no: str, channel_trade_no: str = "") -> None:
        """Nothing is ever open: a balance payment is captured or refused at once."""

    def refund(self, request: RefundRequest) -> RefundResult:
        wallet = self._wallet_of(request.out_trade_no)
        ledger.post(
            key=f"refund:{request.refund_no}", kind="refund", reference=request.out_trade_no,
            lines=[(ledger.REFUNDS_IN_FLIGHT, request.amount), (wallet, -request.amount)],
            memo=request.reason or "refund to balance", currency=request.currency,
        )
        return RefundResult(outcome="succeeded", channel_refund_no=request.refund_no)

    @staticmethod
    def _wallet_of(out_trade_no: str) -> str:
        entry = ledger.JournalEntry.objects.filter(key=f"capture:{out_trade_no}").first()
        if entry is None:
            raise ChannelDeclined(f"no balance payment {out_trade_no}", code="NOT_FOUND")
        return entry.lines.filter(amount__gt=0).select_related("account").first().account.code

    def download_settlement(self, day: dt.date) -> bytes:
        """The wallet's own statement of a day: captures and refunds from the journal."""
        tz = timezone.get_current_timezone()
        start = dt.datetime.combine(day, dt.time.min, tzinfo=tz)
        entries = ledger.JournalEntry.objects.filter(
            posted_at__gte=start, posted_at__lt=start + dt.timedelta(days=1), kind__in=["payment_captured", "refund"],
        ).prefetch_related("lines__account")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(HEADER)
        count, gross, refunded = 0, Decimal("0.00"), Decimal("0.00")
        for entry in entries:
            wallet_lines = [line for line in entry.lines.all() if line.account.code.startswith("buyer:")]
            if not wallet_lines:
                continue
            amount = abs(wallet_lines[0].amount)
            kind = "payment" if entry.kind == "payment_captured" else "refund"
            out_trade_no = entry.key.split(":", 1)[1] if kind == "payment" else entry.reference
            refund_no = entry.key.split(":", 1)[1] if kind == "refund" else ""
            writer.writerow([kind, out_trade_no, refund_no, f"{amount:.2f}", wallet_lines[0].currency, entry.posted_at.isoformat()])
            count += 1
            gross, refunded = (gross + amount, refunded) if kind == "payment" else (gross, refunded + amount)
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
                stated = FileTotals(merchant_id="", day=dt.date.fromisoformat(row[5]), lines=int(row[1]), gross=money(row[3]), refunded=money(row[4]), fees=Decimal("0.00"))
                if (stated.lines, stated.gross, stated.refunded) != (count, gross, refunded):
                    raise SettlementFileError(f"totals say {stated.lines} lines {stated.gross}/{stated.refunded}, lines sum to {count} {gross}/{refunded}", line_no=line_no)
                self._totals = stated
                return
            try:
                kind, out_trade_no, refund_no, amount, currency, posted = row
                value = money(amount)
            except Exception as exc:
                raise SettlementFileError(f"malformed row ({exc})", line_no=line_no) from exc
            count += 1
            gross, refunded = (gross + value, refunded) if kind == "payment" else (gross, refunded + value)
            yield SettlementLine(line_no=line_no, kind="payment" if kind == "payment" else "refund", out_trade_no=out_trade_no,
                                 channel_trade_no=f"BAL{out_trade_no}", amount=value, fee=Decimal("0.00"), currency=currency,
                                 occurred_at=dt.datetime.fromisoformat(posted), refund_no=refund_no)
        raise SettlementFileError("the file ends without its #total line (truncated?)")
