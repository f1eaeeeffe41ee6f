"""The balance channel pays from the buyer's Cardex wallet through the contract's wallet port;
the wallets themselves are the platform's, on the journal. Channel modules import nothing of
the platform but the contract."""

import ast
import datetime as dt
import io
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from django.utils import timezone

from payments import ledger
from payments.channels import wallet as wallets
from payments.channels.balance import BalanceBackend
from payments.channels.base import (
    AccountConfig,
    ChannelDeclined,
    ClientInfo,
    CreateRequest,
    RefundRequest,
)
from payments.wallet_ledger import JournalWallet
from tests.accounts.factories import UserFactory

CHANNELS = Path(__file__).resolve().parents[3] / "payments" / "channels"
PLATFORM = ("payments.models", "payments.services", "payments.ledger", "payments.wallet")


def backend() -> BalanceBackend:
    return BalanceBackend(AccountConfig(code="balance", backend="balance", base_url=""))


def pay(buyer_ref: str, amount: str, out_trade_no: str | None = None) -> CreateRequest:
    return CreateRequest(
        out_trade_no=out_trade_no or f"CX{uuid.uuid4().hex[:12]}",
        amount=Decimal(amount),
        currency="CNY",
        subject="京东E卡 100元",
        method="balance",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        client=ClientInfo(device="desktop"),
        buyer_ref=buyer_ref,
    )


def refund_of(request: CreateRequest, amount: str) -> RefundRequest:
    return RefundRequest(
        refund_no=f"RF{uuid.uuid4().hex[:12]}",
        out_trade_no=request.out_trade_no,
        channel_trade_no=f"BAL{request.out_trade_no}",
        amount=Decimal(amount),
        total_amount=request.amount,
        currency="CNY",
    )


def wallet_of(user) -> Decimal:
    return ledger.balance(ledger.buyer_wallet(user.pk), natural=True)


@pytest.fixture
def buyer(db):
    user = UserFactory()
    ledger.post(
        key=f"topup:{uuid.uuid4()}",
        kind="topup",
        lines=[
            (ledger.CLEARING, Decimal("100.00")),
            (ledger.buyer_wallet(user.pk), Decimal("-100.00")),
        ],
    )
    return user


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_no_channel_module_imports_the_platform():
    offenders = {
        str(path.relative_to(CHANNELS)): sorted(
            name for name in imported_modules(path) if name.startswith(PLATFORM)
        )
        for path in CHANNELS.rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_platform_registers_its_journal_wallet_when_ready():
    assert isinstance(wallets.wallet(), JournalWallet)


@pytest.mark.django_db
def test_a_balance_payment_is_taken_from_the_wallet_at_once(buyer):
    request = pay(str(buyer.pk), "30.00")
    result = backend().create(request)
    assert (result.outcome, result.channel_trade_no) == ("succeeded", f"BAL{request.out_trade_no}")
    assert wallet_of(buyer) == Decimal("70.00")
    assert ledger.JournalEntry.objects.filter(key=f"capture:{request.out_trade_no}").exists()
    assert ledger.journal_total() == 0


@pytest.mark.django_db
def test_capturing_the_same_payment_twice_takes_the_money_once(buyer):
    request = pay(str(buyer.pk), "30.00")
    backend().create(request)
    backend().create(request)
    assert wallet_of(buyer) == Decimal("70.00")


@pytest.mark.django_db
def test_a_payment_above_the_balance_is_declined_and_takes_nothing(buyer):
    request = pay(str(buyer.pk), "100.01")
    with pytest.raises(ChannelDeclined) as caught:
        backend().create(request)
    assert caught.value.code == "INSUFFICIENT_BALANCE"
    assert str(caught.value) == "balance 100.00 < 100.01"
    assert wallet_of(buyer) == Decimal("100.00")
    assert not ledger.JournalEntry.objects.filter(key=f"capture:{request.out_trade_no}").exists()


@pytest.mark.django_db
def test_a_payment_without_a_buyer_is_declined():
    with pytest.raises(ChannelDeclined) as caught:
        backend().create(pay("", "1.00"))
    assert caught.value.code == "NO_BUYER"


@pytest.mark.django_db
def test_query_answers_what_the_wallet_captured(buyer):
    request = pay(str(buyer.pk), "30.00")
    backend().create(request)
    found = backend().query(out_trade_no=request.out_trade_no)
    assert (found.outcome, found.amount, found.channel_trade_no) == (
        "succeeded",
        Decimal("30.00"),
        f"BAL{request.out_trade_no}",
    )
    assert backend().query(out_trade_no="CX-never-paid").outcome == "closed"


@pytest.mark.django_db
def test_a_refund_goes_back_to_the_wallet_it_came_from(buyer):
    request = pay(str(buyer.pk), "30.00")
    backend().create(request)
    result = backend().refund(refund_of(request, "12.50"))
    assert result.outcome == "succeeded"
    assert wallet_of(buyer) == Decimal("82.50")
    assert ledger.balance(ledger.REFUNDS_IN_FLIGHT) == Decimal("12.50")
    assert ledger.journal_total() == 0


@pytest.mark.django_db
def test_refunding_a_payment_that_was_never_taken_is_refused(buyer):
    with pytest.raises(ChannelDeclined) as caught:
        backend().refund(refund_of(pay(str(buyer.pk), "30.00"), "10.00"))
    assert caught.value.code == "NOT_FOUND"
    assert wallet_of(buyer) == Decimal("100.00")


@pytest.mark.django_db
def test_the_days_statement_lists_wallet_payments_and_refunds_and_checks_its_totals(buyer):
    request = pay(str(buyer.pk), "30.00")
    backend().create(request)
    refund = refund_of(request, "10.00")
    backend().refund(refund)
    statement = BalanceBackend.open_settlement(
        io.BytesIO(backend().download_settlement(timezone.localdate()))
    )
    lines = list(statement.lines())
    assert sorted(
        (line.kind, line.out_trade_no, line.refund_no, line.amount) for line in lines
    ) == [
        ("payment", request.out_trade_no, "", Decimal("30.00")),
        ("refund", request.out_trade_no, refund.refund_no, Decimal("10.00")),
    ]
    totals = statement.totals
    assert (totals.lines, totals.gross, totals.refunded) == (2, Decimal("30.00"), Decimal("10.00"))
