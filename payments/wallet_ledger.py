"""The buyers' wallets on the journal: the platform's implementation of the balance channel's
wallet port (``payments/channels/wallet.py``), registered in ``PaymentsConfig.ready``.

A wallet balance is a sum of journal lines, never a field. Capturing posts the journal entry
key the platform uses for every capture (``capture:<out_trade_no>``), so the platform's own
capture posting is a no-op for the balance channel.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from payments import ledger
from payments.channels.wallet import InsufficientBalance, WalletCapture, WalletMovement


class JournalWallet:
    def capture(self, *, owner: int, out_trade_no: str, amount: Decimal, currency: str) -> None:
        wallet = ledger.buyer_wallet(owner)
        with transaction.atomic():
            # Lock the wallet's ledger account row so two checkouts cannot spend one balance.
            account = ledger.account(wallet, currency)
            type(account).objects.select_for_update().get(pk=account.pk)
            available = ledger.balance(wallet, natural=True)
            if available < amount:
                raise InsufficientBalance(available=available, wanted=amount)
            ledger.post(
                key=f"capture:{out_trade_no}",
                kind="payment_captured",
                reference=out_trade_no,
                lines=[(wallet, amount), (ledger.CLEARING, -amount)],
                memo="paid from balance",
                currency=currency,
            )

    def captured(self, out_trade_no: str) -> WalletCapture | None:
        entry = ledger.JournalEntry.objects.filter(key=f"capture:{out_trade_no}").first()
        if entry is None:
            return None
        line = entry.lines.filter(amount__gt=0).select_related("account").first()
        return WalletCapture(
            out_trade_no=out_trade_no,
            wallet=line.account.code,
            amount=line.amount,
            posted_at=entry.posted_at,
        )

    def refund(
        self, *, capture: WalletCapture, refund_no: str, amount: Decimal, currency: str, memo: str
    ) -> None:
        ledger.post(
            key=f"refund:{refund_no}",
            kind="refund",
            reference=capture.out_trade_no,
            lines=[(ledger.REFUNDS_IN_FLIGHT, amount), (capture.wallet, -amount)],
            memo=memo,
            currency=currency,
        )

    def movements(self, day: dt.date) -> Iterator[WalletMovement]:
        start = dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_current_timezone())
        entries = ledger.JournalEntry.objects.filter(
            posted_at__gte=start,
            posted_at__lt=start + dt.timedelta(days=1),
            kind__in=["payment_captured", "refund"],
        ).prefetch_related("lines__account")
        for entry in entries:
            wallet_lines = [
                line for line in entry.lines.all() if line.account.code.startswith("buyer:")
            ]
            if not wallet_lines:
                continue
            kind = "payment" if entry.kind == "payment_captured" else "refund"
            number = entry.key.split(":", 1)[1]
            yield WalletMovement(
                kind=kind,
                out_trade_no=number if kind == "payment" else entry.reference,
                refund_no=number if kind == "refund" else "",
                amount=abs(wallet_lines[0].amount),
                currency=wallet_lines[0].currency,
                posted_at=entry.posted_at,
            )
