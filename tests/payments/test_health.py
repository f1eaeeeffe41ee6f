"""Channel health: the circuit breaker (pure, in-memory) and the database store behind
payments.health.route / health_record."""

import json
import logging
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from payments.routing import CandidateAccount, InMemoryHealthStore, Router

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
AMOUNT = Decimal("100.00")


def acct(code: str, **fields) -> CandidateAccount:
    return CandidateAccount(
        code=code, methods=frozenset({"alipay"}), fee_percent=Decimal("0.60"), **fields
    )


def record(router: Router, code: str, outcome: str, at: datetime, **kw) -> None:
    router.record_outcome(code, "alipay", AMOUNT, outcome, at, **kw)


def rank(router: Router, accounts, at: datetime, seed: int = 1):
    return router.rank(
        accounts, method="alipay", amount=AMOUNT, currency="CNY", now=at, rng=random.Random(seed)
    )


def transitions(store: InMemoryHealthStore) -> list[tuple[str, str, str]]:
    return [(e.code, e.transition.from_state, e.transition.to_state) for e in store.events]


@pytest.fixture
def store() -> InMemoryHealthStore:
    return InMemoryHealthStore()


@pytest.fixture
def router(store) -> Router:
    return Router(store)


def burst(router: Router, code: str = "a", at: datetime = T0, n: int = 5) -> datetime:
    """A burst of errors/timeouts, one a second; returns the time of the last one."""
    for i in range(n):
        record(router, code, "timeout" if i % 2 else "error", at + timedelta(seconds=i))
    return at + timedelta(seconds=n - 1)


# --- the breaker opens ----------------------------------------------------------------------------


def test_a_burst_of_errors_and_timeouts_opens_the_breaker(router, store):
    burst(router)
    assert store.states["a"].breaker == "open"
    assert transitions(store) == [("a", "closed", "open")]
    assert "5 errors/timeouts in the last 5 attempts" in store.events[0].transition.reason


def test_scattered_errors_among_successes_do_not_open_the_breaker(router, store):
    at = T0
    for i in range(100):
        record(router, "a", "error" if i % 4 == 0 else "succeeded", at)
        at += timedelta(seconds=5)
    assert store.states["a"].breaker == "closed"
    assert store.events == []


def test_channel_side_declines_do_not_open_the_breaker(router, store):
    for i in range(30):
        record(router, "a", "failed", T0 + timedelta(seconds=i))
    assert store.states["a"].breaker == "closed"


def test_an_open_account_is_left_out_with_the_time_it_may_be_probed(router):
    last = burst(router)
    decision = rank(router, [acct("a"), acct("b")], last + timedelta(seconds=1))
    assert decision.order == ("b",)
    assert decision.candidate("a").excluded == "breaker open until 2026-03-01 12:00:34 UTC"
    assert decision.candidate("a").breaker == "open"


# --- half-open probing ----------------------------------------------------------------------------


def test_after_the_cool_down_one_probe_attempt_goes_first(router, store):
    last = burst(router)
    decision = rank(router, [acct("b"), acct("a")], last + timedelta(seconds=30))
    assert decision.order[0] == "a"
    assert decision.candidate("a").note == "probe: breaker half-open"
    assert decision.approach == "explore"
    assert "b" in decision.order  # failover still has somewhere to go
    assert transitions(store)[-1] == ("a", "open", "half_open")


def test_only_one_probe_is_in_flight_at_a_time(router):
    last = burst(router)
    rank(router, [acct("a"), acct("b")], last + timedelta(seconds=30))
    second = rank(router, [acct("a"), acct("b")], last + timedelta(seconds=31))
    assert second.order == ("b",)
    assert second.candidate("a").excluded == "breaker half-open: waiting for the probe's result"
    # A probe whose result never comes does not block probing for ever.
    third = rank(router, [acct("a"), acct("b")], last + timedelta(seconds=41))
    assert third.order[0] == "a"


def test_successful_probes_close_the_breaker(router, store):
    at = burst(router) + timedelta(seconds=30)
    for _ in range(3):
        assert rank(router, [acct("a"), acct("b")], at).winner == "a"
        record(router, "a", "succeeded", at)
        at += timedelta(seconds=1)
    assert store.states["a"].breaker == "closed"
    assert transitions(store) == [
        ("a", "closed", "open"),
        ("a", "open", "half_open"),
        ("a", "half_open", "closed"),
    ]
    assert store.events[-1].transition.reason == "3 probe attempts succeeded"


@pytest.mark.parametrize("outcome", ["timeout", "error", "failed"])
def test_a_failed_probe_reopens_the_breaker_with_a_doubled_cool_down(router, store, outcome):
    at = burst(router) + timedelta(seconds=30)
    rank(router, [acct("a")], at)
    record(router, "a", outcome, at)
    assert store.states["a"].breaker == "open"
    assert store.states["a"].cooldown == 60
    assert f"probe attempt ended {outcome}; cool-down 60s" in store.events[-1].transition.reason


def test_the_cool_down_stops_growing_at_its_maximum(router, store):
    at = burst(router)
    for _ in range(8):
        at += timedelta(seconds=store.states["a"].cooldown)
        rank(router, [acct("a")], at)
        record(router, "a", "timeout", at)
    assert store.states["a"].cooldown == 600


def test_a_buyer_decline_during_a_probe_frees_the_slot_without_judging_the_channel(router, store):
    at = burst(router) + timedelta(seconds=30)
    rank(router, [acct("a"), acct("b")], at)
    record(router, "a", "declined", at)
    assert store.states["a"].breaker == "half_open"
    assert rank(router, [acct("a"), acct("b")], at + timedelta(seconds=1)).order[0] == "a"


def test_degraded_when_every_candidate_is_unhealthy(router):
    burst(router, "a")
    last = burst(router, "b")
    decision = rank(
        router, [acct("a"), acct("b"), acct("off", enabled=False)], last + timedelta(seconds=1)
    )
    assert decision.approach == "degraded"
    assert set(decision.order) == {"a", "b"}  # tried anyway rather than refusing the buyer
    assert decision.candidate("off").excluded == "disabled"


def test_outcomes_during_an_outage_teach_the_breaker_not_the_success_estimate(router):
    at = T0
    for i in range(200):
        record(router, "a", "failed" if i % 10 == 0 else "succeeded", at)
        at += timedelta(seconds=1)
    before = rank(router, [acct("a")], at).candidate("a").estimate
    at = burst(router, at=at)
    estimate_after_burst = rank(router, [acct("a"), acct("b")], at).candidate("b").estimate
    for i in range(20):  # late outcomes while open: breaker ignores them, estimates too
        record(router, "a", "timeout", at + timedelta(seconds=i))
    reopened = rank(router, [acct("a")], at + timedelta(seconds=20)).candidate("a")
    assert reopened.breaker == "open"
    assert estimate_after_burst is not None
    assert reopened.estimate is not None and before - reopened.estimate < 0.05


def test_notification_delay_is_smoothed_and_slow_notices_are_counted(router, store):
    record(router, "a", "succeeded", T0, delay=10.0)
    record(router, "a", "succeeded", T0, delay=timedelta(minutes=5))
    state = store.states["a"]
    assert state.notify_delay == pytest.approx(0.8 * 10 + 0.2 * 300)
    assert state.slow_notices == 1
    summary = state.summary(T0.timestamp(), router.config)
    assert summary["notify_delay_seconds"] == pytest.approx(68.0)
    assert summary["counts"] == {"succeeded": 2}


# --- the database store and the platform's calls --------------------------------------------------


@pytest.fixture
def accounts(db):
    from payments.models import ChannelAccount

    def make(code, **fields):
        fields.setdefault("methods", ["alipay"])
        return ChannelAccount.objects.create(
            code=code, name=code, backend="alipay", base_url="http://sandbox.invalid/", **fields
        )

    return make


@pytest.mark.django_db
def test_health_record_keeps_the_accounts_state_in_channel_health(accounts):
    from payments import health
    from payments.models import ChannelHealth

    account = accounts("ali")
    health.health_record(account, "alipay", AMOUNT, "succeeded", delay_seconds=12.5)
    health.health_record("ali", "alipay", AMOUNT, "failed")
    row = ChannelHealth.objects.get(account=account)
    assert row.breaker == "closed" and row.opened_at is None
    assert row.state["counts"] == {"succeeded": 1, "failed": 1}
    assert row.state["notify_delay"] == 12.5
    assert set(row.state["estimates"]) == {"alipay:0-200"}


@pytest.mark.django_db
def test_a_breaker_transition_is_written_as_a_breaker_event_and_logged(accounts, caplog):
    from payments import health
    from payments.models import BreakerEvent, ChannelHealth

    account = accounts("ali")
    with caplog.at_level(logging.WARNING, logger="payments.health"):
        for _ in range(5):
            health.health_record(account, "alipay", AMOUNT, "timeout")
    row = ChannelHealth.objects.get(account=account)
    assert row.breaker == "open" and row.opened_at is not None
    event = BreakerEvent.objects.get(account=account)
    assert (event.from_state, event.to_state) == ("closed", "open")
    assert "5 errors/timeouts" in event.reason
    assert "channel ali breaker closed -> open" in caplog.text


@pytest.mark.django_db
def test_route_ranks_the_enabled_accounts_serving_the_method(accounts):
    from payments import health

    accounts("ali-1")
    accounts("ali-2", fee_percent=Decimal("0.38"))
    accounts("ali-off", enabled=False)
    accounts("wx", methods=["wechatpay"])
    decision = health.route("alipay", AMOUNT, "CNY", rng=random.Random(3))
    assert set(decision.order) == {"ali-1", "ali-2"}
    assert {c.code for c in decision.candidates} == {"ali-1", "ali-2"}


@pytest.mark.django_db
def test_route_leaves_out_the_accounts_already_tried(accounts):
    from payments import health

    accounts("ali-1")
    accounts("ali-2")
    decision = health.route("alipay", AMOUNT, "CNY", exclude_codes=["ali-1"], rng=random.Random(3))
    assert decision.order == ("ali-2",)
    assert decision.candidate("ali-1").excluded == "already tried for this payment"


@pytest.mark.django_db
def test_route_counts_todays_open_and_succeeded_attempts_against_a_daily_cap(accounts):
    from payments import health
    from payments.models import Attempt
    from tests.payments.factories import PaymentFactory

    capped = accounts("capped", daily_cap=Decimal("250.00"))
    accounts("spare")
    payment = PaymentFactory(amount=Decimal("100.00"))
    for status in ("succeeded", "pending", "failed"):
        Attempt.objects.create(
            payment=payment,
            account=capped,
            method="alipay",
            amount=Decimal("100.00"),
            status=status,
        )
    decision = health.route("alipay", Decimal("60.00"), "CNY", rng=random.Random(3))
    assert decision.order == ("spare",)
    assert decision.candidate("capped").excluded == "daily cap 250.00 reached (200.00 used today)"
    assert (
        health.route("alipay", Decimal("50.00"), "CNY", rng=random.Random(3))
        .candidate("capped")
        .excluded
        == ""
    )


@pytest.mark.django_db
def test_route_uses_the_days_volume_the_caller_passes(accounts):
    from payments import health

    accounts("capped", daily_cap=Decimal("250.00"))
    decision = health.route(
        "alipay", AMOUNT, "CNY", day_volume={"capped": Decimal("200.00")}, rng=random.Random(3)
    )
    assert decision.order == ()


@pytest.mark.django_db
def test_route_sends_one_probe_to_a_half_open_account_and_records_it(accounts, settings):
    from payments import health
    from payments.models import BreakerEvent, ChannelHealth

    settings.PAYMENTS_ROUTING = {"cooldown_seconds": 0.0}
    account = accounts("ali")
    accounts("ali-2")
    for _ in range(5):
        health.health_record(account, "alipay", AMOUNT, "error")
    assert health.breaker_states(["ali", "ali-2"]) == {"ali": "half_open", "ali-2": "closed"}
    decision = health.route("alipay", AMOUNT, "CNY", rng=random.Random(3))
    assert decision.order[0] == "ali" and decision.approach == "explore"
    assert ChannelHealth.objects.get(account=account).breaker == "half_open"
    assert list(
        BreakerEvent.objects.filter(account=account)
        .order_by("id")
        .values_list("to_state", flat=True)
    ) == [
        "open",
        "half_open",
    ]


@pytest.mark.django_db
def test_a_decision_is_stored_on_the_attempt_as_json(accounts):
    from payments import health
    from payments.models import Attempt
    from tests.payments.factories import PaymentFactory

    account = accounts("ali")
    decision = health.route("alipay", AMOUNT, "CNY", rng=random.Random(3))
    attempt = Attempt.objects.create(
        payment=PaymentFactory(),
        account=account,
        method="alipay",
        amount=AMOUNT,
        routing=decision.as_dict(),
    )
    attempt.refresh_from_db()
    assert attempt.routing == json.loads(json.dumps(decision.as_dict()))
    assert attempt.routing["winner"] == "ali"


@pytest.mark.django_db
def test_health_summary_shows_staff_the_breaker_and_smoothed_success(accounts):
    from payments import health

    account = accounts("ali")
    for outcome in ["succeeded"] * 9 + ["failed"]:
        health.health_record(account, "alipay", AMOUNT, outcome)
    summary = health.health_summary(account)
    assert summary["breaker"] == "closed"
    assert summary["success"]["alipay:0-200"]["success"] == pytest.approx(10 / 12, abs=0.01)
    assert summary["counts"] == {"succeeded": 9, "failed": 1}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_outcomes_of_one_account_are_all_counted(accounts):
    """Outcomes arrive from many workers at once; the row lock folds them in one by one."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from payments import health
    from payments.models import ChannelHealth

    account = accounts("ali")
    health.health_record(account, "alipay", AMOUNT, "succeeded")  # the row exists

    def worker(n: int) -> None:
        try:
            for i in range(n):
                health.health_record(
                    "ali", "alipay", AMOUNT, "failed" if i % 5 == 0 else "succeeded"
                )
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(worker, [25] * 4))
    counts = ChannelHealth.objects.get(account=account).state["counts"]
    assert counts["succeeded"] + counts["failed"] == 101


# --- outcomes reported by notifications, folded in by a worker -----------------------------------


def test_outcomes_fold_in_order_and_the_clock_never_runs_backwards(store):
    from payments.routing import ObservedOutcome, RoutingConfig, apply_outcomes

    router = Router(store)
    opened = burst(router)
    state = store.load(["a"])["a"]
    probe_at = opened + timedelta(seconds=RoutingConfig().cooldown_seconds + 1)
    late = ObservedOutcome(
        method="alipay", amount=AMOUNT, outcome="succeeded", at=probe_at.timestamp(), delay=3.0
    )
    stale = ObservedOutcome(
        method="alipay", amount=AMOUNT, outcome="declined", at=T0.timestamp() - 60
    )

    state, moved = apply_outcomes(state, [late, stale], RoutingConfig())

    assert (
        state.last_outcome_at == probe_at.timestamp()
    )  # the stale one counted "now", not in the past
    assert state.counts["succeeded"] == 1 and state.counts["declined"] == 1
    assert [(t.from_state, t.to_state) for t in moved] == [
        ("open", "half_open")
    ]  # the probe's success, in its time


@pytest.fixture
def fake_account(db):
    from payments.models import ChannelAccount
    from tests.payments.fakes import FakeBackend

    FakeBackend.reset()
    yield ChannelAccount.objects.create(
        code="fa",
        name="fa",
        backend="fake",
        methods=["alipay"],
        fee_percent=Decimal("0.60"),
        base_url="https://fake.example/",
        merchant_id="M1",
    )
    FakeBackend.reset()


def pending_payment(reference: str = "test:H1"):
    from django.utils import timezone

    from payments import services
    from payments.channels.base import ClientInfo
    from tests.accounts.factories import UserFactory

    return services.payment_start(
        buyer=UserFactory(),
        reference=reference,
        amount=AMOUNT,
        currency="CNY",
        method="alipay",
        subject="H1",
        client=ClientInfo(ip="10.0.0.1"),
        return_url="",
        expires_at=timezone.now() + timedelta(minutes=15),
    )


def notify(client, out_trade_no: str, outcome: str = "succeeded", **extra):
    from tests.payments.fakes import notification

    body, headers = notification(out_trade_no, "100.00", outcome, merchant_id="M1", **extra)
    return client.post("/payments/notify/fa/", body, content_type="application/json", **headers)


def test_a_notified_success_reaches_health_once_however_often_it_is_folded(
    client, fake_account, django_capture_on_commit_callbacks
):
    from payments import health
    from payments.models import ChannelHealth, Notification

    out_trade_no = pending_payment().attempts.get().out_trade_no
    with django_capture_on_commit_callbacks(execute=True):  # the worker's fold, a second later
        assert notify(client, out_trade_no).status_code == 200
        assert notify(client, out_trade_no).status_code == 200  # the channel's retry
    assert health.health_fold() == 0  # nothing left: the beat's fold finds nothing to add

    applied, repeat = Notification.objects.order_by("pk")
    assert (applied.health_outcome, repeat.health_outcome) == ("succeeded", "")
    assert applied.health_folded_at is not None
    state = ChannelHealth.objects.get(account=fake_account).state
    assert state["counts"] == {"succeeded": 1}
    assert state["notify_delay"] is not None


def test_a_declined_notice_tells_health_it_was_the_buyer_not_the_channel(
    client, fake_account, django_capture_on_commit_callbacks
):
    from payments.models import ChannelHealth, Notification

    out_trade_no = pending_payment().attempts.get().out_trade_no
    with django_capture_on_commit_callbacks(execute=True):
        assert notify(client, out_trade_no, "failed", error_code="NO_MONEY").status_code == 200
    assert Notification.objects.get().health_outcome == "declined"
    assert ChannelHealth.objects.get(account=fake_account).state["counts"] == {"declined": 1}


def test_until_the_fold_runs_the_outcome_waits_on_its_notification(client, fake_account):
    from payments import health
    from payments.models import ChannelHealth, Notification

    out_trade_no = pending_payment().attempts.get().out_trade_no
    assert (
        notify(client, out_trade_no).status_code == 200
    )  # the test's transaction never commits: no fold queued
    assert not ChannelHealth.objects.filter(
        account=fake_account, state__counts__succeeded=1
    ).exists()
    assert health.pending_outcomes().count() == 1

    assert health.health_fold() == 1
    assert ChannelHealth.objects.get(account=fake_account).state["counts"] == {"succeeded": 1}
    assert Notification.objects.get().health_folded_at is not None


def test_one_fold_is_queued_per_window_however_many_notices_arrive(monkeypatch, db):
    from django.core.cache import cache

    from payments import health, tasks

    queued = []
    monkeypatch.setattr(tasks.fold_health, "apply_async", lambda **kw: queued.append(kw))
    cache.delete(health.FOLD_DUE_KEY)
    for _ in range(3):
        health.fold_soon()
    assert queued == [{"countdown": health.FOLD_DELAY_SECONDS}]

    cache.delete(health.FOLD_DUE_KEY)  # the window is over (the key lives as long as the countdown)
    health.fold_soon()
    assert len(queued) == 2
    cache.delete(health.FOLD_DUE_KEY)


def test_a_broker_outage_leaves_the_outcome_for_the_beats_fold(monkeypatch, db, caplog):
    from django.core.cache import cache

    from payments import health, tasks

    def down(**kw):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(tasks.fold_health, "apply_async", down)
    cache.delete(health.FOLD_DUE_KEY)
    with caplog.at_level(logging.ERROR, logger="payments.health"):
        health.fold_soon()  # does not raise into the notification's response
    assert "could not queue the channel health fold" in caplog.text
    assert cache.get(health.FOLD_DUE_KEY) is None  # the next notice tries again


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_folds_count_each_outcome_once(client, fake_account, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from payments import health, services
    from payments.channels.base import Notice
    from payments.models import ChannelHealth, Notification

    monkeypatch.setattr(health, "fold_soon", lambda: None)  # the outcomes wait for the folds below
    for i in range(15):  # more from one address in a row and risk asks for a code
        attempt = pending_payment(f"test:H{i}").attempts.get()
        note = Notification.objects.create(account=fake_account, channel_code="fa", body=b"{}")
        services.notice_apply(
            account=fake_account,
            notification=note,
            notice=Notice(
                kind="payment",
                out_trade_no=attempt.out_trade_no,
                outcome="succeeded",
                amount=AMOUNT,
                currency="CNY",
            ),
        )

    def fold(_):
        try:
            return health.health_fold(batch=4)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=3) as pool:
        folded = sum(pool.map(fold, range(3)))
    assert folded == 15
    assert ChannelHealth.objects.get(account=fake_account).state["counts"]["succeeded"] == 15


@pytest.mark.django_db
def test_a_fresh_install_routes_alipay_to_the_direct_account_not_an_aggregator():
    from payments import health
    from payments.sandbox.provisioning import demo_channels_ensure

    demo_channels_ensure()
    decisions = [
        health.route("alipay", Decimal("97.00"), "CNY", rng=random.Random(s)) for s in range(50)
    ]
    assert {d.order for d in decisions} == {("alipay", "bank-polypay", "aggregator")}


@pytest.mark.django_db
def test_when_direct_alipay_keeps_failing_routing_moves_to_the_bank_aggregator():
    from payments import health
    from payments.sandbox.provisioning import demo_channels_ensure

    demo_channels_ensure()
    for _ in range(3):  # each failure at direct Alipay failed over to the bank, which paid
        health.health_record("alipay", "alipay", AMOUNT, "failed")
        health.health_record("bank-polypay", "alipay", AMOUNT, "succeeded")
    decisions = [health.route("alipay", AMOUNT, "CNY", rng=random.Random(s)) for s in range(50)]
    assert {d.winner for d in decisions} == {"bank-polypay"}


@pytest.mark.django_db
def test_inside_wechat_wechat_pay_is_routed_only_to_an_account_that_pays_there():
    """A bank's aggregated QR for WeChat Pay cannot be paid inside WeChat's own browser, so
    there it is no failover for the direct account's JSAPI; elsewhere, and for the other
    methods inside WeChat, routing is unchanged."""
    from payments import health
    from payments.sandbox.provisioning import demo_channels_ensure

    demo_channels_ensure()
    inside = health.route("wechatpay", AMOUNT, "CNY", rng=random.Random(1), in_app="wechat")
    assert inside.order == ("wechatpay",)
    tried = health.route("wechatpay", AMOUNT, "CNY", exclude_codes=["wechatpay"], in_app="wechat")
    assert tried.winner is None
    outside = health.route("wechatpay", AMOUNT, "CNY", rng=random.Random(1))
    assert set(outside.order) == {"wechatpay", "bank-polypay"}
    assert "bank-polypay" in health.route("alipay", AMOUNT, "CNY", in_app="alipay").order
