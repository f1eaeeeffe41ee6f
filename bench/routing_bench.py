"""How long one routing decision takes in-process: 10 accounts, warmed-up health, in-memory
store (the database store adds one indexed read per decision on top).

    .venv/bin/python bench/routing_bench.py [--decisions 20000] [--accounts 10]

Prints the median and 95th percentile of ``Router.rank`` and of ``Router.record_outcome``.
Target (docs/benchmarks.md, "Routing"): median under 1 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from payments.routing import CandidateAccount, InMemoryHealthStore, Router  # noqa: E402

METHODS = ("alipay", "wechatpay", "card")


def accounts(n: int) -> list[CandidateAccount]:
    """n accounts, all serving alipay (so every one is a candidate), with varied fees/limits."""
    return [
        CandidateAccount(
            code=f"acct{i}",
            methods=frozenset({"alipay", METHODS[i % len(METHODS)]}),
            fee_percent=Decimal("0.30") + Decimal(i) / 20,
            fee_fixed=Decimal("0.10") if i % 2 else Decimal("0"),
            min_amount=Decimal("1.00"),
            max_amount=Decimal("50000.00"),
            daily_cap=Decimal("1000000.00") if i % 3 == 0 else None,
            weight=Decimal("1.00"),
        )
        for i in range(n)
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=20000)
    parser.add_argument("--accounts", type=int, default=10)
    args = parser.parse_args()

    rng = random.Random(1)
    world = random.Random(2)
    router = Router(InMemoryHealthStore())
    candidates = accounts(args.accounts)
    rates = {a.code: 0.80 + 0.15 * world.random() for a in candidates}
    start = datetime(2026, 1, 1, tzinfo=UTC)
    volume = {a.code: Decimal("5000.00") for a in candidates}

    # Warm up: every account has estimates in every amount band, as in production.
    for i in range(5000):
        amount = Decimal(world.randint(100, 800000)) / 100
        code = candidates[i % len(candidates)].code
        outcome = "succeeded" if world.random() < rates[code] else "failed"
        router.record_outcome(code, "alipay", amount, outcome, start + timedelta(seconds=i / 10))

    rank_times: list[float] = []
    record_times: list[float] = []
    clock = start + timedelta(seconds=600)
    for i in range(args.decisions):
        now = clock + timedelta(seconds=i / 10)
        amount = Decimal(world.randint(100, 800000)) / 100
        t0 = time.perf_counter()
        decision = router.rank(
            candidates,
            method="alipay",
            amount=amount,
            currency="CNY",
            now=now,
            rng=rng,
            day_volume=volume,
        )
        t1 = time.perf_counter()
        winner = decision.winner or candidates[0].code
        outcome = "succeeded" if world.random() < rates[winner] else "failed"
        router.record_outcome(winner, "alipay", amount, outcome, now)
        t2 = time.perf_counter()
        rank_times.append((t1 - t0) * 1000)
        record_times.append((t2 - t1) * 1000)

    print(
        f"routing decisions: {args.decisions}, accounts: {args.accounts}, python "
        f"{sys.version.split()[0]}"
    )
    print(
        f"rank            median {statistics.median(rank_times):.3f} ms   "
        f"p95 {percentile(rank_times, 0.95):.3f} ms   max {max(rank_times):.3f} ms"
    )
    print(
        f"record_outcome  median {statistics.median(record_times):.3f} ms   "
        f"p95 {percentile(record_times, 0.95):.3f} ms"
    )


if __name__ == "__main__":
    main()
