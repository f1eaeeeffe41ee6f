"""Run the real Router against simulated channels (CONTRACT.md, ``simulate_routing``).

Each simulated payment is routed by :class:`payments.routing.Router` over an in-memory health
store, exactly as real traffic is routed over the database store. An attempt on a channel
times out with the channel's current timeout probability (outcome ``timeout``: counts against
the channel, then failover); otherwise it succeeds with the current success probability;
otherwise it is a soft decline the channel is blamed for (outcome ``failed``, failover). The
clock advances one second per payment, so cool-downs and decay run in simulated time.

The oracle knows every channel's true current rates and always starts on the best one; its
first-attempt success rate is the expectation, not a sample, so it carries no noise.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from payments.routing import CENT, CandidateAccount, InMemoryHealthStore, Router, RoutingConfig

START = datetime(2026, 1, 1, tzinfo=UTC)
SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class SimChannel:
    account: CandidateAccount
    success: tuple[tuple[int, float], ...]
    timeout: tuple[tuple[int, float], ...]

    def rates(self, index: int) -> tuple[float, float]:
        """(success, timeout) probabilities in force for payment ``index``."""
        return _step(self.success, index), _step(self.timeout, index)


@dataclass(frozen=True)
class Scenario:
    seed: int
    payments: int
    method: str
    currency: str
    amount_min: Decimal
    amount_max: Decimal
    max_attempts: int
    channels: tuple[SimChannel, ...]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Parse the CONTRACT.md scenario format; raise ValueError naming what is wrong."""
        try:
            method = str(data.get("method", "alipay"))
            currency = str(data.get("currency", "CNY"))
            channels = tuple(_channel(c, method, currency) for c in data["channels"])
            amount = data.get("amount", {})
            scenario = cls(
                seed=int(data.get("seed", 0)),
                payments=int(data["payments"]),
                method=method,
                currency=currency,
                amount_min=Decimal(str(amount.get("min", "100.00"))),
                amount_max=Decimal(str(amount.get("max", amount.get("min", "100.00")))),
                max_attempts=int(data.get("max_attempts", 3)),
                channels=channels,
            )
        except KeyError as exc:
            raise ValueError(f"scenario is missing {exc.args[0]!r}") from exc
        except (TypeError, ArithmeticError, AttributeError) as exc:
            raise ValueError(f"scenario is malformed: {exc}") from exc
        if scenario.payments < 0 or scenario.max_attempts < 1 or not channels:
            raise ValueError(
                "scenario needs payments >= 0, max_attempts >= 1 and at least one channel"
            )
        if scenario.amount_min <= 0 or scenario.amount_max < scenario.amount_min:
            raise ValueError("scenario amount needs 0 < min <= max")
        return scenario


def _channel(data: Mapping[str, Any], method: str, currency: str) -> SimChannel:
    def money(key: str) -> Decimal | None:
        return None if data.get(key) is None else Decimal(str(data[key]))

    account = CandidateAccount(
        code=str(data["code"]),
        methods=frozenset(data.get("methods", [method])),
        fee_percent=Decimal(str(data.get("fee_percent", "0"))),
        fee_fixed=Decimal(str(data.get("fee_fixed", "0"))),
        min_amount=money("min_amount"),
        max_amount=money("max_amount"),
        daily_cap=money("daily_cap"),
        currency=str(data.get("currency", currency)),
        weight=Decimal(str(data.get("weight", "1"))),
    )
    return SimChannel(
        account, _steps(data.get("success", [[0, 1.0]])), _steps(data.get("timeout", [[0, 0.0]]))
    )


def _steps(raw: Sequence[Sequence[Any]]) -> tuple[tuple[int, float], ...]:
    steps = tuple(sorted((int(index), float(p)) for index, p in raw))
    if not steps or any(not 0.0 <= p <= 1.0 for _, p in steps):
        raise ValueError("success/timeout steps must be [[index, probability], …] with 0 ≤ p ≤ 1")
    return steps


def _step(steps: tuple[tuple[int, float], ...], index: int) -> float:
    value = steps[0][1]
    for start, p in steps:
        if start > index:
            break
        value = p
    return value


@dataclass(frozen=True)
class SimulationResult:
    payments: int
    attempts: int
    succeeded: int
    first_attempt_succeeded: int
    fees: Decimal
    per_channel: Mapping[str, Mapping[str, int]]
    oracle_first_attempt_success_rate: float
    expected_first_attempt_success_rate: float
    approaches: Mapping[str, int]
    breaker_events: int

    def as_dict(self) -> dict[str, Any]:
        n = self.payments or 1
        return {
            "payments": self.payments,
            "attempts": self.attempts,
            "succeeded": self.succeeded,
            "success_rate": round(self.succeeded / n, 4),
            "first_attempt_success_rate": round(self.first_attempt_succeeded / n, 4),
            "fees": str(self.fees.quantize(CENT, rounding=ROUND_HALF_UP)),
            "per_channel": {code: dict(v) for code, v in self.per_channel.items()},
            "oracle_first_attempt_success_rate": round(self.oracle_first_attempt_success_rate, 4),
            "expected_first_attempt_success_rate": round(
                self.expected_first_attempt_success_rate, 4
            ),
            "approaches": dict(self.approaches),
            "breaker_events": self.breaker_events,
        }


def run_scenario(scenario: Scenario, config: RoutingConfig | None = None) -> SimulationResult:
    """Simulate the scenario's payments through the real Router; deterministic per seed.

    The world (amounts, outcomes) and the router draw from separate seeded generators, so a
    change in routing does not reshuffle the outcomes the channels would have produced.
    """
    world = random.Random(scenario.seed)
    router_rng = random.Random(f"router-{scenario.seed}")
    store = InMemoryHealthStore()
    router = Router(store, config)
    accounts = [c.account for c in scenario.channels]
    by_code = {c.account.code: c for c in scenario.channels}
    low, high = int(scenario.amount_min * 100), int(scenario.amount_max * 100)

    per_channel = {code: {"attempts": 0, "succeeded": 0, "first_attempts": 0} for code in by_code}
    approaches: dict[str, int] = {}
    day_volume: dict[str, Decimal] = {}
    attempts = succeeded = first_succeeded = 0
    fees = Decimal("0.00")
    oracle_sum = expected_sum = 0.0
    day = 0

    for index in range(scenario.payments):
        now = START + timedelta(seconds=index)
        if index // SECONDS_PER_DAY != day:
            day, day_volume = index // SECONDS_PER_DAY, {}
        amount = Decimal(world.randint(low, high)) / 100
        oracle_sum += _oracle(scenario, index, amount, day_volume)
        tried: list[str] = []
        for attempt_no in range(scenario.max_attempts):
            decision = router.rank(
                accounts,
                method=scenario.method,
                amount=amount,
                currency=scenario.currency,
                now=now,
                rng=router_rng,
                exclude=tried,
                day_volume=day_volume,
            )
            if attempt_no == 0:
                approaches[decision.approach] = approaches.get(decision.approach, 0) + 1
            if decision.winner is None:
                break
            code = decision.winner
            channel = by_code[code]
            tried.append(code)
            attempts += 1
            per_channel[code]["attempts"] += 1
            p_success, p_timeout = channel.rates(index)
            if attempt_no == 0:
                per_channel[code]["first_attempts"] += 1
                expected_sum += (1.0 - p_timeout) * p_success
            roll = world.random()
            if roll < p_timeout:
                outcome = "timeout"
            elif roll < p_timeout + (1.0 - p_timeout) * p_success:
                outcome = "succeeded"
            else:
                outcome = "failed"
            router.record_outcome(code, scenario.method, amount, outcome, now)
            if outcome == "succeeded":
                succeeded += 1
                first_succeeded += attempt_no == 0
                per_channel[code]["succeeded"] += 1
                fees += channel.account.fee_for(amount)
                day_volume[code] = day_volume.get(code, Decimal(0)) + amount
                break

    n = scenario.payments or 1
    return SimulationResult(
        payments=scenario.payments,
        attempts=attempts,
        succeeded=succeeded,
        first_attempt_succeeded=first_succeeded,
        fees=fees,
        per_channel=per_channel,
        oracle_first_attempt_success_rate=oracle_sum / n,
        expected_first_attempt_success_rate=expected_sum / n,
        approaches=approaches,
        breaker_events=len(store.events),
    )


def _oracle(
    scenario: Scenario, index: int, amount: Decimal, day_volume: Mapping[str, Decimal]
) -> float:
    """The best true first-attempt success probability among channels that may take it."""
    best = 0.0
    for channel in scenario.channels:
        account = channel.account
        if (
            (account.min_amount is not None and amount < account.min_amount)
            or (account.max_amount is not None and amount > account.max_amount)
            or (
                account.daily_cap is not None
                and day_volume.get(account.code, 0) + amount > account.daily_cap
            )
            or account.currency != scenario.currency
            or scenario.method not in account.methods
        ):
            continue
        p_success, p_timeout = channel.rates(index)
        best = max(best, (1.0 - p_timeout) * p_success)
    return best


class Command(BaseCommand):
    help = "Route simulated payments through the real routing code and report how it did."

    def add_arguments(self, parser):
        parser.add_argument("scenario", help="scenario JSON file (format: CONTRACT.md)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options):
        path = Path(options["scenario"])
        try:
            scenario = Scenario.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}")
        except json.JSONDecodeError as exc:
            raise CommandError(f"{path} is not JSON: {exc}")
        except ValueError as exc:
            raise CommandError(f"{path}: {exc}")
        report = run_scenario(scenario).as_dict()
        if options["json"]:
            self.stdout.write(json.dumps(report))
            return
        self.stdout.write(self._table(report))

    @staticmethod
    def _table(report: Mapping[str, Any]) -> str:
        lines = [
            f"payments                  {report['payments']}",
            f"attempts                  {report['attempts']}",
            f"succeeded                 {report['succeeded']}  ({report['success_rate']:.2%})",
            f"first-attempt success     {report['first_attempt_success_rate']:.2%}"
            f"  (oracle {report['oracle_first_attempt_success_rate']:.2%})",
            f"fees                      {report['fees']}",
            f"breaker events            {report['breaker_events']}",
            "",
            f"{'channel':<12}{'attempts':>10}{'first':>10}{'succeeded':>11}{'rate':>9}",
        ]
        for code, row in report["per_channel"].items():
            rate = row["succeeded"] / row["attempts"] if row["attempts"] else 0.0
            lines.append(
                f"{code:<12}{row['attempts']:>10}{row['first_attempts']:>10}{row['succeeded']:>11}{rate:>9.2%}"
            )
        return "\n".join(lines)
