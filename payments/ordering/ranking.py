"""The ranking itself: which methods are offered, which are shown disabled and why, and the
order of the rest by the sum of their reasons' points (:func:`rank_methods`, pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from payments.models import Method
from payments.ordering.rules import (
    DEFAULT_CONFIG,
    OrderingConfig,
    Reason,
    _amount_reasons,
    _device_reasons,
    _history_reasons,
    _last_success,
    _prior_reasons,
    _region_reasons,
    _wallet_reasons,
    blocked_in_app,
    money_text,
    pinned_first,
    scene_points,
)
from payments.ordering.signals import AccountOption, CheckoutContext


@dataclass(frozen=True)
class RankedMethod:
    """One offered method: its score and reasons; ``detail`` is a line for the buyer under
    its name (the balance available), ``disabled_reason`` why it cannot take this payment."""

    method: str
    label: str
    score: int
    reasons: tuple[Reason, ...]
    enabled: bool = True
    disabled_reason: str = ""
    detail: str = ""

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
        why_not = _not_offered(method, context) or blocked_in_app(method, context.device, config)
        if why_not:
            withheld.append(Withheld(method, label, why_not))
            continue
        scene = [
            *_device_reasons(method, context.device, config),
            *_region_reasons(method, context.region, config),
            *_amount_reasons(method, context.amount, config),
        ]
        history = _history_reasons(
            method,
            context.history,
            last_success,
            config,
            fits_scene=scene_points(scene) > config.misfit_points,
            now=context.now,
        )
        reasons = [
            *_prior_reasons(method, config),
            *history,
            *scene,
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
                detail=_detail(method, context),
            )
        )
    position = {m: i for i, m in enumerate(context.methods)}
    offered.sort(
        key=lambda m: (
            not m.enabled,
            not pinned_first(m.method, context.device, config),
            -m.score,
            position[m.method],
        )
    )
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


def _detail(method: str, context: CheckoutContext) -> str:
    if method == Method.BALANCE:
        return _("Available: %(balance)s") % {
            "balance": money_text(context.wallet_balance, context.currency)
        }
    return ""


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


def charge_currencies(method: str, context: CheckoutContext) -> frozenset[str]:
    """The currencies the accounts that can take this payment by ``method`` charge."""
    found: set[str] = set()
    for option in _usable_accounts(method, context):
        if option.fits(context.amount):
            found |= option.charges or {option.currency}
    return frozenset(found)


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
