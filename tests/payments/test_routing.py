"""The routing core (payments.routing): candidates, scoring, exploration, explainability.

Pure tests: an in-memory health store, a seeded RNG, simulated clocks — no database.
"""

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from payments.routing import (
    AccountHealth,
    CandidateAccount,
    Estimate,
    InMemoryHealthStore,
    Router,
    RoutingConfig,
    RoutingDecision,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CENT = Decimal("0.01")


def acct(code: str, **fields) -> CandidateAccount:
    fields.setdefault("methods", frozenset({"alipay"}))
    fields.setdefault("fee_percent", Decimal("0.60"))
    return CandidateAccount(code=code, **fields)


def teach(
    router: Router, code: str, *, successes: int, failures: int, amount="100.00", start=T0
) -> datetime:
    """Feed interleaved outcomes, one a second; returns the time after the last one."""
    total = successes + failures
    now = start
    for i in range(total):
        # Spread failures evenly so no burst looks like a change.
        failed = (i * failures) // total != ((i + 1) * failures) // total
        router.record_outcome(
            code, "alipay", Decimal(amount), "failed" if failed else "succeeded", now
        )
        now += timedelta(seconds=1)
    return now


def rank(router: Router, accounts, *, amount="100.00", now=T0, seed=1, **kw) -> RoutingDecision:
    return router.rank(
        accounts,
        method="alipay",
        amount=Decimal(amount),
        currency="CNY",
        now=now,
        rng=random.Random(seed),
        **kw,
    )


@pytest.fixture
def router() -> Router:
    return Router(InMemoryHealthStore())


# --- candidates ---------------------------------------------------------------------------------


def test_accounts_not_serving_the_method_are_excluded_with_the_reason(router):
    decision = rank(router, [acct("ali"), acct("wx", methods=frozenset({"wechatpay"}))])
    assert decision.order == ("ali",)
    assert decision.candidate("wx").excluded == "does not serve alipay"


def test_disabled_accounts_are_excluded(router):
    decision = rank(router, [acct("on"), acct("off", enabled=False)])
    assert decision.order == ("on",)
    assert decision.candidate("off").excluded == "disabled"


def test_amount_outside_an_accounts_limits_excludes_it(router):
    accounts = [
        acct("small", max_amount=Decimal("50.00")),
        acct("big", min_amount=Decimal("500.00")),
        acct("any"),
    ]
    decision = rank(router, accounts, amount="100.00")
    assert decision.order == ("any",)
    assert "maximum of 50.00" in decision.candidate("small").excluded
    assert "minimum of 500.00" in decision.candidate("big").excluded


def test_an_account_settling_in_another_currency_is_excluded(router):
    decision = rank(router, [acct("cny"), acct("usd", currency="USD")])
    assert decision.order == ("cny",)
    assert decision.candidate("usd").excluded == "settles in USD, not CNY"


def test_daily_cap_counts_the_days_volume_passed_in(router):
    capped = acct("capped", daily_cap=Decimal("1000.00"))
    fits = rank(router, [capped], amount="100.00", day_volume={"capped": Decimal("900.00")})
    over = rank(router, [capped], amount="100.01", day_volume={"capped": Decimal("900.00")})
    assert fits.order == ("capped",)
    assert over.order == ()
    assert over.candidate("capped").excluded == "daily cap 1000.00 reached (900.00 used today)"


def test_already_tried_accounts_are_excluded_so_failover_walks_the_rest(router):
    accounts = [acct("a"), acct("b"), acct("c")]
    first = rank(router, accounts)
    second = rank(router, accounts, exclude=[first.winner])
    assert first.winner not in second.order
    assert set(second.order) == {"a", "b", "c"} - {first.winner}
    assert second.candidate(first.winner).excluded == "already tried for this payment"


def test_zero_weight_means_staff_paused_the_account(router):
    decision = rank(router, [acct("a"), acct("paused", weight=Decimal("0"))])
    assert decision.order == ("a",)
    assert decision.candidate("paused").excluded == "routing weight is 0"


def test_no_candidate_gives_no_winner_and_approach_none(router):
    decision = rank(router, [acct("off", enabled=False)])
    assert decision.winner is None
    assert decision.order == ()
    assert decision.approach == "none"


# --- scoring ------------------------------------------------------------------------------------


def test_the_account_with_the_clearly_better_success_rate_wins(router):
    teach(router, "good", successes=380, failures=20)
    now = teach(router, "poor", successes=280, failures=120)
    winners = Counter(
        rank(router, [acct("poor"), acct("good")], now=now, seed=s).winner for s in range(200)
    )
    assert winners["good"] >= 190


def test_between_equally_good_accounts_the_cheaper_carries_most_traffic(router):
    teach(router, "dear", successes=360, failures=40)
    now = teach(router, "cheap", successes=360, failures=40)
    accounts = [
        acct("dear", fee_percent=Decimal("0.60")),
        acct("cheap", fee_percent=Decimal("0.38")),
    ]
    winners = Counter(rank(router, accounts, now=now, seed=s).winner for s in range(400))
    assert winners["cheap"] >= 0.8 * 400


def test_staff_weight_decides_between_equally_good_accounts(router):
    teach(router, "a", successes=360, failures=40)
    now = teach(router, "b", successes=360, failures=40)
    accounts = [acct("a"), acct("b", weight=Decimal("1.5"))]
    winners = Counter(rank(router, accounts, now=now, seed=s).winner for s in range(400))
    assert winners["b"] >= 0.8 * 400


def test_expected_value_is_success_times_amount_minus_fee_in_decimal(router):
    now = teach(router, "a", successes=45, failures=5)
    decision = rank(
        router,
        [acct("a", fee_percent=Decimal("0.60"), fee_fixed=Decimal("0.10"))],
        amount="200.00",
        now=now,
    )
    a = decision.candidate("a")
    assert a.fee == Decimal("1.30")
    assert isinstance(a.expected_value, Decimal) and isinstance(a.score, Decimal)
    assert a.expected_value == (Decimal(f"{a.sample:.6f}") * Decimal("198.70")).quantize(
        Decimal("0.01")
    )
    assert a.score.quantize(Decimal("0.01")) == a.expected_value  # weight 1


def test_a_channel_that_fails_large_amounts_loses_large_payments_but_keeps_small_ones(router):
    now = T0
    for _ in range(300):
        router.record_outcome("a", "alipay", Decimal("50.00"), "succeeded", now)
        router.record_outcome("a", "alipay", Decimal("3000.00"), "failed", now)
        router.record_outcome("b", "alipay", Decimal("50.00"), "succeeded", now)
        router.record_outcome("b", "alipay", Decimal("3000.00"), "succeeded", now)
        now += timedelta(seconds=1)
    accounts = [acct("a", fee_percent=Decimal("0.30")), acct("b", fee_percent=Decimal("0.60"))]
    small = Counter(
        rank(router, accounts, amount="50.00", now=now, seed=s).winner for s in range(100)
    )
    large = Counter(
        rank(router, accounts, amount="3000.00", now=now, seed=s).winner for s in range(100)
    )
    assert small["a"] >= 80  # equally good on small amounts, and cheaper
    assert large["b"] >= 95


def test_a_decision_is_deterministic_for_a_seeded_rng(router):
    teach(router, "a", successes=50, failures=10)
    now = teach(router, "b", successes=40, failures=20)
    accounts = [acct("a"), acct("b"), acct("c")]
    first = rank(router, accounts, now=now, seed=42).as_dict()
    second = rank(router, accounts, now=now, seed=42).as_dict()
    assert first == second


# --- exploration and learning -------------------------------------------------------------------


def test_an_unknown_account_still_gets_some_traffic(router):
    now = teach(router, "known", successes=450, failures=50)
    winners = Counter(
        rank(router, [acct("known"), acct("new")], now=now, seed=s).winner for s in range(1000)
    )
    assert 10 <= winners["new"] <= 300


def test_a_long_idle_account_is_explored_again(router):
    teach(router, "idle", successes=200, failures=200)
    now = teach(router, "busy", successes=900, failures=100, start=T0 + timedelta(seconds=400))
    accounts = [acct("busy"), acct("idle")]
    soon = Counter(rank(router, accounts, now=now, seed=s).winner for s in range(1000))
    # The busy account keeps carrying the traffic for three hours while the idle one's
    # evidence fades with time (half-life), so the idle one is uncertain again.
    later_start = now + timedelta(hours=3) - timedelta(seconds=1000)
    later_now = teach(router, "busy", successes=900, failures=100, start=later_start)
    later = Counter(rank(router, accounts, now=later_now, seed=s).winner for s in range(1000))
    assert soon["idle"] < 5
    assert later["idle"] > 20


def test_a_sudden_drop_in_success_is_noticed_within_dozens_of_attempts(router):
    now = teach(router, "a", successes=760, failures=40)
    for _ in range(40):
        router.record_outcome("a", "alipay", Decimal("100.00"), "failed", now)
        now += timedelta(seconds=1)
    estimate = rank(router, [acct("a")], now=now).candidate("a").estimate
    assert estimate < 0.5


def test_a_buyer_side_decline_does_not_count_against_the_channel(router):
    now = teach(router, "a", successes=90, failures=10)
    before = rank(router, [acct("a")], now=now).candidate("a").estimate
    for _ in range(50):
        router.record_outcome("a", "alipay", Decimal("100.00"), "declined", now)
    after = rank(router, [acct("a")], now=now).candidate("a").estimate
    assert after == pytest.approx(before)


@pytest.mark.parametrize("outcome", ["failed", "error", "timeout"])
def test_channel_faults_count_against_the_success_estimate(router, outcome):
    now = teach(router, "a", successes=90, failures=10)
    before = rank(router, [acct("a")], now=now).candidate("a").estimate
    for _ in range(3):
        router.record_outcome("a", "alipay", Decimal("100.00"), outcome, now)
    assert rank(router, [acct("a")], now=now).candidate("a").estimate < before


def test_an_unknown_outcome_is_refused(router):
    with pytest.raises(ValueError, match="unknown outcome 'lost'"):
        router.record_outcome("a", "alipay", Decimal("1.00"), "lost", T0)


# --- cold start ---------------------------------------------------------------------------------

# The demo's Alipay accounts: direct Alipay, the bank aggregator and the epay aggregator.
DIRECT = acct("direct", fee_percent=Decimal("0.60"))
BANK = acct("bank", fee_percent=Decimal("0.80"), weight=Decimal("0.50"))
EPAY = acct("epay", fee_percent=Decimal("1.00"), weight=Decimal("0.40"))


def test_a_fresh_install_sends_every_payment_to_the_cheapest_account(router):
    winners = Counter(
        rank(router, [EPAY, BANK, DIRECT], amount="97.00", seed=s).winner for s in range(300)
    )
    assert winners == {"direct": 300}


def test_without_evidence_cost_alone_decides_between_equally_weighted_accounts(router):
    accounts = [acct("dear", fee_percent=Decimal("0.80")), acct("cheap")]
    decisions = [rank(router, accounts, seed=s) for s in range(300)]
    assert {d.order for d in decisions} == {("cheap", "dear")}
    assert {d.approach for d in decisions} == {"exploit"}
    # Scored on the estimate (not a random draw), the tie explained.
    cheap, dear = decisions[0].candidates
    assert cheap.expected_value == (Decimal("0.500000") * Decimal("99.40")).quantize(CENT)
    assert any("cold start" in c.note for c in (cheap, dear))


def test_one_failure_of_the_cheap_account_at_cold_start_does_not_move_traffic(router):
    accounts = [acct("dear", fee_percent=Decimal("0.80")), acct("cheap")]
    router.record_outcome("cheap", "alipay", Decimal("100.00"), "failed", T0)
    now = T0 + timedelta(seconds=1)
    winners = Counter(rank(router, accounts, now=now, seed=s).winner for s in range(300))
    assert winners == {"cheap": 300}


def test_when_the_cheap_account_keeps_failing_traffic_moves_to_the_one_that_pays(router):
    """Each payment starts on the winner; a failure there fails over to the next account."""
    rates = {"direct": 0.0, "bank": 1.0, "epay": 1.0}
    world = random.Random(7)
    now, first = T0, []
    for seed in range(40):
        decision = rank(router, [EPAY, BANK, DIRECT], now=now, seed=seed)
        first.append(decision.winner)
        for code in decision.order:
            paid = world.random() < rates[code]
            router.record_outcome(
                code, "alipay", Decimal("100.00"), "succeeded" if paid else "failed", now
            )
            if paid:
                break
        now += timedelta(seconds=1)
    assert first[0] == "direct"
    assert first.index("bank") <= 3
    assert first[10:].count("direct") <= 3  # only the odd exploring draw goes back


def test_once_an_account_is_measured_the_draws_take_over_again(router):
    config = router.config
    now = teach(router, "cheap", successes=int(config.cold_evidence) + 5, failures=0)
    accounts = [acct("dear", fee_percent=Decimal("0.80")), acct("cheap")]
    decisions = [rank(router, accounts, now=now, seed=s) for s in range(1000)]
    explored = [d for d in decisions if d.winner == "dear"]
    assert 5 <= len(explored) <= 200
    assert {d.approach for d in explored} == {"explore"}
    assert all("cold start" not in d.candidate("dear").note for d in decisions)


def test_after_everything_was_idle_for_hours_the_cheaper_account_starts_again(router):
    teach(router, "dear", successes=450, failures=50)
    now = teach(router, "cheap", successes=400, failures=100, start=T0 + timedelta(seconds=500))
    accounts = [acct("dear", fee_percent=Decimal("0.80")), acct("cheap")]
    morning = now + timedelta(hours=10)
    winners = Counter(rank(router, accounts, now=morning, seed=s).winner for s in range(300))
    assert winners == {"cheap": 300}


# --- explainability -----------------------------------------------------------------------------


def test_exploit_when_the_draw_agrees_with_the_estimates_explore_when_it_does_not(router):
    teach(router, "good", successes=450, failures=50)
    now = teach(router, "thin", successes=3, failures=1, start=T0 + timedelta(seconds=600))
    accounts = [acct("good"), acct("thin")]
    decisions = [rank(router, accounts, now=now, seed=s) for s in range(300)]
    approaches = Counter(d.approach for d in decisions)
    assert approaches["exploit"] > approaches["explore"] > 0
    for d in decisions:
        assert (d.approach == "explore") == (d.winner == "thin")


def test_every_candidate_says_how_it_was_scored_or_why_it_was_left_out(router):
    teach(router, "a", successes=90, failures=10)
    decision = rank(
        router, [acct("a"), acct("b"), acct("x", enabled=False)], now=T0 + timedelta(minutes=5)
    )
    assert [c.code for c in decision.candidates][:2] == list(decision.order)
    for code in decision.order:
        c = decision.candidate(code)
        assert c.estimate is not None and c.sample is not None and c.score is not None
        assert c.expected_value is not None and not c.excluded
    assert decision.candidate("x").score is None and decision.candidate("x").excluded


def test_as_dict_is_json_for_attempt_routing(router):
    decision = rank(router, [acct("a"), acct("b", enabled=False)], amount="123.45")
    data = json.loads(json.dumps(decision.as_dict()))
    assert data["winner"] == "a" and data["approach"] in ("exploit", "explore")
    assert data["amount"] == "123.45" and data["currency"] == "CNY" and data["band"] == "0-200"
    assert data["order"] == ["a"]
    first = data["candidates"][0]
    assert set(first) >= {
        "code",
        "estimate",
        "fee",
        "expected_value",
        "weight",
        "score",
        "excluded",
    }
    assert first["fee"] == "0.74" and first["weight"] == "1"
    assert data["candidates"][1] == {**data["candidates"][1], "code": "b", "excluded": "disabled"}


def test_amount_bands_follow_the_configured_edges():
    config = RoutingConfig()
    assert config.band(Decimal("199.99")) == "0-200"
    assert config.band(Decimal("200.00")) == "200-1000"
    assert config.band(Decimal("4999.99")) == "1000-5000"
    assert config.band(Decimal("5000.00")) == "5000+"


def test_account_health_survives_a_json_round_trip(router):
    teach(router, "a", successes=30, failures=5)
    state = router.store.load(["a"])["a"]
    again = AccountHealth.from_json(json.loads(json.dumps(state.to_json())))
    assert again == state
    assert isinstance(again.estimates["alipay:0-200"], Estimate)
