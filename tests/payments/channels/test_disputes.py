"""The card and PayPal dispute parsers: a signed ``charge.dispute.*`` event or a
``CUSTOMER.DISPUTE.*`` resource becomes a dispute notice; what is not a dispute of ours, or
has a status the channel does not document, is refused."""

import json
import time

import pytest

from payments.accounts import backend_for
from payments.channels.base import NotificationRejected
from payments.channels.card.wire import signature_header
from payments.channels.paypal.disputes import dispute_notice as paypal_dispute_notice
from tests.payments.factories import sandbox_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def card():
    return backend_for(sandbox_account("card", merchant_id="acct_1DisputeTEST001", currency="USD"))


def _event(event_type: str, **dispute) -> dict:
    obj = {
        "id": "dp_1",
        "object": "dispute",
        "amount": 8800,
        "currency": "usd",
        "payment_intent": "pi_1",
        "reason": "fraudulent",
        "status": "needs_response",
        "evidence_details": {"due_by": int(time.time()) + 86400},
        "balance_transactions": [{"amount": -8800, "fee": 1500}],
        **dispute,
    }
    return {
        "id": "evt_1",
        "object": "event",
        "type": event_type,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": obj},
    }


def _parse(card, event: dict):
    body = json.dumps(event).encode()
    header = signature_header(card.account.credentials["webhook_secret"], body)
    return card.parse_notification(headers={"Stripe-Signature": header}, body=body)


def test_a_card_dispute_event_is_a_dispute_notice(card):
    notice = _parse(card, _event("charge.dispute.created"))
    assert notice.kind == "dispute" and notice.channel_trade_no == "pi_1"
    assert str(notice.amount) == "88.00" and notice.currency == "USD"
    facts = notice.dispute
    assert (facts.dispute_id, facts.outcome, facts.reason) == ("dp_1", "open", "fraudulent")
    assert facts.funds_withdrawn and str(facts.fee) == "15.00" and facts.evidence_due_by


@pytest.mark.parametrize(
    ("status", "outcome", "withdrawn"),
    [
        ("warning_needs_response", "open", False),  # an inquiry: no money moved yet
        ("warning_closed", "closed", False),
        ("under_review", "open", True),
        ("won", "won", True),
        ("lost", "lost", True),
        ("charge_refunded", "closed", True),  # the refund carried the money back
    ],
)
def test_stripes_dispute_statuses(card, status, outcome, withdrawn):
    facts = _parse(card, _event("charge.dispute.updated", status=status)).dispute
    assert (facts.outcome, facts.funds_withdrawn) == (outcome, withdrawn)


def test_a_dispute_without_its_payment_intent_or_with_an_unknown_status_is_refused(card):
    with pytest.raises(NotificationRejected, match="payment_intent"):
        _parse(card, _event("charge.dispute.created", payment_intent=None))
    with pytest.raises(NotificationRejected, match="unknown status"):
        _parse(card, _event("charge.dispute.created", status="pending_magic"))


def test_a_card_dispute_signed_with_another_secret_is_refused(card):
    body = json.dumps(_event("charge.dispute.created")).encode()
    with pytest.raises(NotificationRejected, match="bad Stripe-Signature"):
        card.parse_notification(
            headers={"Stripe-Signature": signature_header("whsec_other", body)}, body=body
        )


def _resource(**fields) -> dict:
    resource = {
        "dispute_id": "PP-D-1234",
        "create_time": "2026-12-01T08:00:00Z",
        "update_time": "2026-12-02T08:00:00Z",
        "disputed_transactions": [
            {
                "seller_transaction_id": "3BC38643YC807283D",
                "custom": "CX20261201PP0001",
                "seller": {"merchant_id": "MERCHANT1"},
            }
        ],
        "reason": "UNAUTHORISED",
        "status": "WAITING_FOR_SELLER_RESPONSE",
        "dispute_amount": {"currency_code": "USD", "value": "88.00"},
        "seller_response_due_date": "2026-12-11T08:00:00Z",
    }
    resource.update(fields)
    return resource


def test_a_paypal_dispute_is_a_dispute_notice():
    notice = paypal_dispute_notice(_resource(), {}, merchant_id="MERCHANT1")
    assert notice.kind == "dispute" and notice.out_trade_no == "CX20261201PP0001"
    assert str(notice.amount) == "88.00" and notice.dispute.outcome == "open"
    assert notice.dispute.evidence_due_by.day == 11


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("RESOLVED_BUYER_FAVOUR", "lost"),
        ("RESOLVED_SELLER_FAVOUR", "won"),
        ("CANCELED_BY_BUYER", "closed"),
        ("ACCEPTED", "lost"),
    ],
)
def test_paypal_resolutions(code, outcome):
    resource = _resource(
        status="RESOLVED",
        dispute_outcome={
            "outcome_code": code,
            "amount_refunded": {"currency_code": "USD", "value": "80.00"},
        },
    )
    facts = paypal_dispute_notice(resource, {}, merchant_id="MERCHANT1").dispute
    assert facts.outcome == outcome and str(facts.lost_amount) == "80.00"


def test_a_paypal_dispute_of_another_merchant_or_no_order_of_ours_is_refused():
    with pytest.raises(NotificationRejected, match="not this account"):
        paypal_dispute_notice(_resource(), {}, merchant_id="MERCHANT2")
    bare = _resource(
        disputed_transactions=[{"seller_transaction_id": "X", "seller": {"merchant_id": "M"}}]
    )
    with pytest.raises(NotificationRejected, match="custom/invoice_number"):
        paypal_dispute_notice(bare, {}, merchant_id="")
    with pytest.raises(NotificationRejected, match="unknown status"):
        paypal_dispute_notice(_resource(status="PONDERING"), {}, merchant_id="MERCHANT1")


def test_the_fee_is_what_the_balance_transactions_say_net(card):
    returned = _event(
        "charge.dispute.closed",
        status="won",
        balance_transactions=[{"amount": -8800, "fee": 1500}, {"amount": 8800, "fee": -1500}],
    )
    assert str(_parse(card, returned).dispute.fee) == "0.00"
    assert (
        _parse(card, _event("charge.dispute.updated", balance_transactions=[])).dispute.fee is None
    )
