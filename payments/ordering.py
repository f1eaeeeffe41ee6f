"""Which payment methods a buyer sees first on checkout, and why (DESIGN.md §3 "Checkout
ordering"). docs/checkout.md explains the model and its weights.

The core, :func:`rank_methods`, is pure: it sees a frozen :class:`CheckoutContext` (the
amount, the buyer's past payments, device, region, the configured channel accounts and the
wallet balance) and answers a :class:`Ranking` in which every method carries a score and the
human-readable reasons that add up to it. Reading the request headers (:func:`device_from_meta`,
:func:`region_from_meta`) is pure too; only :func:`checkout_context` touches the database, in a
constant number of queries.

In one breath: a method is *offered* when at least one enabled account with a closed (or
probing) circuit breaker serves it in the order's currency; it is *shown disabled, with the
reason,* when no such account's per-payment limits fit the amount, or — for ``balance`` — when
the wallet holds less than the amount. Offered methods are scored by adding points per signal;
the method of the buyer's last successful payment gets a bonus larger than every other signal
together, so it is always first while it can be used.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from payments.models import Method

Device = Literal["phone", "desktop", "unknown"]
InApp = Literal["wechat", "alipay", ""]
RegionSource = Literal["proxy", "language", ""]

HOME_REGION = "CN"
CENT = Decimal("0.01")

# Wallet methods people finish on the phone in one tap.
QUICK_WALLETS = (Method.ALIPAY, Method.WECHATPAY)
CARD_LIKE = (Method.CARD, Method.CARD_INSTALMENTS)


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class PastPayment:
    """One of the buyer's earlier payments that reached a final outcome."""

    method: str
    succeeded: bool
    at: datetime


@dataclass(frozen=True)
class DeviceInfo:
    """Phone or desktop, and the in-app browser the page is open in, if any."""

    kind: Device = "unknown"
    in_app: InApp = ""


@dataclass(frozen=True)
class RegionInfo:
    """ISO 3166 country code ('' when unknown) and where it came from."""

    code: str = ""
    source: RegionSource = ""

    @property
    def cross_border(self) -> bool:
        return bool(self.code) and self.code != HOME_REGION


@dataclass(frozen=True)
class AccountOption:
    """What ordering needs to know about one configured channel account."""

    code: str
    methods: frozenset[str]
    enabled: bool = True
    healthy: bool = True  # False while its circuit breaker is open
    currency: str = "CNY"
    min_amount: Decimal = CENT
    max_amount: Decimal = Decimal("50000.00")
    weight: Decimal = Decimal("1")

    def __post_init__(self) -> None:
        if not isinstance(self.methods, frozenset):
            object.__setattr__(self, "methods", frozenset(self.methods))

    def fits(self, amount: Decimal) -> bool:
        return self.min_amount <= amount <= self.max_amount


@dataclass(frozen=True)
class CheckoutContext:
    """Everything the ranking looks at, as plain values."""

    amount: Decimal
    currency: str = "CNY"
    history: tuple[PastPayment, ...] = ()
    device: DeviceInfo = field(default_factory=DeviceInfo)
    region: RegionInfo = field(default_factory=RegionInfo)
    accounts: tuple[AccountOption, ...] = ()
    wallet_balance: Decimal = Decimal("0.00")
    methods: tuple[str, ...] = tuple(Method.values)


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
        }
    )
    # History.
    last_success: int = 1000  # more than every other signal together: last used is first
    per_success: int = 10
    max_success_points: int = 50
    per_failure: int = 10  # failures since the method last worked for this buyer
    max_failure_points: int = 30
    history_limit: int = 50  # payments the selector reads
    # Device.
    phone: Mapping[str, int] = field(
        default_factory=lambda: {
            Method.ALIPAY: 20,
            Method.WECHATPAY: 20,
            Method.ECNY: 10,
            Method.UNIONPAY: 5,
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


# ---------------------------------------------------------------------------------------------
# Output


@dataclass(frozen=True)
class Reason:
    """One signal's contribution: a stable code for machines, text for people."""

    code: str
    points: int
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "points": self.points, "text": self.text}


@dataclass(frozen=True)
class RankedMethod:
    method: str
    label: str
    score: int
    reasons: tuple[Reason, ...]
    enabled: bool = True
    disabled_reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "method": self.method,
            "score": self.score,
            "enabled": self.enabled,
            "reasons": [r.as_dict() for r in self.reasons],
        }
        if self.disabled_reason:
            data["disabled_reason"] = self.disabled_reason
        return data


@dataclass(frozen=True)
class Withheld:
    """A method not offered at all, and why (shown to staff only)."""

    method: str
    label: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "reason": self.reason}


@dataclass(frozen=True)
class Ranking:
    """Offered methods in display order (usable ones by score, then disabled ones)."""

    methods: tuple[RankedMethod, ...]
    shown: int
    withheld: tuple[Withheld, ...] = ()
    signals: Mapping[str, Any] = field(default_factory=dict)

    @property
    def first(self) -> tuple[RankedMethod, ...]:
        return self.methods[: self.shown]

    @property
    def more(self) -> tuple[RankedMethod, ...]:
        return self.methods[self.shown :]

    @property
    def codes(self) -> list[str]:
        return [m.method for m in self.methods]

    @property
    def usable(self) -> tuple[RankedMethod, ...]:
        return tuple(m for m in self.methods if m.enabled)

    def get(self, method: str) -> RankedMethod | None:
        return next((m for m in self.methods if m.method == method), None)

    def is_usable(self, method: str) -> bool:
        found = self.get(method)
        return bool(found and found.enabled)

    def next_best(self, *, after: str) -> RankedMethod | None:
        """The best usable method other than ``after`` (offered when ``after`` failed)."""
        return next((m for m in self.usable if m.method != after), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "order": self.codes,
            "shown": self.shown,
            "methods": [m.as_dict() for m in self.methods],
            "withheld": [w.as_dict() for w in self.withheld],
            "signals": dict(self.signals),
        }


# ---------------------------------------------------------------------------------------------
# Ranking


def money_text(amount: Decimal, currency: str) -> str:
    """¥1,234.50 for yuan, "12.00 USD" otherwise (the page and the reasons agree)."""
    amount = amount.quantize(CENT)
    return f"¥{amount:,}" if currency == "CNY" else f"{amount:,} {currency}"


def _label(method: str) -> str:
    try:
        return str(Method(method).label)
    except ValueError:
        return method


def rank_methods(context: CheckoutContext, config: OrderingConfig = DEFAULT_CONFIG) -> Ranking:
    """Rank every method this order can use for this buyer, each with score and reasons."""
    offered: list[RankedMethod] = []
    withheld: list[Withheld] = []
    last_success = _last_success(context.history)
    for method in context.methods:
        label = _label(method)
        why_not = _not_offered(method, context)
        if why_not:
            withheld.append(Withheld(method, label, why_not))
            continue
        reasons = [
            *_prior_reasons(method, config),
            *_history_reasons(method, context.history, last_success, config),
            *_device_reasons(method, context.device, config),
            *_region_reasons(method, context.region, config),
            *_amount_reasons(method, context.amount, config),
            *_wallet_reasons(method, context, config),
        ]
        reasons = [r for r in reasons if r.points or r.code.startswith("limit")]
        disabled = _disabled_reason(method, context)
        offered.append(
            RankedMethod(
                method=method,
                label=label,
                score=sum(r.points for r in reasons),
                reasons=tuple(reasons),
                enabled=not disabled,
                disabled_reason=disabled,
            )
        )
    position = {m: i for i, m in enumerate(context.methods)}
    offered.sort(key=lambda m: (not m.enabled, -m.score, position[m.method]))
    return Ranking(
        methods=tuple(offered),
        shown=_shown_count(offered, config),
        withheld=tuple(withheld),
        signals={
            "amount": str(context.amount),
            "currency": context.currency,
            "device": context.device.kind,
            "in_app": context.device.in_app,
            "region": context.region.code,
            "region_source": context.region.source,
            "history": len(context.history),
            "last_success": last_success or "",
        },
    )


def _shown_count(offered: Sequence[RankedMethod], config: OrderingConfig) -> int:
    usable = sum(1 for m in offered if m.enabled)
    shown = usable if usable <= config.max_shown else config.shown
    return min(len(offered), max(shown, config.min_shown))


def _serving(method: str, context: CheckoutContext) -> list[AccountOption]:
    return [a for a in context.accounts if method in a.methods]


def _not_offered(method: str, context: CheckoutContext) -> str:
    """Why the method is not offered at all ('' when it is). Staff see this text."""
    serving = _serving(method, context)
    if not serving:
        return _("No channel account serves this method.")
    enabled = [a for a in serving if a.enabled and a.weight > 0]
    if not enabled:
        return _("Every channel account serving it is switched off.")
    in_currency = [a for a in enabled if a.currency == context.currency]
    if not in_currency:
        return _("No enabled channel account takes %(currency)s.") % {"currency": context.currency}
    if not any(a.healthy for a in in_currency):
        return _("No healthy channel: every account's circuit breaker is open.")
    return ""


def _usable_accounts(method: str, context: CheckoutContext) -> list[AccountOption]:
    return [
        a
        for a in _serving(method, context)
        if a.enabled and a.weight > 0 and a.currency == context.currency and a.healthy
    ]


def _disabled_reason(method: str, context: CheckoutContext) -> str:
    """Why an offered method cannot take this payment ('' when it can). Buyers see this."""
    accounts = _usable_accounts(method, context)
    if not any(a.fits(context.amount) for a in accounts):
        highest = max(a.max_amount for a in accounts)
        if context.amount > highest:
            return _("Above this method's limit of %(limit)s per payment.") % {
                "limit": money_text(highest, context.currency)
            }
        lowest = min(a.min_amount for a in accounts)
        return _("Below this method's minimum of %(limit)s per payment.") % {
            "limit": money_text(lowest, context.currency)
        }
    if method == Method.BALANCE and context.wallet_balance < context.amount:
        return _("Your balance (%(balance)s) is less than %(amount)s.") % {
            "balance": money_text(context.wallet_balance, context.currency),
            "amount": money_text(context.amount, context.currency),
        }
    return ""


def _last_success(history: Iterable[PastPayment]) -> str | None:
    wins = [p for p in history if p.succeeded]
    return max(wins, key=lambda p: p.at).method if wins else None


def _prior_reasons(method: str, config: OrderingConfig) -> list[Reason]:
    points = config.prior.get(method, 0)
    return [Reason("prior", points, _("How often buyers use it (base)"))]


def _history_reasons(
    method: str, history: Sequence[PastPayment], last_success: str | None, config: OrderingConfig
) -> list[Reason]:
    reasons = []
    mine = sorted((p for p in history if p.method == method), key=lambda p: p.at)
    if last_success == method:
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
    failures = 0
    for past in reversed(mine):
        if past.succeeded:
            break
        failures += 1
    if failures:
        points = -min(failures * config.per_failure, config.max_failure_points)
        text = ngettext(
            "It did not go through the last time you tried it",
            "It did not go through the last %(count)d times you tried it",
            failures,
        ) % {"count": failures}
        reasons.append(Reason("history.failures", points, text))
    return reasons


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


# ---------------------------------------------------------------------------------------------
# Instalment plans (shown with card_instalments)


@dataclass(frozen=True)
class InstalmentPlan:
    months: int
    fee_percent: Decimal
    fee: Decimal
    total: Decimal
    per_month: Decimal


def instalment_plans(
    amount: Decimal, config: OrderingConfig = DEFAULT_CONFIG
) -> list[InstalmentPlan]:
    """The plans a buyer can choose with card instalments, with the issuer's fee stated
    before paying. The order amount is what is charged now; the fee is billed by the card
    issuer over the months, so ``total`` is what the buyer repays in all."""
    plans = []
    for months, percent in sorted(config.instalment_fees.items()):
        fee = (amount * percent / 100).quantize(CENT)
        total = amount + fee
        plans.append(InstalmentPlan(months, percent, fee, total, (total / months).quantize(CENT)))
    return plans


# ---------------------------------------------------------------------------------------------
# Reading the request (pure: plain header mappings in, values out)

_PHONE_UA = re.compile(
    r"iPhone|iPod|Android.+Mobile|Windows Phone|Mobile Safari|MicroMessenger|AlipayClient|\bMobi",
    re.I,
)
_TABLET_UA = re.compile(r"iPad|Tablet|Android(?!.*Mobile)", re.I)
_LANG_TAG = re.compile(r"^([a-zA-Z]{1,8})(?:-([a-zA-Z0-9]{1,8}))?(?:-([a-zA-Z0-9]{1,8}))?")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
# Script subtags that pin a Chinese variant to a region when no country is given.
_CHINESE_SCRIPT_REGION = {"hans": "CN", "hant": "TW"}


def device_from_meta(meta: Mapping[str, str]) -> DeviceInfo:
    """Phone or desktop from the ``Sec-CH-UA-Mobile`` client hint when the browser sends it,
    otherwise from the user agent; tablets count as desktop (a big screen, a keyboard)."""
    ua = meta.get("HTTP_USER_AGENT", "")
    in_app: InApp = "wechat" if "MicroMessenger" in ua else "alipay" if "AlipayClient" in ua else ""
    hint = meta.get("HTTP_SEC_CH_UA_MOBILE", "").strip()
    if hint == "?1":
        return DeviceInfo("phone", in_app)
    if hint == "?0":
        return DeviceInfo("desktop", in_app)
    if not ua:
        return DeviceInfo("unknown", in_app)
    if _TABLET_UA.search(ua) and "Mobile" not in ua:
        return DeviceInfo("desktop", in_app)
    return DeviceInfo("phone" if _PHONE_UA.search(ua) else "desktop", in_app)


def region_from_meta(
    meta: Mapping[str, str], *, trusted_proxy_count: int, region_header: str
) -> RegionInfo:
    """The buyer's country: the trusted proxy's header when a proxy is configured (a client
    can forge it otherwise), else the region of the first ``Accept-Language`` entry."""
    if trusted_proxy_count > 0:
        value = meta.get(region_header, "").strip()
        if _COUNTRY.match(value):
            return RegionInfo(value.upper(), "proxy")
    return region_from_language(meta.get("HTTP_ACCEPT_LANGUAGE", ""))


def region_from_language(header: str) -> RegionInfo:
    """``zh-CN`` → CN, ``zh-Hant-HK`` → HK, ``zh`` → CN, ``en-US`` → US, ``en`` → unknown
    (English alone says nothing about where the buyer is)."""
    first = max(
        (_weighted(part) for part in header.split(",") if part.strip()),
        key=lambda pair: pair[0],
        default=(0.0, ""),
    )[1]
    match = _LANG_TAG.match(first)
    if not match:
        return RegionInfo()
    language, *subtags = (s for s in match.groups() if s)
    for subtag in subtags:
        if len(subtag) == 2 and subtag.isalpha():
            return RegionInfo(subtag.upper(), "language")
    if language.lower() == "zh":
        for subtag in subtags:
            if subtag.lower() in _CHINESE_SCRIPT_REGION:
                return RegionInfo(_CHINESE_SCRIPT_REGION[subtag.lower()], "language")
        return RegionInfo(HOME_REGION, "language")
    return RegionInfo()


def _weighted(part: str) -> tuple[float, str]:
    tag, _sep, params = part.strip().partition(";")
    quality = 1.0
    for param in params.split(";"):
        name, _eq, value = param.strip().partition("=")
        if name == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
    return quality, tag.strip()


# ---------------------------------------------------------------------------------------------
# Selector and the record kept on the payment


def checkout_context(
    *,
    user,
    amount: Decimal,
    currency: str,
    device: DeviceInfo,
    region: RegionInfo,
    config: OrderingConfig = DEFAULT_CONFIG,
) -> CheckoutContext:
    """Load availability, history and the wallet balance in three queries, whatever the
    number of accounts, methods or past payments."""
    from payments import ledger
    from payments.models import ChannelAccount, ChannelHealth, Payment
    from payments.states import PAYMENT_PAID, PaymentStatus

    accounts = tuple(
        AccountOption(
            code=row.code,
            methods=frozenset(row.methods or ()),
            enabled=row.enabled,
            healthy=_breaker_of(row) != ChannelHealth.Breaker.OPEN,
            currency=row.currency,
            min_amount=row.min_amount,
            max_amount=row.max_amount,
            weight=row.weight,
        )
        for row in ChannelAccount.objects.filter(enabled=True).select_related("health")
    )
    final = [*PAYMENT_PAID, PaymentStatus.FAILED]
    rows = (
        Payment.objects.filter(buyer=user, status__in=final)
        .order_by("-created_at")
        .values_list("method", "status", "succeeded_at", "created_at")[: config.history_limit]
    )
    history = tuple(
        PastPayment(method=method, succeeded=status in PAYMENT_PAID, at=succeeded_at or created_at)
        for method, status, succeeded_at, created_at in rows
    )
    wallet = ledger.balance(ledger.buyer_wallet(user.pk), natural=True)
    return CheckoutContext(
        amount=amount,
        currency=currency,
        history=history,
        device=device,
        region=region,
        accounts=accounts,
        wallet_balance=wallet,
    )


def _breaker_of(account) -> str:
    """The breaker in effect now: an open breaker whose cool-down has passed is half-open
    (probing) even before routing has written so — otherwise a method whose every account
    had opened would never be offered, never routed, and never probed again."""
    import time

    from payments.models import ChannelHealth
    from payments.routing import AccountHealth

    try:
        health = account.health
    except ChannelHealth.DoesNotExist:  # no outcome recorded yet: nothing says it is unhealthy
        return ChannelHealth.Breaker.CLOSED
    if not health.state:  # set by hand, without routing's counters: take the column as it is
        return health.breaker
    return AccountHealth.from_json(health.state).breaker_at(time.time())


def ranking_record(*, payment, ranking: Ranking) -> None:
    """Keep the ranking the buyer saw on the payment (``client["ordering"]``) so staff can
    see later why the methods were in that order."""
    from payments.models import Payment

    client = dict(
        Payment.objects.filter(pk=payment.pk).values_list("client", flat=True).first() or {}
    )
    client["ordering"] = ranking.as_dict()
    Payment.objects.filter(pk=payment.pk).update(client=client)
    payment.client = client
