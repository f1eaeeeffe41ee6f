"""Which channel account serves a payment attempt, and why (DESIGN.md §3 "Routing").

The core is pure: it sees frozen :class:`CandidateAccount` rows, a :class:`HealthStore` and a
seeded ``random.Random``, so the ``simulate_routing`` command, the unit tests and real traffic
(``payments.health.route``) run the very same code. docs/routing.md explains the model.

Scoring in one breath: each account × method × amount band keeps recency-weighted Beta counts
of successes and failures; a Thompson draw from that posterior is the success estimate (so
uncertain or recovering accounts keep getting a share of traffic); the score is
``weight × estimate × (amount − fee)``, the expected value of the attempt; draws that are
statistically indistinguishable from the best draw count as equal, so cost and staff weight
decide between equally good accounts instead of sampling noise. A circuit breaker per account
takes accounts out after a burst of errors/timeouts and lets single probes through after a
cool-down.

Money is ``Decimal``; probabilities are floats.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Protocol

CENT = Decimal("0.01")
HUNDRED = Decimal(100)

Outcome = Literal["succeeded", "declined", "failed", "error", "timeout"]
OUTCOMES: tuple[str, ...] = ("succeeded", "declined", "failed", "error", "timeout")
# Outcomes that say something about the channel: a buyer-side decline says nothing.
_SCORED = frozenset({"succeeded", "failed", "error", "timeout"})
_OUTAGE = frozenset({"error", "timeout"})

Breaker = Literal["closed", "open", "half_open"]
CLOSED: Breaker = "closed"
OPEN: Breaker = "open"
HALF_OPEN: Breaker = "half_open"

Approach = Literal["exploit", "explore", "degraded", "none"]


# ---------------------------------------------------------------------------------------------
# Configuration and inputs


@dataclass(frozen=True)
class RoutingConfig:
    """Tuning knobs; the defaults are what docs/routing.md and the simulations were run with."""

    # Success estimates: every new observation multiplies the old counts by (1 - 1/memory), so
    # an active account is judged on roughly its last `memory` attempts; counts also halve
    # every `half_life_seconds` of wall time, so an idle account drifts back to "unknown".
    memory: int = 800
    half_life_seconds: float = 1200.0
    # Change detection: a short memory of `fast_memory` attempts; when its rate differs from
    # the long memory's by more than `change_z` standard errors, the long memory restarts
    # from it.
    fast_memory: int = 30
    change_z: float = 3.0
    # Amount bands (upper edges, exclusive). A band's estimate pools the method's other bands
    # until its own rate differs from theirs by more than `band_z` standard errors.
    band_edges: tuple[Decimal, ...] = (Decimal("200"), Decimal("1000"), Decimal("5000"))
    band_z: float = 3.0
    # Two draws closer than `tolerance_z` standard deviations of their difference (capped at
    # `tolerance_cap`) count as equally good, and cost/weight decide — once both accounts have
    # at least `tie_evidence` observations' worth of evidence; before that, the draws alone
    # decide, so a cold start explores instead of settling on the cheapest by default.
    tolerance_z: float = 1.5
    tolerance_cap: float = 0.03
    tie_evidence: float = 100.0
    # Circuit breaker: open when, among the last `breaker_window_attempts` attempts of the
    # last `breaker_window_seconds`, at least `breaker_min_errors` (and at least
    # `breaker_error_ratio` of them) were errors or timeouts.
    breaker_window_attempts: int = 10
    breaker_window_seconds: float = 60.0
    breaker_min_errors: int = 5
    breaker_error_ratio: float = 0.5
    cooldown_seconds: float = 30.0
    max_cooldown_seconds: float = 600.0
    probe_interval_seconds: float = 10.0
    probes_to_close: int = 3
    # Notification delay: smoothed for staff; a notice slower than this is counted as slow.
    slow_notify_seconds: float = 120.0

    def band(self, amount: Decimal) -> str:
        """The amount band label, e.g. ``200-1000`` or ``5000+``."""
        low = Decimal(0)
        for edge in self.band_edges:
            if amount < edge:
                return f"{low:f}-{edge:f}"
            low = edge
        return f"{low:f}+"


@dataclass(frozen=True)
class CandidateAccount:
    """What routing needs to know about one configured channel account."""

    code: str
    methods: frozenset[str]
    enabled: bool = True
    fee_percent: Decimal = Decimal("0")
    fee_fixed: Decimal = Decimal("0")
    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    daily_cap: Decimal | None = None
    currency: str = "CNY"
    weight: Decimal = Decimal("1")

    def __post_init__(self) -> None:
        # Accept any iterable of methods (a JSONField list) but keep the dataclass hashable.
        if not isinstance(self.methods, frozenset):
            object.__setattr__(self, "methods", frozenset(self.methods))

    def fee_for(self, amount: Decimal) -> Decimal:
        """The channel's fee for this amount, rounded to the cent like ChannelAccount.fee_for."""
        return (amount * self.fee_percent / HUNDRED + self.fee_fixed).quantize(CENT)


# ---------------------------------------------------------------------------------------------
# Health state (pure values; stores persist them)


@dataclass(frozen=True)
class Estimate:
    """Recency-weighted success/failure counts for one account × method × amount band.

    ``successes``/``failures`` are the long memory routing scores with; ``fast_*`` remember
    only the last few dozen attempts, however old (no time decay, so a rarely used account
    still has a window to compare), and exist to notice a change: when they disagree with the
    long memory beyond chance, the long memory is replaced by them.
    """

    successes: float = 0.0
    failures: float = 0.0
    at: float = 0.0  # epoch seconds of the last update
    fast_successes: float = 0.0
    fast_failures: float = 0.0

    def decayed(self, now: float, half_life: float) -> tuple[float, float]:
        if now <= self.at:
            return self.successes, self.failures
        factor = 0.5 ** ((now - self.at) / half_life)
        return self.successes * factor, self.failures * factor

    def restarted(self, now: float) -> Estimate:
        """The long memory replaced by the short one (after a detected change)."""
        return Estimate(
            self.fast_successes, self.fast_failures, now, self.fast_successes, self.fast_failures
        )

    def observe(self, success: bool, now: float, config: RoutingConfig) -> tuple[Estimate, bool]:
        """This estimate after one more scored attempt, and whether its rate has moved."""
        factor = 0.5 ** (max(0.0, now - self.at) / config.half_life_seconds)
        keep, keep_fast = factor * (1.0 - 1.0 / config.memory), 1.0 - 1.0 / config.fast_memory
        hit, miss = (1.0, 0.0) if success else (0.0, 1.0)
        s, f = self.successes * keep + hit, self.failures * keep + miss
        fs, ff = self.fast_successes * keep_fast + hit, self.fast_failures * keep_fast + miss
        if fs + ff >= config.fast_memory / 2:
            slow_a, slow_b = 1.0 + s, 1.0 + f
            slow = slow_a / (slow_a + slow_b)
            fast = (1.0 + fs) / (2.0 + fs + ff)
            noise = math.sqrt(slow * (1.0 - slow) / (fs + ff) + _beta_variance(slow_a, slow_b))
            if abs(fast - slow) > config.change_z * noise:
                return Estimate(fs, ff, now, fs, ff), True
        return Estimate(s, f, now, fs, ff), False


@dataclass(frozen=True)
class BreakerTransition:
    """One state change of an account's circuit breaker; stores turn it into an event."""

    from_state: Breaker
    to_state: Breaker
    reason: str
    at: float


@dataclass(frozen=True)
class AccountHealth:
    """Everything routing remembers about one account, JSON-serialisable via to_json()."""

    breaker: Breaker = CLOSED
    opened_at: float | None = None
    cooldown: float = 0.0
    last_probe_at: float | None = None
    probe_successes: int = 0
    # (epoch seconds, was an error/timeout) for attempts inside the breaker window.
    recent: tuple[tuple[float, bool], ...] = ()
    estimates: Mapping[str, Estimate] = field(default_factory=dict)
    counts: Mapping[str, int] = field(default_factory=dict)
    notify_delay: float | None = None
    slow_notices: int = 0
    last_outcome_at: float | None = None

    def breaker_at(self, now: float) -> Breaker:
        """The effective breaker state: an open breaker whose cool-down is over is half-open."""
        if (
            self.breaker == OPEN
            and self.opened_at is not None
            and now >= self.opened_at + self.cooldown
        ):
            return HALF_OPEN
        return self.breaker

    def probe_free(self, now: float, config: RoutingConfig) -> bool:
        """Whether a half-open account may take one more probe attempt now."""
        return (
            self.last_probe_at is None or now - self.last_probe_at >= config.probe_interval_seconds
        )

    def posterior(
        self, method: str, band: str, now: float, config: RoutingConfig
    ) -> tuple[float, float]:
        """Beta(α, β) for this method and amount band over a uniform Beta(1, 1) prior.

        A band pools the evidence of the method's other bands while its own rate agrees with
        theirs (within ``band_z`` standard errors) — so a thin band starts from the method's
        rate and near-ties are judged on all the evidence — and stands on its own evidence
        once it significantly differs (e.g. a channel that fails large amounts only).
        """
        own_s = own_f = other_s = other_f = 0.0
        prefix = method + ":"
        own_key = prefix + band
        for key, estimate in self.estimates.items():
            if not key.startswith(prefix):
                continue
            s, f = estimate.decayed(now, config.half_life_seconds)
            if key == own_key:
                own_s, own_f = s, f
            else:
                other_s += s
                other_f += f
        own_a, own_b = 1.0 + own_s, 1.0 + own_f
        if other_s + other_f <= 0:
            return own_a, own_b
        other_a, other_b = 1.0 + other_s, 1.0 + other_f
        gap = abs(own_a / (own_a + own_b) - other_a / (other_a + other_b))
        noise = math.sqrt(_beta_variance(own_a, own_b) + _beta_variance(other_a, other_b))
        if gap > config.band_z * noise:
            return own_a, own_b
        return own_a + other_s, own_b + other_f

    def summary(self, now: float, config: RoutingConfig) -> dict[str, Any]:
        """What staff see: breaker, smoothed success per method/band, counts, notify delay."""
        rates = {}
        for key in sorted(self.estimates):
            method, band = key.split(":", 1)
            alpha, beta = self.posterior(method, band, now, config)
            rates[key] = {
                "success": round(alpha / (alpha + beta), 4),
                "evidence": round(alpha + beta - 2, 1),
            }
        return {
            "breaker": self.breaker_at(now),
            "opened_at": self.opened_at,
            "cooldown_seconds": self.cooldown,
            "success": rates,
            "counts": dict(self.counts),
            "notify_delay_seconds": None
            if self.notify_delay is None
            else round(self.notify_delay, 1),
            "slow_notices": self.slow_notices,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "breaker": self.breaker,
            "opened_at": self.opened_at,
            "cooldown": self.cooldown,
            "last_probe_at": self.last_probe_at,
            "probe_successes": self.probe_successes,
            "recent": [[at, err] for at, err in self.recent],
            "estimates": {
                k: [e.successes, e.failures, e.at, e.fast_successes, e.fast_failures]
                for k, e in self.estimates.items()
            },
            "counts": dict(self.counts),
            "notify_delay": self.notify_delay,
            "slow_notices": self.slow_notices,
            "last_outcome_at": self.last_outcome_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> AccountHealth:
        if not data:
            return cls()
        return cls(
            breaker=data.get("breaker", CLOSED),
            opened_at=data.get("opened_at"),
            cooldown=float(data.get("cooldown", 0.0)),
            last_probe_at=data.get("last_probe_at"),
            probe_successes=int(data.get("probe_successes", 0)),
            recent=tuple((float(at), bool(err)) for at, err in data.get("recent", ())),
            estimates={k: Estimate(*v) for k, v in data.get("estimates", {}).items()},
            counts=dict(data.get("counts", {})),
            notify_delay=data.get("notify_delay"),
            slow_notices=int(data.get("slow_notices", 0)),
            last_outcome_at=data.get("last_outcome_at"),
        )


Change = tuple[AccountHealth, tuple[BreakerTransition, ...]]


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

    if outcome in _SCORED and state.breaker_at(now) == CLOSED:
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
    return _breaker_after(state, outcome, now, config)


@dataclass(frozen=True)
class ObservedOutcome:
    """One outcome reported after the fact (by a channel's notification), to fold in later."""

    method: str
    amount: Decimal
    outcome: str
    at: float
    delay: float | None = None


def apply_outcomes(state: AccountHealth, observed: Iterable[ObservedOutcome], config: RoutingConfig) -> Change:
    """Fold several outcomes in the order given. The state's clock never runs backwards: an
    outcome older than the last one folded counts as happening with it."""
    transitions: list[BreakerTransition] = []
    for o in observed:
        now = max(o.at, state.last_outcome_at or o.at)
        state, moved = apply_outcome(
            state, method=o.method, band=config.band(o.amount), outcome=o.outcome, now=now, delay=o.delay, config=config
        )
        transitions.extend(moved)
    return state, tuple(transitions)


def _breaker_after(state: AccountHealth, outcome: str, now: float, config: RoutingConfig) -> Change:
    effective = state.breaker_at(now)
    is_error = outcome in _OUTAGE
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


# ---------------------------------------------------------------------------------------------
# Stores


class HealthStore(Protocol):
    """Where account health lives: in memory (simulation, unit tests) or in the database."""

    def load(self, codes: Sequence[str]) -> Mapping[str, AccountHealth]:
        """Current health of these accounts (missing ones are simply absent)."""
        ...

    def update(self, code: str, change: Callable[[AccountHealth], Change]) -> AccountHealth:
        """Apply ``change`` atomically to one account and record its breaker transitions."""
        ...


@dataclass(frozen=True)
class BreakerEventRecord:
    code: str
    transition: BreakerTransition


class InMemoryHealthStore:
    """A dict of account health plus the list of breaker events, for simulation and tests."""

    def __init__(self) -> None:
        self.states: dict[str, AccountHealth] = {}
        self.events: list[BreakerEventRecord] = []

    def load(self, codes: Sequence[str]) -> Mapping[str, AccountHealth]:
        return self.states

    def update(self, code: str, change: Callable[[AccountHealth], Change]) -> AccountHealth:
        state, transitions = change(self.states.get(code, AccountHealth()))
        self.states[code] = state
        self.events.extend(BreakerEventRecord(code, t) for t in transitions)
        return state


# ---------------------------------------------------------------------------------------------
# Decisions


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


def _beta_variance(alpha: float, beta: float) -> float:
    n = alpha + beta
    return alpha * beta / (n * n * (n + 1.0))


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
            s.variance = _beta_variance(alpha, beta)
            s.evidence = alpha + beta - 2.0
            s.sample = rng.betavariate(alpha, beta)

        ranked = self._order(pool, amount, use_sample=True)
        if probe is not None:
            # A half-open account gets its one probe attempt first; failover covers it.
            ranked.remove(probe)
            ranked.insert(0, probe)
            probe.note = "probe: breaker half-open"
            self.store.update(probe.account.code, lambda st: reserve_probe(st, t))
            if approach == "exploit":
                approach = "explore"
        elif approach == "exploit" and self._greedy_winner(pool, amount) is not ranked[0]:
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

    def _order(self, pool: list[_Scored], amount: Decimal, *, use_sample: bool) -> list[_Scored]:
        """Rank by weight × success × (amount − fee); a success within the noise of the best
        one (``tolerance_z`` standard deviations of the two estimates, at most
        ``tolerance_cap``) is scored as the best one, so cost and weight settle near-ties."""
        if not pool:
            return []
        config = self.config
        value = (lambda s: s.sample) if use_sample else (lambda s: s.mean)
        best = max(pool, key=value)
        top = value(best)
        for s in pool:
            p = value(s)
            tolerance = min(
                config.tolerance_cap, config.tolerance_z * math.sqrt(best.variance + s.variance)
            )
            s.note = ""
            measured = min(s.evidence, best.evidence) >= config.tie_evidence
            if s is not best and measured and top - p <= tolerance:
                s.note = f"within {tolerance:.3f} of the best draw {top:.4f}: scored as equal"
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
