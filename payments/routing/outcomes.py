"""Folding real outcomes (successes, declines, errors, timeouts, notification delays) into an
account's health: the estimates learn, the breaker decides."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from payments.routing.breaker import BreakerTransition, Change, breaker_after
from payments.routing.config import CLOSED, OUTCOMES, SCORED, RoutingConfig
from payments.routing.estimates import Estimate
from payments.routing.state import AccountHealth


def apply_outcome(
    state: AccountHealth,
    *,
    method: str,
    band: str,
    outcome: str,
    now: float,
    delay: float | None,
    config: RoutingConfig,
) -> Change:
    """Fold one real outcome into an account's health; returns the new state and any breaker
    transitions it caused.

    A buyer-side decline says nothing against the channel: the estimate ignores it and the
    breaker counts it as a working attempt. Errors and timeouts feed
    the breaker; while half-open, any outcome that is not a success or a buyer decline fails
    the probe. Outcomes while the breaker is not closed teach the breaker only: the outage is
    its business, and once the channel is back its pre-outage estimate (faded by the time it
    was out) is a better guess than the failures of the outage.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; expected one of {', '.join(OUTCOMES)}")
    counts = dict(state.counts)
    counts[outcome] = counts.get(outcome, 0) + 1
    changes: dict[str, Any] = {"counts": counts, "last_outcome_at": now}

    if outcome in SCORED and state.breaker_at(now) == CLOSED:
        key = f"{method}:{band}"
        estimate, moved = state.estimates.get(key, Estimate(at=now)).observe(
            outcome == "succeeded", now, config
        )
        estimates = dict(state.estimates)
        if moved:
            # Shifts are nearly always channel-wide (outage, drift), so the method's other
            # bands restart too instead of lending the stale rate back to this one.
            prefix = method + ":"
            for other, e in state.estimates.items():
                if other.startswith(prefix):
                    estimates[other] = e.restarted(now)
        estimates[key] = estimate
        changes["estimates"] = estimates

    if delay is not None:
        changes["notify_delay"] = (
            delay if state.notify_delay is None else 0.8 * state.notify_delay + 0.2 * delay
        )
        changes["slow_notices"] = state.slow_notices + (delay > config.slow_notify_seconds)

    state = replace(state, **changes)
    return breaker_after(state, outcome, now, config)


@dataclass(frozen=True)
class ObservedOutcome:
    """One outcome reported after the fact (by a channel's notification), to fold in later."""

    method: str
    amount: Decimal
    outcome: str
    at: float
    delay: float | None = None


def apply_outcomes(
    state: AccountHealth, observed: Iterable[ObservedOutcome], config: RoutingConfig
) -> Change:
    """Fold several outcomes in the order given. The state's clock never runs backwards: an
    outcome older than the last one folded counts as happening with it."""
    transitions: list[BreakerTransition] = []
    for o in observed:
        now = max(o.at, state.last_outcome_at or o.at)
        state, moved = apply_outcome(
            state,
            method=o.method,
            band=config.band(o.amount),
            outcome=o.outcome,
            now=now,
            delay=o.delay,
            config=config,
        )
        transitions.extend(moved)
    return state, tuple(transitions)
