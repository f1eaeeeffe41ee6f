"""Chargebacks and PayPal disputes, end to end through the simulators (issue 18): a shop
order paid by card or PayPal is disputed at the channel; the signed notice is recorded once
as a provider dispute, the disputed amount posted to its own account, the seller's money for
the order held — then released when the dispute is won, charged to the seller when it is
lost — and the fraud-rate monitor moves. A forged notice changes nothing."""

import datetime as dt
import json
from decimal import Decimal

import pytest
from django.utils import timezone

from marketplace import postings, services
from marketplace.metrics import FRAUD_RATE, delivered_order_outcomes
from marketplace.models import Order
from payments import ledger
from payments.channels.base import ClientInfo
from payments.models import JournalEntry, Notification, Payment, ProviderDispute
from payments.sandbox import core as sandbox
from payments.sandbox import tasks as sandbox_tasks
from payments.sandbox.models import SandboxNotification, SandboxTrade
from risk import alerts, history
from risk.engine import CHARGEBACK
from risk.models import Alert, Monitor
from tests.payments.factories import sandbox_account
from tests.payments.sandbox_payer import Payer

pytestmark = pytest.mark.django_db

CLIENT = ClientInfo(ip="203.0.113.50", device="desktop", user_agent="chargeback-test")


def balanced() -> bool:
    return ledger.journal_total() == 0 and ledger.unbalanced_entries() == 0


def paid_order(client, capture, buyer, listing, method: str) -> tuple[Order, Payment]:
    """The buyer orders one code and pays on the channel's page; the order is delivered."""
    order = services.order_create(buyer=buyer, listing=listing, quantity=1)
    payment = services.order_pay(
        order=order, buyer=buyer, method=method, client=CLIENT, return_url="http://testserver/"
    )
    assert payment.status == "pending", (payment.status, payment.risk)
    with capture(execute=True):
        Payer(client).decide(payment.attempts.get().action, "approve")
    order.refresh_from_db()
    payment.refresh_from_db()
    assert payment.status == "succeeded" and order.status == Order.Status.DELIVERED
    return order, payment


def trade_of(payment: Payment) -> SandboxTrade:
    attempt = payment.attempts.get()
    return SandboxTrade.objects.get(out_trade_no=attempt.out_trade_no)


def dispute_open(capture, payment: Payment) -> None:
    trade = trade_of(payment)
    with capture(execute=True):
        sandbox.provider(trade.channel).dispute_open(trade)


def dispute_close(capture, payment: Payment, *, won: bool) -> None:
    trade = trade_of(payment)
    with capture(execute=True):
        sandbox.provider(trade.channel).dispute_close(trade, won=won)


def fraud_rate() -> tuple[int, int]:
    now = timezone.now()
    points = [
        p
        for p in delivered_order_outcomes(
            since=now - dt.timedelta(days=1), until=now + dt.timedelta(hours=1), grain="day"
        )
        if p.metric == FRAUD_RATE
    ]
    return sum(p.numerator for p in points), sum(p.denominator for p in points)


def seller_money(seller_id: int) -> dict[str, Decimal]:
    codes = {
        "pending": postings.seller_pending(seller_id),
        "available": postings.seller_available(seller_id),
        "held": postings.seller_held(seller_id),
    }
    found = ledger.balances(codes.values(), natural=True)
    return {name: found[code] for name, code in codes.items()}


def redeliver_everything(capture) -> None:
    """The channel sends every notice again: each is acknowledged, nothing changes."""
    sent = SandboxNotification.objects.all()
    sent.update(delivered=False)
    with capture(execute=True):
        assert all(sandbox_tasks.deliver(note.pk) for note in sent.order_by("pk"))


@pytest.fixture
def card(db):
    return sandbox_account("card")


@pytest.fixture
def paypal(db):
    return sandbox_account("paypal")


def test_a_card_chargeback_holds_the_sellers_funds_balances_the_journal_and_moves_the_fraud_rate(
    client, django_capture_on_commit_callbacks, card, buyer, seller, listing
):
    capture = django_capture_on_commit_callbacks
    order, payment = paid_order(client, capture, buyer, listing, "card")
    net = order.seller_net_per_code
    assert seller_money(seller.pk) == {"pending": net, "available": 0, "held": 0}
    assert fraud_rate() == (0, 1)
    monitor = Monitor.objects.create(
        name="fraud", metric=FRAUD_RATE, upper_bound=Decimal("1"), min_sample=1, window_hours=24
    )
    assert alerts.monitors_evaluate().opened == []

    dispute_open(capture, payment)

    dispute = ProviderDispute.objects.get()
    assert dispute.account == card and dispute.payment == payment
    assert dispute.provider_id.startswith("dp_") and dispute.reason == "fraudulent"
    assert dispute.amount == order.amount and dispute.outcome == "open"
    assert dispute.status == "needs_response" and dispute.funds_withdrawn
    assert dispute.evidence_due_by > timezone.now() + dt.timedelta(days=6)
    assert dispute.fee == Decimal("15.00")
    # the disputed amount on its own account, the fee among the channel's fees, balanced
    assert ledger.balance(ledger.CHARGEBACKS) == order.amount
    assert JournalEntry.objects.filter(key=f"chargeback-fee:{dispute.pk}").exists()
    assert balanced()
    # the seller's money for the order held: it neither matures nor can be paid out
    assert seller_money(seller.pk) == {"pending": 0, "available": 0, "held": net}
    Order.objects.filter(pk=order.pk).update(guarantee_until=timezone.now() - dt.timedelta(hours=1))
    assert services.seller_funds_mature_one(order_id=order.pk) is False
    # the fraud-rate monitor moves
    assert fraud_rate() == (1, 1)
    assert len(alerts.monitors_evaluate().opened) == 1
    assert Alert.objects.get().monitor == monitor
    # risk: a signal on the buyer, the device and the address
    weights = history.signal_weights([("user", str(buyer.pk)), ("ip", CLIENT.ip)])
    assert weights[CHARGEBACK] == pytest.approx(1.0, abs=0.01)

    # the channel sends it all again: acknowledged, applied once
    entries = JournalEntry.objects.count()
    redeliver_everything(capture)
    assert ProviderDispute.objects.count() == 1 and JournalEntry.objects.count() == entries
    dispute_notes = Notification.objects.filter(detail__startswith="dispute ")
    assert sorted(dispute_notes.values_list("outcome", flat=True)) == ["applied", "duplicate"]

    # the bank rules for the cardholder: a loss, charged to the seller
    dispute_close(capture, payment, won=False)
    dispute.refresh_from_db()
    assert dispute.outcome == "lost" and dispute.lost_amount == order.amount and dispute.closed_at
    assert ledger.balance(ledger.CHARGEBACKS) == 0
    assert seller_money(seller.pk) == {"pending": 0, "available": 0, "held": 0}
    # what the seller and the commission did not cover is the platform's loss: nothing here
    assert ledger.balance(ledger.CHARGEBACK_LOSSES) == 0
    assert balanced()
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED
    assert fraud_rate() == (1, 1)
    weights = history.signal_weights([("user", str(buyer.pk))])
    assert weights[CHARGEBACK] == pytest.approx(2.0, abs=0.02)
    entries = JournalEntry.objects.count()
    redeliver_everything(capture)
    assert JournalEntry.objects.count() == entries and balanced()
    # the nightly integrity check finds nothing wrong with a charged-back order
    from marketplace.integrity import integrity_report

    report = integrity_report()
    assert report["ok"] and report["checks"]["paid_not_delivered_or_refunded"] == 0, report


def test_a_won_chargeback_releases_the_hold_and_the_order_matures(
    client, django_capture_on_commit_callbacks, card, buyer, seller, listing
):
    capture = django_capture_on_commit_callbacks
    order, payment = paid_order(client, capture, buyer, listing, "card")
    receivable = ledger.balance(ledger.channel_receivable(card.code))
    dispute_open(capture, payment)
    assert fraud_rate() == (1, 1)

    dispute_close(capture, payment, won=True)

    dispute = ProviderDispute.objects.get()
    assert dispute.outcome == "won" and dispute.status == "won"
    assert ledger.balance(ledger.CHARGEBACKS) == 0
    # the amount is back; the dispute fee is kept by the acquirer
    assert ledger.balance(ledger.channel_receivable(card.code)) == receivable - dispute.fee
    net = order.seller_net_per_code
    assert seller_money(seller.pk) == {"pending": net, "available": 0, "held": 0}
    assert balanced() and fraud_rate() == (0, 1)
    Order.objects.filter(pk=order.pk).update(guarantee_until=timezone.now() - dt.timedelta(hours=1))
    assert services.seller_funds_mature_one(order_id=order.pk) is True
    assert seller_money(seller.pk) == {"pending": 0, "available": net, "held": 0}


def test_a_chargeback_on_a_matured_order_holds_the_available_balance(
    client, django_capture_on_commit_callbacks, card, buyer, seller, listing
):
    capture = django_capture_on_commit_callbacks
    order, payment = paid_order(client, capture, buyer, listing, "card")
    Order.objects.filter(pk=order.pk).update(guarantee_until=timezone.now() - dt.timedelta(hours=1))
    assert services.seller_funds_mature_one(order_id=order.pk)
    net = order.seller_net_per_code

    dispute_open(capture, payment)

    assert seller_money(seller.pk) == {"pending": 0, "available": 0, "held": net}
    assert services.seller_available_balance(seller_id=seller.pk) == 0
    dispute_close(capture, payment, won=True)
    assert seller_money(seller.pk) == {"pending": 0, "available": net, "held": 0}
    assert balanced()


def test_a_forged_or_tampered_dispute_notice_is_refused_and_changes_nothing(
    client, django_capture_on_commit_callbacks, card, buyer, listing
):
    capture = django_capture_on_commit_callbacks
    _order, payment = paid_order(client, capture, buyer, listing, "card")
    SandboxNotification.objects.update(url="http://nowhere.invalid/")  # keep it from arriving
    trade = trade_of(payment)
    SandboxTrade.objects.filter(pk=trade.pk).update(notify_url="")
    from payments.sandbox.card import disputes as sandbox_disputes

    body = sandbox_disputes.dispute_open(trade)
    entries = JournalEntry.objects.count()
    url = f"/payments/notify/{card.code}/"
    unsigned = client.post(url, body, content_type="application/json")
    forged = client.post(
        url,
        body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=f"t={int(timezone.now().timestamp())},v1={'0' * 64}",
    )
    assert unsigned.status_code == forged.status_code == 400
    assert not ProviderDispute.objects.exists() and JournalEntry.objects.count() == entries
    assert set(
        Notification.objects.filter(body_truncated=True).values_list("outcome", flat=True)
    ) <= {"rejected"}


def test_a_dispute_of_a_payment_we_never_took_is_refused_and_flagged(card):
    from payments.channels.base import DisputeFacts, Notice
    from payments.services import notice_apply

    notice = Notice(
        kind="dispute",
        out_trade_no="",
        outcome="pending",
        amount=Decimal("10.00"),
        currency="CNY",
        channel_trade_no="pi_unknown",
        dispute=DisputeFacts(dispute_id="dp_x", status="needs_response", outcome="open"),
    )
    result, detail = notice_apply(account=card, notice=notice)
    assert result == "rejected" and "pi_unknown" in detail
    assert not ProviderDispute.objects.exists()


def test_a_paypal_dispute_holds_the_sellers_funds_and_a_loss_is_charged_to_the_seller(
    client, django_capture_on_commit_callbacks, paypal, buyer, seller, listing
):
    capture = django_capture_on_commit_callbacks
    order, payment = paid_order(client, capture, buyer, listing, "paypal")

    dispute_open(capture, payment)

    dispute = ProviderDispute.objects.get()
    assert dispute.account == paypal and dispute.provider_id.startswith("PP-D-")
    assert dispute.reason == "UNAUTHORISED" and dispute.outcome == "open"
    assert dispute.evidence_due_by and dispute.amount == order.amount
    assert seller_money(seller.pk)["held"] == order.seller_net_per_code
    assert ledger.balance(ledger.CHARGEBACKS) == order.amount and balanced()
    assert fraud_rate() == (1, 1)
    redeliver_everything(capture)
    assert ProviderDispute.objects.count() == 1

    dispute_close(capture, payment, won=False)

    dispute.refresh_from_db()
    assert dispute.outcome == "lost" and dispute.status == "RESOLVED:RESOLVED_BUYER_FAVOUR"
    assert seller_money(seller.pk) == {"pending": 0, "available": 0, "held": 0}
    assert ledger.balance(ledger.CHARGEBACKS) == 0 and balanced()


def test_a_tampered_paypal_dispute_is_refused(
    client, django_capture_on_commit_callbacks, paypal, buyer, listing
):
    capture = django_capture_on_commit_callbacks
    _order, payment = paid_order(client, capture, buyer, listing, "paypal")
    trade = trade_of(payment)
    SandboxTrade.objects.filter(pk=trade.pk).update(notify_url="")
    sandbox.provider("paypal").dispute_open(trade)  # queued nowhere: no notify URL
    from payments.sandbox.paypal import disputes as sandbox_disputes
    from payments.sandbox.paypal.certificates import signature_headers
    from payments.sandbox.paypal.webhooks import event_body

    trade.refresh_from_db()
    resource = sandbox_disputes.dispute_json(trade)
    body = event_body("CUSTOMER.DISPUTE.CREATED", "dispute", "x", resource)
    merchant = sandbox.provider("paypal").merchant(trade.merchant_id)
    headers = signature_headers(merchant.config["webhook_id"], body)
    resource["dispute_amount"]["value"] = "1.00"
    tampered = event_body("CUSTOMER.DISPUTE.CREATED", "dispute", "x", resource)
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    response = client.post(
        f"/payments/notify/{paypal.code}/", tampered, content_type="application/json", **extra
    )
    assert response.status_code == 400
    assert not ProviderDispute.objects.exists()
    # the genuine one is applied
    response = client.post(
        f"/payments/notify/{paypal.code}/", body, content_type="application/json", **extra
    )
    assert response.status_code == 200 and ProviderDispute.objects.count() == 1
    assert json.loads(body)["resource"]["dispute_id"] == ProviderDispute.objects.get().provider_id


@pytest.mark.parametrize("group", ["Finance", "Support"])
def test_finance_and_support_see_the_provider_disputes_in_admin(
    client, django_capture_on_commit_callbacks, card, buyer, listing, group
):
    from tests.accounts.factories import UserFactory

    capture = django_capture_on_commit_callbacks
    order, payment = paid_order(client, capture, buyer, listing, "card")
    dispute_open(capture, payment)
    dispute = ProviderDispute.objects.get()
    client.force_login(UserFactory(username=f"staff-{group}", is_staff=True, groups=[group]))
    page = client.get("/admin/payments/providerdispute/")
    assert page.status_code == 200
    assert dispute.provider_id.encode() in page.content and order.number.encode() in page.content
    detail = client.get(f"/admin/payments/providerdispute/{dispute.pk}/change/")
    assert detail.status_code == 200
    # read-only: the channel's notices keep it up to date, staff cannot change it
    assert client.post(f"/admin/payments/providerdispute/{dispute.pk}/delete/").status_code == 403


def test_the_simulators_admin_action_raises_the_dispute(
    client, django_capture_on_commit_callbacks, card, buyer, listing
):
    from tests.accounts.factories import UserFactory

    capture = django_capture_on_commit_callbacks
    _order, payment = paid_order(client, capture, buyer, listing, "card")
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    trade = trade_of(payment)
    with capture(execute=True):
        response = client.post(
            "/admin/sandbox/sandboxtrade/",
            {"action": "open_dispute", "_selected_action": [trade.pk]},
        )
    assert response.status_code == 302
    assert ProviderDispute.objects.get().outcome == "open"
    with capture(execute=True):
        client.post(
            "/admin/sandbox/sandboxtrade/",
            {"action": "close_dispute_won", "_selected_action": [trade.pk]},
        )
    assert ProviderDispute.objects.get().outcome == "won"


def test_the_seller_sees_the_held_money_on_their_dashboard(
    client, django_capture_on_commit_callbacks, card, buyer, seller, listing
):
    capture = django_capture_on_commit_callbacks
    order, payment = paid_order(client, capture, buyer, listing, "card")
    client.force_login(seller)
    assert b'data-testid="balance-held"' not in client.get("/sell/").content
    dispute_open(capture, payment)
    page = client.get("/sell/").content.decode()
    assert 'data-testid="balance-held"' in page and f"{order.seller_net_per_code}" in page


def test_an_inquiry_holds_the_sellers_money_but_moves_none_until_it_becomes_a_chargeback(
    client, django_capture_on_commit_callbacks, card, buyer, seller, listing
):
    from payments.channels.base import DisputeFacts, Notice
    from payments.services import notice_apply

    capture = django_capture_on_commit_callbacks
    order, payment = paid_order(client, capture, buyer, listing, "card")
    attempt = payment.attempts.get()

    def notice(status: str, outcome: str, withdrawn: bool) -> Notice:
        return Notice(
            kind="dispute",
            out_trade_no="",
            outcome="pending",
            amount=order.amount,
            currency=order.currency,
            channel_trade_no=attempt.channel_trade_no,
            dispute=DisputeFacts(
                dispute_id="dp_inquiry", status=status, outcome=outcome, funds_withdrawn=withdrawn
            ),
        )

    def apply(*state) -> str:
        return notice_apply(account=card, notice=notice(*state))[0]

    assert apply("warning_needs_response", "open", False) == "applied"
    assert ledger.balance(ledger.CHARGEBACKS) == 0  # an inquiry: the channel took nothing
    assert seller_money(seller.pk)["held"] == order.seller_net_per_code
    # escalated to a chargeback: now the amount is withdrawn, once
    assert apply("needs_response", "open", True) == "applied"
    assert apply("needs_response", "open", True) == "duplicate"
    assert ledger.balance(ledger.CHARGEBACKS) == order.amount and balanced()
    # won: everything back where it was
    assert apply("won", "won", True) == "applied"
    assert ledger.balance(ledger.CHARGEBACKS) == 0
    assert seller_money(seller.pk) == {
        "pending": order.seller_net_per_code,
        "available": 0,
        "held": 0,
    }
    # a late copy of an earlier state changes nothing on a closed dispute
    assert apply("needs_response", "open", True) == "duplicate"
    assert ProviderDispute.objects.get().outcome == "won" and balanced()


def test_a_dispute_fee_the_channel_returns_on_a_win_comes_back(
    client, django_capture_on_commit_callbacks, card, buyer, listing
):
    from payments.channels.base import DisputeFacts, Notice
    from payments.services import notice_apply

    order, payment = paid_order(client, django_capture_on_commit_callbacks, buyer, listing, "card")
    attempt = payment.attempts.get()
    receivable, fees = (
        ledger.balance(ledger.channel_receivable(card.code)),
        ledger.balance(ledger.channel_fees(card.code)),
    )

    def apply(status: str, outcome: str, fee: str | None) -> str:
        facts = DisputeFacts(
            dispute_id="dp_fee",
            status=status,
            outcome=outcome,
            fee=None if fee is None else Decimal(fee),
        )
        notice = Notice(
            kind="dispute",
            out_trade_no="",
            outcome="pending",
            amount=order.amount,
            currency=order.currency,
            channel_trade_no=attempt.channel_trade_no,
            dispute=facts,
        )
        return notice_apply(account=card, notice=notice)[0]

    assert apply("needs_response", "open", "15.00") == "applied"
    assert ledger.balance(ledger.channel_fees(card.code)) == fees + Decimal("15.00")
    assert apply("under_review", "open", None) == "applied"  # says nothing of the fee
    assert ProviderDispute.objects.get().fee == Decimal("15.00")
    assert apply("won", "won", "0.00") == "applied"  # the reinstatement returned the fee
    assert ledger.balance(ledger.channel_receivable(card.code)) == receivable
    assert ledger.balance(ledger.channel_fees(card.code)) == fees
    assert ProviderDispute.objects.get().fee == 0 and balanced()


def test_a_chargeback_of_a_payment_charged_in_usd_moves_its_cny_value_and_holds_the_seller(
    client, django_capture_on_commit_callbacks, card, buyer, seller, listing
):
    from payments.models import FxRate

    capture = django_capture_on_commit_callbacks
    card.currencies = ["CNY", "USD"]
    card.save(update_fields=["currencies"])
    FxRate.objects.create(currency="USD", rate=Decimal("7.1375"), as_of=timezone.now())
    order = services.order_create(buyer=buyer, listing=listing, quantity=1)
    payment = services.order_pay(
        order=order,
        buyer=buyer,
        method="card",
        client=CLIENT,
        return_url="http://testserver/",
        charge_currency="USD",
    )
    attempt = payment.attempts.get()
    assert attempt.charge_currency == "USD" and attempt.charge_amount < order.amount
    with capture(execute=True):
        Payer(client).decide(attempt.action, "approve")
    payment.refresh_from_db()
    assert payment.status == "succeeded"

    dispute_open(capture, payment)

    dispute = ProviderDispute.objects.get()
    # recorded as the channel tells it, in the currency the buyer was charged in
    assert (dispute.amount, dispute.currency) == (attempt.charge_amount, "USD")
    # the journal moves its CNY value at the capture's rate and stays balanced in CNY
    withdrawn = (attempt.charge_amount * Decimal("7.1375")).quantize(Decimal("0.01"))
    assert ledger.balance(ledger.CHARGEBACKS) == withdrawn and balanced()
    # the seller's whole share of the order is held (a whole dispute is the whole price)
    assert seller_money(seller.pk)["held"] == order.seller_net_per_code

    dispute_close(capture, payment, won=False)

    assert ledger.balance(ledger.CHARGEBACKS) == 0 and balanced()
    assert seller_money(seller.pk) == {"pending": 0, "available": 0, "held": 0}
    # what the seller and the commission covered is the CNY price; the rest is conversion
    assert ledger.balance(ledger.CHARGEBACK_LOSSES) == withdrawn - order.amount


def test_a_simulator_without_disputes_refuses_to_raise_one_and_sends_nothing(
    client, django_capture_on_commit_callbacks, buyer, listing
):
    sandbox_account("alipay")
    capture = django_capture_on_commit_callbacks
    _order, payment = paid_order(client, capture, buyer, listing, "alipay")
    trade = trade_of(payment)
    provider = sandbox.provider(trade.channel)
    sent = SandboxNotification.objects.count()
    assert not provider.supports_disputes
    with pytest.raises(sandbox.DisputeRefused, match="raises no disputes"):
        provider.dispute_open(trade)
    with pytest.raises(sandbox.DisputeRefused, match="raises no disputes"):
        provider.dispute_close(trade, won=True)
    assert SandboxNotification.objects.count() == sent and not ProviderDispute.objects.exists()
