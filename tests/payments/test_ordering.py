"""Checkout ordering: each signal on its own, then together, then the selector."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from payments import ledger
from payments.client import DeviceInfo, RegionInfo
from payments.models import ChannelAccount, ChannelHealth, Method
from payments.ordering import (
    DEFAULT_CONFIG,
    AccountOption,
    CheckoutContext,
    PastPayment,
    checkout_context,
    rank_methods,
)
from payments.states import PaymentStatus
from tests.accounts.factories import UserFactory
from tests.payments.factories import PaymentFactory

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
ALL = tuple(Method.values)
RICH = Decimal("100000.00")


def every_method(**overrides) -> tuple[AccountOption, ...]:
    """One healthy account per method, wide limits, unless overridden by method code."""
    return tuple(
        overrides.get(m, AccountOption(code=f"acct-{m}", methods=frozenset({m}))) for m in ALL
    )


def context(**fields) -> CheckoutContext:
    fields.setdefault("amount", Decimal("300.00"))
    fields.setdefault("accounts", every_method())
    fields.setdefault("wallet_balance", Decimal("0.00"))
    return CheckoutContext(**fields)


def order_of(ranking) -> list[str]:
    return ranking.codes


def position(ranking, method) -> int:
    return ranking.codes.index(method)


def paid(method, days_ago=1, succeeded=True) -> PastPayment:
    return PastPayment(method=method, succeeded=succeeded, at=NOW - timedelta(days=days_ago))


# --- the baseline -------------------------------------------------------------------------------


def test_without_signals_the_usual_mainland_methods_lead():
    ranking = rank_methods(context())
    assert order_of(ranking)[:2] == [Method.ALIPAY, Method.WECHATPAY]
    assert set(order_of(ranking)) == set(ALL)


def test_disabled_methods_come_after_every_usable_one():
    ranking = rank_methods(context(amount=Decimal("50.00"), wallet_balance=Decimal("0")))
    assert order_of(ranking)[-1] == Method.BALANCE
    assert [m.enabled for m in ranking.methods] == [True] * (len(ALL) - 1) + [False]


def test_every_method_has_a_score_that_is_the_sum_of_its_reasons():
    ranking = rank_methods(context(history=(paid(Method.CARD),), device=DeviceInfo("phone")))
    for method in ranking.methods:
        assert method.score == sum(r.points for r in method.reasons)
        assert all(r.text for r in method.reasons)


def test_about_four_are_shown_first_and_the_rest_behind_more():
    ranking = rank_methods(context())
    assert len(ranking.first) == 4
    assert len(ranking.first) + len(ranking.more) == len(ALL)


def test_five_usable_methods_are_all_shown_rather_than_hiding_one():
    five = tuple(AccountOption(code=m, methods=frozenset({m})) for m in ALL[:5])
    ranking = rank_methods(context(accounts=five))
    assert len(ranking.first) == 5 and not ranking.more


def test_at_least_two_are_shown_even_when_only_one_is_usable():
    accounts = (
        AccountOption(code="a", methods=frozenset({Method.ALIPAY})),
        AccountOption(code="b", methods=frozenset({Method.BALANCE})),
    )
    ranking = rank_methods(context(accounts=accounts, wallet_balance=Decimal("0")))
    assert [m.method for m in ranking.first] == [Method.ALIPAY, Method.BALANCE]
    assert not ranking.first[1].enabled


# --- history --------------------------------------------------------------------------------------


def test_history_puts_the_last_successful_method_first():
    ranking = rank_methods(context(history=(paid(Method.PAYPAL),)))
    assert order_of(ranking)[0] == Method.PAYPAL
    assert "history.last_success" in [r.code for r in ranking.get(Method.PAYPAL).reasons]


def test_history_last_success_beats_a_long_record_with_another_method():
    history = tuple(paid(Method.ALIPAY, days_ago=10 + i) for i in range(20)) + (
        paid(Method.ECNY, days_ago=1),
    )
    ranking = rank_methods(context(history=history, device=DeviceInfo("phone")))
    assert order_of(ranking)[:2] == [Method.ECNY, Method.ALIPAY]


def test_history_frequency_and_success_order_the_rest():
    history = (
        paid(Method.UNIONPAY, days_ago=1),
        paid(Method.CARD, days_ago=5),
        paid(Method.CARD, days_ago=6),
        paid(Method.CARD, days_ago=7),
    )
    ranking = rank_methods(context(history=history))
    assert order_of(ranking)[:2] == [Method.UNIONPAY, Method.CARD]


def test_history_failures_since_the_last_success_push_a_method_down():
    history = (
        paid(Method.ALIPAY, days_ago=0, succeeded=False),
        paid(Method.ALIPAY, days_ago=0, succeeded=False),
    )
    ranking = rank_methods(context(history=history, now=NOW))
    assert position(ranking, Method.ALIPAY) > position(ranking, Method.WECHATPAY)
    reason = next(r for r in ranking.get(Method.ALIPAY).reasons if r.code == "history.failures")
    assert reason.points == -4 * DEFAULT_CONFIG.per_failure  # two fresh declines: 2² × 3


def test_after_succeeding_with_a_method_that_was_not_first_it_is_first_next_time():
    before = rank_methods(context())
    chosen = order_of(before)[3]
    assert order_of(before)[0] != chosen
    after = rank_methods(
        context(history=(paid(order_of(before)[0], days_ago=30), paid(chosen, days_ago=0)))
    )
    assert order_of(after)[0] == chosen


def test_history_weights_keep_the_last_success_above_every_other_signal_combined():
    c = DEFAULT_CONFIG
    best_other = (
        max(c.prior.values())
        + c.max_success_points
        + max(max(c.phone.values()), max(c.desktop.values()))
        + c.in_app_bonus
        + max(c.cross_border.values())
        + max(max(c.large.values()), max(c.small.values()))
        + c.wallet_covers
    )
    # The bonus goes only to a method that fits the scene: its device, in-app browser, region
    # and amount points together are above ``misfit_points``.
    worst_last = min(c.prior.values()) - c.max_failure_points + c.misfit_points + 1
    assert c.last_success + worst_last > best_other


def test_one_decline_moves_a_method_down_one_place_not_behind_methods_never_used():
    desktop = DeviceInfo("desktop")
    before = order_of(rank_methods(context(device=desktop, now=NOW)))
    assert before[:4] == [Method.ALIPAY, Method.WECHATPAY, Method.UNIONPAY, Method.CARD]
    declined = (paid(Method.WECHATPAY, days_ago=0, succeeded=False),)
    after = order_of(rank_methods(context(device=desktop, history=declined, now=NOW)))
    assert after.index(Method.WECHATPAY) <= before.index(Method.WECHATPAY) + 1
    assert after.index(Method.WECHATPAY) < after.index(Method.UNIONPAY)


def test_a_decline_fades_and_two_weeks_later_costs_nothing():
    def failure_points(days_ago):
        history = (paid(Method.WECHATPAY, days_ago=days_ago, succeeded=False),)
        ranked = rank_methods(context(history=history, now=NOW)).get(Method.WECHATPAY)
        return sum(r.points for r in ranked.reasons if r.code == "history.failures")

    assert failure_points(0) < failure_points(3) < 0
    assert failure_points(14) == 0


def test_repeated_declines_still_push_a_method_well_down():
    history = tuple(paid(Method.ALIPAY, days_ago=0, succeeded=False) for _ in range(5))
    ranking = rank_methods(context(history=history, now=NOW))
    assert order_of(ranking).index(Method.ALIPAY) >= 3


def test_one_past_success_does_not_override_a_scene_the_method_does_not_fit():
    """Card instalments last time, but now ¥97 on a phone inside WeChat: WeChat Pay leads."""
    history = (paid(Method.CARD_INSTALMENTS, days_ago=2),)
    ranking = rank_methods(
        context(
            amount=Decimal("97.00"),
            device=DeviceInfo("phone", "wechat"),
            history=history,
            now=NOW,
        )
    )
    assert order_of(ranking)[0] == Method.WECHATPAY
    assert Method.CARD_INSTALMENTS not in order_of(ranking)[: ranking.shown]
    reasons = [r.code for r in ranking.get(Method.CARD_INSTALMENTS).reasons]
    assert "history.last_success" not in reasons and "history.successes" in reasons


def test_a_past_success_that_fits_the_scene_is_still_first():
    history = (paid(Method.CARD, days_ago=2),)
    ranking = rank_methods(
        context(amount=Decimal("97.00"), device=DeviceInfo("phone"), history=history, now=NOW)
    )
    assert order_of(ranking)[0] == Method.CARD


# --- device ---------------------------------------------------------------------------------------


def test_device_phone_favours_wallet_apps_over_cards():
    phone = rank_methods(context(device=DeviceInfo("phone")))
    desktop = rank_methods(context(device=DeviceInfo("desktop")))
    assert position(phone, Method.CARD) > position(desktop, Method.CARD)
    assert phone.get(Method.WECHATPAY).score > desktop.get(Method.WECHATPAY).score


def test_device_desktop_favours_cards_and_bank_forms():
    desktop = rank_methods(context(device=DeviceInfo("desktop")))
    unknown = rank_methods(context())
    assert desktop.get(Method.UNIONPAY).score > unknown.get(Method.UNIONPAY).score
    assert desktop.get(Method.CARD).score > unknown.get(Method.CARD).score


def test_device_inside_wechat_puts_wechat_pay_first_and_hides_alipay():
    ranking = rank_methods(context(device=DeviceInfo("phone", "wechat")))
    assert order_of(ranking)[0] == Method.WECHATPAY
    assert Method.ALIPAY not in order_of(ranking)
    assert Method.ALIPAY in [w.method for w in ranking.withheld]


def test_inside_wechat_wechat_pay_leads_even_after_a_card_success():
    history = (paid(Method.CARD, days_ago=1),)
    ranking = rank_methods(context(device=DeviceInfo("phone", "wechat"), history=history, now=NOW))
    assert order_of(ranking)[:2] == [Method.WECHATPAY, Method.CARD]


# --- region ---------------------------------------------------------------------------------------


def test_region_cross_border_buyers_see_card_and_paypal_early():
    ranking = rank_methods(context(region=RegionInfo("US", "language")))
    assert set(order_of(ranking)[:2]) == {Method.CARD, Method.PAYPAL}
    assert ranking.usable[-1].method == Method.ECNY


def test_region_mainland_buyers_keep_the_mainland_order():
    assert order_of(rank_methods(context(region=RegionInfo("CN", "proxy")))) == order_of(
        rank_methods(context())
    )


# --- amount ---------------------------------------------------------------------------------------


def test_amount_large_puts_instalments_and_card_first():
    ranking = rank_methods(context(amount=Decimal("3000.00")))
    assert order_of(ranking)[:2] == [Method.CARD_INSTALMENTS, Method.CARD]


def test_amount_small_puts_balance_and_quick_wallets_first():
    ranking = rank_methods(context(amount=Decimal("50.00"), wallet_balance=RICH))
    assert set(order_of(ranking)[:3]) == {Method.BALANCE, Method.ALIPAY, Method.WECHATPAY}
    assert order_of(ranking)[-1] == Method.CARD_INSTALMENTS


# --- health and limits ----------------------------------------------------------------------------


def test_health_a_method_whose_only_account_has_an_open_breaker_is_not_offered():
    accounts = every_method(
        alipay=AccountOption(code="ali", methods=frozenset({Method.ALIPAY}), healthy=False)
    )
    ranking = rank_methods(context(accounts=accounts))
    assert Method.ALIPAY not in order_of(ranking)
    assert [w.method for w in ranking.withheld] == [Method.ALIPAY]


def test_health_one_healthy_account_is_enough():
    accounts = every_method() + (
        AccountOption(code="ali-2", methods=frozenset({Method.ALIPAY}), healthy=False),
    )
    assert rank_methods(context(accounts=accounts)).is_usable(Method.ALIPAY)


def test_health_methods_without_an_enabled_account_in_the_currency_are_not_offered():
    accounts = (
        AccountOption(code="off", methods=frozenset({Method.ALIPAY}), enabled=False),
        AccountOption(code="usd", methods=frozenset({Method.PAYPAL}), currency="USD"),
        AccountOption(code="wx", methods=frozenset({Method.WECHATPAY})),
    )
    ranking = rank_methods(context(accounts=accounts))
    assert order_of(ranking) == [Method.WECHATPAY]


def test_limits_over_every_accounts_maximum_is_shown_disabled_with_the_limit():
    accounts = every_method(
        wechatpay=AccountOption(
            code="wx", methods=frozenset({Method.WECHATPAY}), max_amount=Decimal("200.00")
        )
    )
    ranking = rank_methods(
        context(accounts=accounts, amount=Decimal("300.00"), wallet_balance=RICH)
    )
    wechat = ranking.get(Method.WECHATPAY)
    assert not wechat.enabled
    assert "200.00" in wechat.disabled_reason
    assert order_of(ranking)[-1] == Method.WECHATPAY


def test_limits_under_the_minimum_is_shown_disabled_with_the_minimum():
    accounts = every_method(
        card_instalments=AccountOption(
            code="inst", methods=frozenset({Method.CARD_INSTALMENTS}), min_amount=Decimal("600.00")
        )
    )
    ranking = rank_methods(context(accounts=accounts))
    assert "600.00" in ranking.get(Method.CARD_INSTALMENTS).disabled_reason


def test_limits_one_account_that_fits_keeps_the_method_usable():
    accounts = every_method(
        wechatpay=AccountOption(
            code="wx", methods=frozenset({Method.WECHATPAY}), max_amount=Decimal("200.00")
        )
    ) + (AccountOption(code="wx-big", methods=frozenset({Method.WECHATPAY})),)
    assert rank_methods(context(accounts=accounts)).is_usable(Method.WECHATPAY)


# --- wallet ---------------------------------------------------------------------------------------


def test_wallet_balance_short_of_the_amount_disables_balance_with_the_reason():
    ranking = rank_methods(context(amount=Decimal("50.00"), wallet_balance=Decimal("20.00")))
    balance = ranking.get(Method.BALANCE)
    assert not balance.enabled
    assert "20.00" in balance.disabled_reason
    assert ranking.usable[0].method != Method.BALANCE


def test_wallet_balance_that_covers_a_small_order_comes_first():
    ranking = rank_methods(context(amount=Decimal("50.00"), wallet_balance=Decimal("80.00")))
    assert order_of(ranking)[0] == Method.BALANCE


def test_the_balance_option_says_how_much_is_available():
    covers = rank_methods(context(amount=Decimal("95.00"), wallet_balance=Decimal("1200.50")))
    assert "¥1,200.50" in covers.get(Method.BALANCE).detail
    short = rank_methods(context(amount=Decimal("95.00"), wallet_balance=Decimal("20.00")))
    assert "¥20.00" in short.get(Method.BALANCE).detail
    assert covers.get(Method.ALIPAY).detail == ""


def test_next_best_skips_the_method_that_failed_and_disabled_ones():
    ranking = rank_methods(context(amount=Decimal("50.00"), wallet_balance=Decimal("0")))
    first = ranking.usable[0].method
    assert ranking.next_best(after=first).method == ranking.usable[1].method


# --- selector -------------------------------------------------------------------------------------


def make_account(code, methods, **fields):
    return ChannelAccount.objects.create(
        code=code, name=code, backend=code, methods=methods, base_url="http://x/", **fields
    )


@pytest.mark.django_db
def test_selector_reads_accounts_health_history_and_wallet_in_three_queries(
    django_assert_num_queries,
):
    buyer = UserFactory()
    for i, method in enumerate(ALL):
        account = make_account(f"acct{i}", [method])
        ChannelHealth.objects.create(account=account)
    PaymentFactory.create_batch(5, buyer=buyer, method=Method.CARD, status=PaymentStatus.SUCCEEDED)
    with django_assert_num_queries(3):
        ctx = checkout_context(
            user=buyer,
            amount=Decimal("10.00"),
            currency="CNY",
            device=DeviceInfo(),
            region=RegionInfo(),
        )
    assert len(ctx.accounts) == len(ALL) and len(ctx.history) == 5


@pytest.mark.django_db
def test_selector_marks_open_breakers_unhealthy_and_skips_disabled_accounts():
    buyer = UserFactory()
    broken = make_account("ali", [Method.ALIPAY])
    ChannelHealth.objects.create(account=broken, breaker=ChannelHealth.Breaker.OPEN)
    make_account("wx", [Method.WECHATPAY])
    make_account("off", [Method.UNIONPAY], enabled=False)
    ctx = checkout_context(
        user=buyer,
        amount=Decimal("10.00"),
        currency="CNY",
        device=DeviceInfo(),
        region=RegionInfo(),
    )
    assert {a.code: a.healthy for a in ctx.accounts} == {"ali": False, "wx": True}
    assert order_of(rank_methods(ctx)) == [Method.WECHATPAY]


@pytest.mark.django_db
def test_selector_history_keeps_final_outcomes_of_this_buyer_only():
    buyer, other = UserFactory(), UserFactory()
    PaymentFactory(buyer=buyer, method=Method.CARD, status=PaymentStatus.SUCCEEDED)
    PaymentFactory(buyer=buyer, method=Method.ALIPAY, status=PaymentStatus.FAILED)
    PaymentFactory(buyer=buyer, method=Method.ECNY, status=PaymentStatus.PENDING)
    PaymentFactory(buyer=other, method=Method.PAYPAL, status=PaymentStatus.SUCCEEDED)
    ctx = checkout_context(
        user=buyer,
        amount=Decimal("10.00"),
        currency="CNY",
        device=DeviceInfo(),
        region=RegionInfo(),
    )
    assert sorted((p.method, p.succeeded) for p in ctx.history) == [
        (Method.ALIPAY, False),
        (Method.CARD, True),
    ]


@pytest.mark.django_db
def test_selector_reads_the_buyers_wallet_balance():
    buyer = UserFactory()
    ledger.post(
        key="topup:1",
        kind="topup",
        lines=[
            (ledger.CLEARING, Decimal("75.00")),
            (ledger.buyer_wallet(buyer.pk), Decimal("-75.00")),
        ],
    )
    ctx = checkout_context(
        user=buyer,
        amount=Decimal("10.00"),
        currency="CNY",
        device=DeviceInfo(),
        region=RegionInfo(),
    )
    assert ctx.wallet_balance == Decimal("75.00")


@pytest.mark.django_db
def test_the_ranking_shown_has_a_stored_form_staff_can_read():
    ranking = rank_methods(context())
    stored = json.loads(json.dumps(ranking.as_dict()))  # as the payment's JSON keeps it
    assert stored["order"] == order_of(ranking)
    assert stored["methods"][0]["reasons"]


@pytest.mark.django_db
def test_an_open_breaker_whose_cool_down_has_passed_is_offered_again_for_probing():
    import time

    buyer = UserFactory()
    recovering = make_account("ali", [Method.ALIPAY])
    ChannelHealth.objects.create(
        account=recovering,
        breaker=ChannelHealth.Breaker.OPEN,
        state={"breaker": "open", "opened_at": time.time() - 3600, "cooldown": 30.0},
    )
    ctx = checkout_context(
        user=buyer,
        amount=Decimal("10.00"),
        currency="CNY",
        device=DeviceInfo(),
        region=RegionInfo(),
    )
    assert {a.code: a.healthy for a in ctx.accounts} == {"ali": True}
