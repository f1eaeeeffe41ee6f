"""Success estimates: recency-weighted Beta counts per account × method × amount band, with
a short memory that notices when the rate has moved."""

from __future__ import annotations

import math
from dataclasses import dataclass

from payments.routing.config import RoutingConfig


def beta_variance(alpha: float, beta: float) -> float:
    n = alpha + beta
    return alpha * beta / (n * n * (n + 1.0))


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
            noise = math.sqrt(slow * (1.0 - slow) / (fs + ff) + beta_variance(slow_a, slow_b))
            if abs(fast - slow) > config.change_z * noise:
                return Estimate(fs, ff, now, fs, ff), True
        return Estimate(s, f, now, fs, ff), False
