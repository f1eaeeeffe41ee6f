"""What routing remembers about one account (:class:`AccountHealth`): breaker fields,
success estimates, counts and notification delay; pure values that stores persist as JSON."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from payments.routing.config import CLOSED, HALF_OPEN, OPEN, Breaker, RoutingConfig
from payments.routing.estimates import Estimate, beta_variance


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
        noise = math.sqrt(beta_variance(own_a, own_b) + beta_variance(other_a, other_b))
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
