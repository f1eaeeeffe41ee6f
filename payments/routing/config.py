"""Routing's vocabulary and knobs: outcomes, breaker states, the tuning of
:class:`RoutingConfig`, and :class:`CandidateAccount`, what routing knows of one account."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

CENT = Decimal("0.01")
HUNDRED = Decimal(100)

Outcome = Literal["succeeded", "declined", "failed", "error", "timeout"]
OUTCOMES: tuple[str, ...] = ("succeeded", "declined", "failed", "error", "timeout")
# Outcomes that say something about the channel: a buyer-side decline says nothing.
SCORED = frozenset({"succeeded", "failed", "error", "timeout"})
OUTAGE = frozenset({"error", "timeout"})

Breaker = Literal["closed", "open", "half_open"]
CLOSED: Breaker = "closed"
OPEN: Breaker = "open"
HALF_OPEN: Breaker = "half_open"

Approach = Literal["exploit", "explore", "degraded", "none"]


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
    # Cold start: while no candidate has `cold_evidence` observations' worth for the method
    # (a fresh install, or every account idle for hours), a draw from an empty posterior is
    # noise and would send traffic to a dearer route as often as not. The accounts are then
    # ranked on their estimates, and one within `tolerance_z` standard deviations of the
    # best (uncapped: the uncertainty is the point) counts as equal, so cost and weight
    # decide until failures say otherwise; from then on the draws decide as above.
    cold_evidence: float = 20.0
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
