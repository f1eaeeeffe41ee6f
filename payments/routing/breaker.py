"""The circuit breaker per account: open after a burst of errors/timeouts, half-open after a
cool-down, single probe attempts, closed again after enough probes succeed."""

from __future__ import annotations

from dataclasses import dataclass, replace

from payments.routing.config import CLOSED, HALF_OPEN, OPEN, OUTAGE, Breaker, RoutingConfig
from payments.routing.state import AccountHealth


@dataclass(frozen=True)
class BreakerTransition:
    """One state change of an account's circuit breaker; stores turn it into an event."""

    from_state: Breaker
    to_state: Breaker
    reason: str
    at: float


Change = tuple[AccountHealth, tuple[BreakerTransition, ...]]


def breaker_after(state: AccountHealth, outcome: str, now: float, config: RoutingConfig) -> Change:
    """The breaker after one outcome: closed counts errors in its window and opens on a
    burst; open ignores late outcomes; half-open treats the outcome as the probe's result."""
    effective = state.breaker_at(now)
    is_error = outcome in OUTAGE
    if effective == CLOSED:
        horizon = now - config.breaker_window_seconds
        recent = tuple(r for r in state.recent if r[0] > horizon) + ((now, is_error),)
        recent = recent[-config.breaker_window_attempts :]
        errors = sum(1 for _, err in recent if err)
        if (
            is_error
            and errors >= config.breaker_min_errors
            and errors / len(recent) >= config.breaker_error_ratio
        ):
            reason = (
                f"{errors} errors/timeouts in the last {len(recent)} attempts "
                f"within {config.breaker_window_seconds:g}s"
            )
            return _open(state, now, config.cooldown_seconds, reason)
        return replace(state, recent=recent), ()
    if effective == OPEN:
        # A late outcome of an attempt started before the breaker opened: estimates only.
        return state, ()
    # Half-open: this outcome is a probe result (or as good as one).
    transitions: list[BreakerTransition] = []
    if state.breaker == OPEN:
        transitions.append(_cooled_down(state, now))
        state = replace(state, breaker=HALF_OPEN, probe_successes=0)
    if outcome == "declined":
        return replace(state, last_probe_at=None), tuple(transitions)
    if outcome == "succeeded":
        successes = state.probe_successes + 1
        if successes >= config.probes_to_close:
            reason = f"{successes} probe attempts succeeded"
            transitions.append(BreakerTransition(HALF_OPEN, CLOSED, reason, now))
            closed = replace(
                state,
                breaker=CLOSED,
                opened_at=None,
                cooldown=0.0,
                last_probe_at=None,
                probe_successes=0,
                recent=(),
            )
            return closed, tuple(transitions)
        return replace(state, probe_successes=successes, last_probe_at=None), tuple(transitions)
    cooldown = min(config.max_cooldown_seconds, max(config.cooldown_seconds, 2 * state.cooldown))
    reopened, (transition,) = _open(state, now, cooldown, f"probe attempt ended {outcome}")
    return reopened, (*transitions, transition)


def _open(state: AccountHealth, now: float, cooldown: float, reason: str) -> Change:
    transition = BreakerTransition(state.breaker, OPEN, f"{reason}; cool-down {cooldown:g}s", now)
    opened = replace(
        state,
        breaker=OPEN,
        opened_at=now,
        cooldown=cooldown,
        last_probe_at=None,
        probe_successes=0,
        recent=(),
    )
    return opened, (transition,)


def _cooled_down(state: AccountHealth, now: float) -> BreakerTransition:
    return BreakerTransition(
        OPEN, HALF_OPEN, f"cool-down of {state.cooldown:g}s elapsed; probing", now
    )


def reserve_probe(state: AccountHealth, now: float) -> Change:
    """Hand the account's probe slot to one attempt (and mark open → half-open if due)."""
    transitions: tuple[BreakerTransition, ...] = ()
    if state.breaker == OPEN:
        transitions = (_cooled_down(state, now),)
        state = replace(state, breaker=HALF_OPEN, probe_successes=0)
    return replace(state, last_probe_at=now), transitions
