"""A payment decision is three queries whatever the history (bench/risk_bench.py measures the
time): the buyer's window of payments with the address's last hour; the keys' signals with
what the buyer shares with the seller; the stored assessment. Rules and lists come from
memory until staff edit them."""

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from payments.models import Payment
from payments.payables import PayableFacts
from payments.services.risk import HISTORY_WINDOW, _facts
from risk import engine, rulebook
from risk.logins import LoginFacts, login_assess
from risk.models import ListEntry, Rule
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db

CLIENT = {"ip": "203.0.113.9", "device_id": "d-known", "user_agent": "ua"}


def _payment(buyer, status="succeeded", **fields):
    return Payment.objects.create(
        reference=f"order:{uuid.uuid4().hex[:10]}",
        buyer=buyer,
        method="alipay",
        amount=Decimal("80.00"),
        status=status,
        client=fields.pop("client", CLIENT),
        **fields,
    )


def _decision(payment, seller):
    return engine.assess(_facts(payment, PayableFacts(seller_id=seller.pk)))


@pytest.fixture
def staff_rules():
    Rule.objects.create(
        name="big", reason_code="big", feature="amount", operator="gte", value="5", score=5
    )
    ListEntry.objects.create(kind="block", field="ip", value="198.51.100.1")


@pytest.mark.parametrize("history", [3, 30])
def test_a_payment_decision_takes_three_queries_whatever_the_history(
    django_assert_num_queries, staff_rules, history
):
    buyer, seller = UserFactory(), UserFactory()
    for _ in range(history):
        _payment(buyer)
    payment = _payment(buyer, status="created")
    _decision(payment, seller)  # warm: the rulebook, the buyer
    with django_assert_num_queries(3):
        result = _decision(payment, seller)
    assert "big" in result.reasons  # the cached staff rule still applies


def test_the_rulebook_is_read_once_and_again_after_an_edit(django_assert_max_num_queries):
    rulebook.current()
    with django_assert_max_num_queries(0):
        rulebook.current()
    Rule.objects.create(name="r", reason_code="r", feature="amount", operator="gte", value="1")
    assert [rule.name for rule in rulebook.current().rules] == ["r"]
    ListEntry.objects.create(kind="block", field="user", value="7")
    assert rulebook.current().lists[("user", "7")] == "block"
    Rule.objects.all().delete()
    assert rulebook.current().rules == ()


def test_a_block_listed_user_added_after_warming_is_blocked_at_once():
    buyer, seller = UserFactory(), UserFactory()
    payment = _payment(buyer, status="created")
    assert _decision(payment, seller).decision != "block"
    ListEntry.objects.create(kind="block", field="user", value=str(buyer.pk))
    assert _decision(payment, seller).decision == "block"


def test_the_buyer_history_read_is_the_latest_window_only():
    buyer, seller = UserFactory(), UserFactory()
    old = timezone.now() - dt.timedelta(days=400)
    first = _payment(buyer, client={**CLIENT, "device_id": "d-old"})
    Payment.objects.filter(pk=first.pk).update(created_at=old)
    for _ in range(HISTORY_WINDOW):
        _payment(buyer)
    payment = _payment(buyer, status="created", client={**CLIENT, "device_id": "d-old"})
    facts = _facts(payment, PayableFacts(seller_id=seller.pk))
    assert facts.good_orders == HISTORY_WINDOW  # the 400-day-old one is outside the window
    assert facts.new_device  # … so its device is not remembered as a known one


def _statements(captured) -> list[str]:
    """The queries, without the SAVEPOINT/RELEASE pair of a transaction nested in the test's
    (outside tests the decision's transaction is BEGIN/COMMIT, which are not queries)."""
    return [q["sql"] for q in captured.captured_queries if "SAVEPOINT" not in q["sql"]]


@pytest.mark.parametrize("history", [3, 30])
def test_a_log_in_decision_takes_at_most_three_queries_whatever_the_history(history):
    user = UserFactory()
    for _ in range(history):
        login_assess(LoginFacts(user_ref=str(user.pk), device="d-1", ip="203.0.113.9"))
    with CaptureQueriesContext(connection) as plain:
        login_assess(LoginFacts(user_ref=str(user.pk), device="d-1", ip="203.0.113.9"))
    with CaptureQueriesContext(connection) as flagged:
        login = login_assess(LoginFacts(user_ref=str(user.pk), device="d-2", ip="203.0.113.9"))
    assert login.reasons == ["login_new_device"]
    # history with the burst, then the log-in with its sightings (one statement on
    # PostgreSQL, a data-modifying WITH; two elsewhere)
    writes = 1 if connection.vendor == "postgresql" else 2
    assert len(_statements(plain)) == 1 + writes
    assert len(_statements(flagged)) == 1 + writes + 1  # … and the signal on the account


def test_the_address_velocity_counts_the_last_hour_from_that_address_only():
    buyer = UserFactory()
    for _ in range(3):
        _payment(UserFactory(), status="created")
    _payment(UserFactory(), client={**CLIENT, "ip": "198.51.100.1"})
    stale = _payment(UserFactory())
    Payment.objects.filter(pk=stale.pk).update(created_at=timezone.now() - dt.timedelta(hours=2))
    payment = _payment(buyer, status="created")
    assert _facts(payment, PayableFacts()).ip_payments_last_hour == 3


def test_another_processs_edit_is_seen_within_a_second(monkeypatch):
    from django.core.cache import cache

    book = rulebook.current()
    rule = Rule(name="elsewhere", reason_code="e", feature="amount", operator="gte", value="1")
    Rule.objects.bulk_create([rule])  # saved by another process: no signal here …
    cache.incr(rulebook.VERSION_KEY)  # … only its bump of the shared version
    assert rulebook.current() is book  # this second's copy
    monkeypatch.setattr(rulebook, "_checked_at", rulebook._checked_at - rulebook.CHECK_SECONDS)
    assert [r.name for r in rulebook.current().rules] == ["elsewhere"]


def test_a_decision_counting_a_sellers_small_new_buyers_still_takes_three_queries(
    django_assert_num_queries, staff_rules
):
    """The fan-in count rides on the query that links the buyer to the seller."""
    buyer, seller = UserFactory(), UserFactory()
    payment = _payment(buyer, status="created")
    facts = PayableFacts(seller_id=seller.pk, account_age_days=0, listing_age_days=0)
    engine.assess(_facts(payment, facts))
    with django_assert_num_queries(3):
        result = engine.assess(_facts(payment, facts))
    assert result.features["fan_in_candidate"] is True


def test_the_pipelined_decision_scores_what_the_step_by_step_one_does(
    django_assert_num_queries, staff_rules
):
    """``risk_decision`` sends the buyer's window and the keys' read together; the buyer's
    recent payment accounts reach the signal read as a subquery. Same features, same three
    statements."""
    from payments.services.risk import risk_decision
    from risk import history

    buyer, seller = UserFactory(), UserFactory()
    for _ in range(3):
        _payment(buyer)
    _payment(buyer, client={**CLIENT, "account_ref": "card-fp-1"})
    history.signal_record([("account", "card-fp-1")], reason=engine.CHARGEBACK)
    payment = _payment(buyer, status="created")
    facts = PayableFacts(seller_id=seller.pk)
    step_by_step = engine.assess(_facts(payment, facts), store=False)
    risk_decision(payment, facts)  # warm
    with django_assert_num_queries(3):
        pipelined = risk_decision(payment, facts)
    assert pipelined.features == step_by_step.features
    assert pipelined.features["chargeback_weight"] > 0  # the past card's signal was read
    assert pipelined.reasons == step_by_step.reasons


@pytest.mark.postgres
def test_the_address_last_hour_is_read_off_its_index_even_when_the_hour_holds_everything():
    """A flash sale: every payment in the table is from the last hour. The created_at index
    alone would then scan them all; the address index reads only the address's own."""
    from payments.services.risk import _buyer_window_query

    for n in range(300):
        _payment(UserFactory(), client={**CLIENT, "ip": f"198.51.100.{n % 250}"})
    payment = _payment(UserFactory(), status="created")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE payments_payment")
        sql, params = _buyer_window_query(payment, now=timezone.now())
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "payment_ip_recent" in plan
    assert "Seq Scan on payments_payment" not in plan
