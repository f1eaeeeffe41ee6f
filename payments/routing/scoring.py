"""The decision for one attempt: which accounts may serve it and in which order (the
failover sequence), by weight × Thompson-drawn success × (amount − fee), with near-ties left
to cost and weight; and :meth:`Router.record_outcome`, the way real outcomes come back."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from payments.routing.breaker import reserve_probe
from payments.routing.config import (
    CENT,
    CLOSED,
    HALF_OPEN,
    OPEN,
    Approach,
    Breaker,
    CandidateAccount,
    Outcome,
    RoutingConfig,
)
from payments.routing.estimates import beta_variance
from payments.routing.outcomes import apply_outcome
from payments.routing.state import AccountHealth
from payments.routing.stores import HealthStore


@dataclass(frozen=True)
class CandidateScore:
    """One account as routing saw it for one attempt; ``excluded`` says why it was left out."""

    code: str
    fee: Decimal
    weight: Decimal
    breaker: Breaker = CLOSED
    estimate: float | None = None  # posterior mean success rate
    sample: float | None = None  # the Thompson draw used for this decision
    expected_value: Decimal | None = None  # success used for scoring × (amount − fee)
    score: Decimal | None = None  # weight × expected value
    note: str = ""  # e.g. "probe", "as good as the best draw"
    excluded: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "estimate": None if self.estimate is None else round(self.estimate, 4),
            "sample": None if self.sample is None else round(self.sample, 4),
            "fee": str(self.fee),
            "expected_value": None if self.expected_value is None else str(self.expected_value),
            "weight": str(self.weight),
            "score": None if self.score is None else str(self.score.quantize(CENT)),
            "breaker": self.breaker,
            "note": self.note,
            "excluded": self.excluded,
        }


@dataclass(frozen=True)
class RoutingDecision:
    """The ranked accounts for one attempt: ``order`` is the failover sequence to walk."""

    method: str
    amount: Decimal
    currency: str
    band: str
    at: datetime
    approach: Approach
    winner: str | None
    order: tuple[str, ...]
    candidates: tuple[CandidateScore, ...]

    def candidate(self, code: str) -> CandidateScore:
        for c in self.candidates:
            if c.code == code:
                return c
        raise KeyError(code)

    def as_dict(self) -> dict[str, Any]:
        """JSON for ``Attempt.routing``: everything staff need to read the decision."""
        return {
            "method": self.method,
            "amount": str(self.amount),
            "currency": self.currency,
            "band": self.band,
            "at": self.at.isoformat(),
            "approach": self.approach,
            "winner": self.winner,
            "order": list(self.order),
            "candidates": [c.as_dict() for c in self.candidates],
        }


@dataclass
class _Scored:
    """Working row for one usable account while a decision is being made."""

    account: CandidateAccount
    state: AccountHealth
    breaker: Breaker
    fee: Decimal
    mean: float = 0.0
    variance: float = 0.0
    sample: float = 0.0
    evidence: float = 0.0
    note: str = ""
    expected_value: Decimal = Decimal(0)
    score: Decimal = Decimal(0)


def _probability(p: float) -> Decimal:
    return Decimal(f"{p:.6f}")


class Router:
    """Ranks candidate accounts for an attempt and learns from the outcomes it is told about."""

    def __init__(self, store: HealthStore, config: RoutingConfig | None = None) -> None:
        self.store = store
        self.config = config or RoutingConfig()

    def rank(
        self,
        candidates: Sequence[CandidateAccount],
        *,
        method: str,
        amount: Decimal,
        currency: str,
        now: datetime,
        rng: random.Random,
        exclude: Iterable[str] = (),
        day_volume: Mapping[str, Decimal] | None = None,
    ) -> RoutingDecision:
        """Order the usable accounts best first; every other account says why it is out.

        ``exclude`` holds accounts this payment already tried (failover walks ``order``).
        ``day_volume`` is today's succeeded + pending volume per account code, for daily caps.
        A half-open account whose probe slot is free goes first and its slot is reserved in
        the store (the only write ``rank`` makes). When no account has a closed breaker the
        decision is ``degraded``: the open and half-open ones are ranked anyway, because trying
        a doubtful channel beats refusing every buyer. Deterministic for a given ``rng``
        state, store state and candidate order.
        """
        config = self.config
        t = now.timestamp()
        band = config.band(amount)
        tried = set(exclude)
        volumes = day_volume or {}
        states = self.store.load([c.code for c in candidates])

        excluded: list[CandidateScore] = []
        usable: list[_Scored] = []
        for account in candidates:
            state = states.get(account.code) or AccountHealth()
            breaker = state.breaker_at(t)
            fee = account.fee_for(amount)
            reason = _static_exclusion(account, method, amount, currency, tried, volumes, fee)
            if reason:
                excluded.append(
                    CandidateScore(account.code, fee, account.weight, breaker, excluded=reason)
                )
            else:
                usable.append(_Scored(account, state, breaker, fee))

        probe = next(
            (s for s in usable if s.breaker == HALF_OPEN and s.state.probe_free(t, config)), None
        )
        pool = [s for s in usable if s.breaker == CLOSED]
        if pool:
            approach: Approach = "exploit"
            if probe is not None:
                pool.append(probe)
            for s in usable:
                if s not in pool:
                    excluded.append(
                        CandidateScore(
                            s.account.code,
                            s.fee,
                            s.account.weight,
                            s.breaker,
                            excluded=_held_out(s),
                        )
                    )
        else:
            pool = usable
            approach = "degraded" if pool else "none"

        for s in pool:
            alpha, beta = s.state.posterior(method, band, t, config)
            s.mean = alpha / (alpha + beta)
            s.variance = beta_variance(alpha, beta)
            s.evidence = alpha + beta - 2.0
            s.sample = rng.betavariate(alpha, beta)

        cold = bool(pool) and max(s.evidence for s in pool) < config.cold_evidence
        ranked = self._order(pool, amount, use_sample=not cold, cold=cold)
        if probe is not None:
            # A half-open account gets its one probe attempt first; failover covers it.
            ranked.remove(probe)
            ranked.insert(0, probe)
            probe.note = "probe: breaker half-open"
            self.store.update(probe.account.code, lambda st: reserve_probe(st, t))
            if approach == "exploit":
                approach = "explore"
        elif (
            approach == "exploit"
            and not cold
            and self._greedy_winner(pool, amount) is not ranked[0]
        ):
            approach = "explore"

        order = tuple(s.account.code for s in ranked)
        scored = tuple(
            CandidateScore(
                s.account.code,
                s.fee,
                s.account.weight,
                s.breaker,
                estimate=s.mean,
                sample=s.sample,
                expected_value=s.expected_value.quantize(CENT),
                score=s.score,
                note=s.note,
            )
            for s in ranked
        )
        return RoutingDecision(
            method=method,
            amount=amount,
            currency=currency,
            band=band,
            at=now,
            approach=approach,
            winner=order[0] if order else None,
            order=order,
            candidates=scored + tuple(excluded),
        )

    def _order(
        self, pool: list[_Scored], amount: Decimal, *, use_sample: bool, cold: bool = False
    ) -> list[_Scored]:
        """Rank by weight × success × (amount − fee); a success within the noise of the best
        one (``tolerance_z`` standard deviations of the two estimates, at most
        ``tolerance_cap``) is scored as the best one, so cost and weight settle near-ties.

        ``cold``: nothing is measured yet (``cold_evidence``), so the estimates are compared
        with the whole of their noise (no cap): until the evidence clearly separates them,
        cost and weight decide."""
        if not pool:
            return []
        config = self.config
        value = (lambda s: s.sample) if use_sample else (lambda s: s.mean)
        best = max(pool, key=value)
        top = value(best)
        for s in pool:
            p = value(s)
            noise = config.tolerance_z * math.sqrt(best.variance + s.variance)
            tolerance = noise if cold else min(config.tolerance_cap, noise)
            s.note = ""
            measured = min(s.evidence, best.evidence) >= config.tie_evidence
            if s is not best and (cold or measured) and top - p <= tolerance:
                s.note = (
                    f"cold start (under {config.cold_evidence:g} observations): within "
                    f"{tolerance:.3f} of the best estimate {top:.4f}: scored as equal"
                    if cold
                    else f"within {tolerance:.3f} of the best draw {top:.4f}: scored as equal"
                )
                p = top
            s.expected_value = _probability(p) * (amount - s.fee)
            s.score = s.expected_value * s.account.weight
        return sorted(pool, key=lambda s: (-s.score, s.fee, s.account.code))

    def _greedy_winner(self, pool: list[_Scored], amount: Decimal) -> _Scored:
        """The account the posterior means alone would pick: when the draw picks another one,
        this decision is exploring."""
        saved = [(s.note, s.expected_value, s.score) for s in pool]
        winner = self._order(pool, amount, use_sample=False)[0]
        for s, (note, ev, score) in zip(pool, saved, strict=True):
            s.note, s.expected_value, s.score = note, ev, score
        return winner

    def record_outcome(
        self,
        account_code: str,
        method: str,
        amount: Decimal,
        outcome: Outcome | str,
        now: datetime,
        delay: float | timedelta | None = None,
    ) -> AccountHealth:
        """Feed one real outcome back (``delay``: how late the channel's notification came)."""
        if isinstance(delay, timedelta):
            delay = delay.total_seconds()
        band = self.config.band(amount)
        t = now.timestamp()
        return self.store.update(
            account_code,
            lambda state: apply_outcome(
                state,
                method=method,
                band=band,
                outcome=outcome,
                now=t,
                delay=delay,
                config=self.config,
            ),
        )


def _static_exclusion(
    account: CandidateAccount,
    method: str,
    amount: Decimal,
    currency: str,
    tried: set[str],
    volumes: Mapping[str, Decimal],
    fee: Decimal,
) -> str:
    """Why configuration alone rules this account out for this attempt ('' if it does not)."""
    if account.code in tried:
        return "already tried for this payment"
    if not account.enabled:
        return "disabled"
    if method not in account.methods:
        return f"does not serve {method}"
    if account.currency != currency:
        return f"settles in {account.currency}, not {currency}"
    if account.min_amount is not None and amount < account.min_amount:
        return f"amount below the minimum of {account.min_amount}"
    if account.max_amount is not None and amount > account.max_amount:
        return f"amount above the maximum of {account.max_amount}"
    if account.weight <= 0:
        return "routing weight is 0"
    if fee >= amount:
        return f"fee {fee} is not below the amount"
    if account.daily_cap is not None:
        used = volumes.get(account.code, Decimal(0))
        if used + amount > account.daily_cap:
            return f"daily cap {account.daily_cap} reached ({used} used today)"
    return ""


def _held_out(s: _Scored) -> str:
    if s.breaker == OPEN and s.state.opened_at is not None:
        until = datetime.fromtimestamp(s.state.opened_at + s.state.cooldown, tz=UTC)
        return f"breaker open until {until:%Y-%m-%d %H:%M:%S} UTC"
    return "breaker half-open: waiting for the probe's result"
