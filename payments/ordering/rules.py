"""The signals' points: one function per signal turns the context into :class:`Reason` rows
(a stable code, points, text for people). :class:`OrderingConfig` holds every weight;
docs/checkout.md lists them with their reasons."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from payments.client import DeviceInfo, RegionInfo
from payments.models import Method
from payments.ordering.signals import CENT, CheckoutContext, PastPayment


@dataclass(frozen=True)
class OrderingConfig:
    """The weights (points) and thresholds; docs/checkout.md lists them with their reasons."""

    # Prior: how commonly each method is used for online purchases in mainland China.
    prior: Mapping[str, int] = field(
        default_factory=lambda: {
            Method.ALIPAY: 30,
            Method.WECHATPAY: 28,
            Method.UNIONPAY: 14,
            Method.CARD: 12,
            Method.BALANCE: 10,
            Method.ECNY: 8,
            Method.CARD_INSTALMENTS: 4,
            Method.PAYPAL: 2,
            Method.QQPAY: 2,
        }
    )
    # History.
    # More than every other signal together: last used is first — when it fits the scene
    # (its device, in-app browser, region and amount points sum above `misfit_points`; one
    # past success of card instalments does not put them first for ¥97 inside WeChat).
    last_success: int = 1000
    misfit_points: int = -20
    per_success: int = 10
    max_success_points: int = 50
    # Declines since the method last worked for this buyer: each counts less as it ages
    # (halving every `failure_half_life_days`), and the penalty grows with the square of
    # their count — one decline moves a method gently, repeated ones push it well down.
    per_failure: int = 3
    max_failure_points: int = 30
    failure_half_life_days: float = 7.0
    history_limit: int = 50  # payments the selector reads
    # Device.
    phone: Mapping[str, int] = field(
        default_factory=lambda: {
            Method.ALIPAY: 20,
            Method.WECHATPAY: 20,
            Method.ECNY: 10,
            Method.UNIONPAY: 5,
            Method.QQPAY: 5,
            Method.CARD: -10,
            Method.CARD_INSTALMENTS: -10,
        }
    )
    desktop: Mapping[str, int] = field(
        default_factory=lambda: {
            Method.CARD: 10,
            Method.CARD_INSTALMENTS: 10,
            Method.UNIONPAY: 10,
            Method.PAYPAL: 5,
        }
    )
    in_app_bonus: int = 60
    in_app_blocked: int = -60
    # In-app browser → methods that cannot open there at all (withheld, with why), and the
    # method shown first there while it is usable (WeChat refuses Alipay's pages inside it;
    # Alipay's app does not hand WeChat Pay's H5 page on to WeChat).
    in_app_hidden: Mapping[str, frozenset[str]] = field(
        default_factory=lambda: {
            "wechat": frozenset({Method.ALIPAY}),
            "alipay": frozenset({Method.WECHATPAY}),
        }
    )
    in_app_first: Mapping[str, str] = field(
        default_factory=lambda: {"wechat": Method.WECHATPAY, "alipay": Method.ALIPAY}
    )
    # Region: buyers outside mainland China.
    cross_border: Mapping[str, int] = field(
        default_factory=lambda: {
            Method.CARD: 40,
            Method.PAYPAL: 40,
            Method.CARD_INSTALMENTS: 5,
            Method.ALIPAY: -10,
            Method.WECHATPAY: -10,
            Method.UNIONPAY: -10,
            Method.ECNY: -40,
        }
    )
    # Amount (in the order's currency; CNY is the shop's currency).
    small_amount: Decimal = Decimal("100.00")
    large_amount: Decimal = Decimal("1000.00")
    large: Mapping[str, int] = field(
        default_factory=lambda: {Method.CARD_INSTALMENTS: 40, Method.CARD: 30}
    )
    small: Mapping[str, int] = field(
        default_factory=lambda: {
            Method.BALANCE: 30,
            Method.ALIPAY: 15,
            Method.WECHATPAY: 15,
            Method.CARD_INSTALMENTS: -40,
        }
    )
    # Wallet.
    wallet_covers: int = 25
    # Card instalments: months → the issuer's fee as a percentage of the amount.
    instalment_fees: Mapping[int, Decimal] = field(
        default_factory=lambda: {3: Decimal("2.25"), 6: Decimal("4.05"), 12: Decimal("7.20")}
    )
    # How many are shown before "more methods".
    shown: int = 4
    max_shown: int = 5  # a "more" list holding a single method is pointless: show it
    min_shown: int = 2


DEFAULT_CONFIG = OrderingConfig()


@dataclass(frozen=True)
class Reason:
    """One signal's contribution: a stable code for machines, text for people."""

    code: str
    points: int
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "points": self.points, "text": self.text}


def money_text(amount: Decimal, currency: str) -> str:
    """¥1,234.50 for yuan, "12.00 USD" otherwise (the page and the reasons agree)."""
    amount = amount.quantize(CENT)
    return f"¥{amount:,}" if currency == "CNY" else f"{amount:,} {currency}"


def _last_success(history: Iterable[PastPayment]) -> str | None:
    wins = [p for p in history if p.succeeded]
    return max(wins, key=lambda p: p.at).method if wins else None


def _prior_reasons(method: str, config: OrderingConfig) -> list[Reason]:
    points = config.prior.get(method, 0)
    return [Reason("prior", points, _("How often buyers use it (base)"))]


def _history_reasons(
    method: str,
    history: Sequence[PastPayment],
    last_success: str | None,
    config: OrderingConfig,
    *,
    fits_scene: bool = True,
    now: datetime | None = None,
) -> list[Reason]:
    reasons = []
    mine = sorted((p for p in history if p.method == method), key=lambda p: p.at)
    if last_success == method and fits_scene:
        reasons.append(
            Reason(
                "history.last_success",
                config.last_success,
                _("Your last successful payment used it"),
            )
        )
    successes = sum(1 for p in mine if p.succeeded)
    if successes:
        points = min(successes * config.per_success, config.max_success_points)
        text = ngettext(
            "You paid with it successfully %(count)d time",
            "You paid with it successfully %(count)d times",
            successes,
        ) % {"count": successes}
        reasons.append(Reason("history.successes", points, text))
    recent_failures = []
    for past in reversed(mine):
        if past.succeeded:
            break
        recent_failures.append(past)
    failures = len(recent_failures)
    points = 0
    if recent_failures:
        points = _failure_points(recent_failures, now or max(p.at for p in history), config)
    if points:
        text = ngettext(
            "It did not go through the last time you tried it",
            "It did not go through the last %(count)d times you tried it",
            failures,
        ) % {"count": failures}
        reasons.append(Reason("history.failures", points, text))
    return reasons


def _failure_points(failures: Sequence[PastPayment], now: datetime, config: OrderingConfig) -> int:
    """−per_failure × (declines weighted by their age)², at most ``max_failure_points``."""
    half_life = config.failure_half_life_days * 86400
    weight = sum(0.5 ** (max(0.0, (now - p.at).total_seconds()) / half_life) for p in failures)
    return -min(config.max_failure_points, math.floor(config.per_failure * weight**2 + 0.5))


def scene_points(reasons: Iterable[Reason]) -> int:
    """What device, in-app browser, region and amount say about a method for this purchase."""
    return sum(r.points for r in reasons if r.code.split(".")[0] in {"device", "region", "amount"})


def _device_reasons(method: str, device: DeviceInfo, config: OrderingConfig) -> list[Reason]:
    reasons = []
    if device.kind == "phone":
        points = config.phone.get(method, 0)
        text = _("Quick to finish on a phone") if points > 0 else _("Slower to fill in on a phone")
        reasons.append(Reason("device.phone", points, text))
    elif device.kind == "desktop":
        reasons.append(
            Reason(
                "device.desktop", config.desktop.get(method, 0), _("Easy to fill in on a computer")
            )
        )
    if device.in_app == "wechat":
        if method == Method.WECHATPAY:
            reasons.append(Reason("device.in_app", config.in_app_bonus, _("You are inside WeChat")))
        elif method == Method.ALIPAY:
            reasons.append(
                Reason(
                    "device.in_app", config.in_app_blocked, _("Alipay does not open inside WeChat")
                )
            )
    elif device.in_app == "alipay":
        if method == Method.ALIPAY:
            reasons.append(
                Reason("device.in_app", config.in_app_bonus, _("You are inside the Alipay app"))
            )
        elif method == Method.WECHATPAY:
            reasons.append(
                Reason(
                    "device.in_app",
                    config.in_app_blocked,
                    _("WeChat Pay does not open inside Alipay"),
                )
            )
    return reasons


def blocked_in_app(method: str, device: DeviceInfo, config: OrderingConfig) -> str:
    """Why ``method`` cannot work in the in-app browser the page is open in ('' when it can).
    Staff see this text with the withheld methods."""
    if method in config.in_app_hidden.get(device.in_app, ()):
        if device.in_app == "wechat":
            return _("WeChat's browser blocks this method's payment pages.")
        if device.in_app == "alipay":
            return _("Alipay's app does not open this method's payment pages.")
        return _("This app's browser blocks this method's payment pages.")
    return ""


def pinned_first(method: str, device: DeviceInfo, config: OrderingConfig) -> bool:
    """The in-app browser's own wallet leads there, whatever the history says."""
    return bool(device.in_app) and config.in_app_first.get(device.in_app) == method


def _region_reasons(method: str, region: RegionInfo, config: OrderingConfig) -> list[Reason]:
    if not region.cross_border:
        return []
    points = config.cross_border.get(method, 0)
    if points > 0:
        text = _("Works for buyers outside mainland China (%(region)s)") % {"region": region.code}
    else:
        text = _("Usually needs a mainland-China account (you are in %(region)s)") % {
            "region": region.code
        }
    return [Reason("region.cross_border", points, text)]


def _amount_reasons(method: str, amount: Decimal, config: OrderingConfig) -> list[Reason]:
    if amount >= config.large_amount:
        points = config.large.get(method, 0)
        text = (
            _("Large amount: spread it over monthly instalments")
            if method == Method.CARD_INSTALMENTS
            else _("Large amount: cards have high limits")
        )
        return [Reason("amount.large", points, text)]
    if amount <= config.small_amount:
        points = config.small.get(method, 0)
        if method == Method.CARD_INSTALMENTS:
            text = _("Small amount: instalments are not worth it")
        elif method == Method.BALANCE:
            text = _("Small amount: pay from your balance in one step")
        else:
            text = _("Small amount: quick wallet payment")
        return [Reason("amount.small", points, text)]
    return []


def _wallet_reasons(method: str, context: CheckoutContext, config: OrderingConfig) -> list[Reason]:
    if method != Method.BALANCE:
        return []
    if context.wallet_balance >= context.amount:
        text = _("Your balance (%(balance)s) covers this order") % {
            "balance": money_text(context.wallet_balance, context.currency)
        }
        return [Reason("wallet.covers", config.wallet_covers, text)]
    text = _("Your balance (%(balance)s) does not cover this order") % {
        "balance": money_text(context.wallet_balance, context.currency)
    }
    return [Reason("limit.wallet", 0, text)]
