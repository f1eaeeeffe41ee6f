"""``simulate_routing`` (CONTRACT.md): the real Router against simulated channels.

Quality properties are asserted on fixed seeds and a few thousand payments: first-attempt
success near an oracle that knows the true rates, through an outage and through drift, and
cost deciding between equally good channels. Properties, not timings.
"""

import json
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from payments.management.commands.simulate_routing import Scenario, run_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "bench" / "scenarios"

BASE = {
    "seed": 7,
    "method": "alipay",
    "currency": "CNY",
    "amount": {"min": "10.00", "max": "2000.00"},
    "max_attempts": 3,
}

OUTAGE = {
    **BASE,
    "payments": 5000,
    "channels": [
        {
            "code": "a",
            "fee_percent": "0.60",
            "success": [[0, 0.95], [1500, 0.30], [3000, 0.95]],
            "timeout": [[0, 0.00], [1500, 0.50], [3000, 0.00]],
        },
        {"code": "b", "fee_percent": "0.38", "success": [[0, 0.90]]},
    ],
}

EQUAL_RATES = {
    **BASE,
    "payments": 4000,
    "channels": [
        {"code": "dear", "fee_percent": "0.60", "success": [[0, 0.90]]},
        {"code": "cheap", "fee_percent": "0.38", "success": [[0, 0.90]]},
    ],
}

DRIFT = {
    **BASE,
    "payments": 6000,
    "channels": [
        {
            "code": "a",
            "fee_percent": "0.55",
            "success": [[0, 0.95], [1500, 0.90], [3000, 0.85], [4500, 0.93]],
        },
        {
            "code": "b",
            "fee_percent": "0.45",
            "success": [[0, 0.86], [1500, 0.91], [3000, 0.94], [4500, 0.88]],
        },
        {
            "code": "c",
            "fee_percent": "0.30",
            "fee_fixed": "0.50",
            "success": [[0, 0.80]],
            "timeout": [[0, 0.02]],
        },
    ],
}


def simulate(scenario: dict) -> dict:
    return run_scenario(Scenario.from_dict(scenario)).as_dict()


def command(path: Path, *args: str) -> str:
    out = StringIO()
    call_command("simulate_routing", str(path), *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def scenario_file(tmp_path):
    def write(data: dict) -> Path:
        path = tmp_path / "scenario.json"
        path.write_text(json.dumps(data))
        return path

    return write


# --- the contract -------------------------------------------------------------------------------


def test_json_output_has_the_contract_keys(scenario_file):
    report = json.loads(command(scenario_file({**OUTAGE, "payments": 300}), "--json"))
    assert {
        "payments",
        "attempts",
        "succeeded",
        "success_rate",
        "first_attempt_success_rate",
        "fees",
        "per_channel",
    } <= set(report)
    assert report["payments"] == 300
    assert report["success_rate"] == round(report["succeeded"] / 300, 4)
    assert set(report["per_channel"]) == {"a", "b"}
    assert sum(c["attempts"] for c in report["per_channel"].values()) == report["attempts"]
    assert sum(c["succeeded"] for c in report["per_channel"].values()) == report["succeeded"]
    assert Decimal(report["fees"]).as_tuple().exponent == -2
    assert 0 < report["oracle_first_attempt_success_rate"] <= 1


def test_fees_are_the_sum_of_the_fees_of_succeeded_attempts(scenario_file):
    scenario = {
        **BASE,
        "payments": 50,
        "amount": {"min": "100.00", "max": "100.00"},
        "channels": [
            {"code": "only", "fee_percent": "0.60", "fee_fixed": "0.10", "success": [[0, 1.0]]}
        ],
    }
    report = json.loads(command(scenario_file(scenario), "--json"))
    assert report["succeeded"] == 50
    assert report["fees"] == "35.00"  # 50 × (0.60 + 0.10)


def test_no_payment_takes_more_than_max_attempts(scenario_file):
    scenario = {
        **BASE,
        "payments": 100,
        "max_attempts": 2,
        "channels": [{"code": c, "success": [[0, 0.0]]} for c in ("a", "b", "c")],
    }
    report = json.loads(command(scenario_file(scenario), "--json"))
    assert report["succeeded"] == 0
    assert report["attempts"] == 200


def test_the_same_seed_gives_the_same_report():
    assert simulate({**OUTAGE, "payments": 800}) == simulate({**OUTAGE, "payments": 800})


def test_another_seed_gives_another_run():
    assert simulate({**OUTAGE, "payments": 800}) != simulate({**OUTAGE, "payments": 800, "seed": 8})


def test_without_json_it_prints_a_readable_table(scenario_file):
    text = command(scenario_file({**OUTAGE, "payments": 200}))
    assert "first-attempt success" in text and "oracle" in text
    assert "channel" in text and "\na " in text and "\nb " in text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**BASE, "channels": []}, "missing 'payments'"),
        ({**BASE, "payments": 10, "channels": []}, "at least one channel"),
        ({**BASE, "payments": 10, "channels": [{"code": "a", "success": [[0, 1.5]]}]}, "0 ≤ p ≤ 1"),
        (
            {
                **BASE,
                "payments": 10,
                "amount": {"min": "5", "max": "1"},
                "channels": [{"code": "a"}],
            },
            "min <= max",
        ),
    ],
)
def test_a_malformed_scenario_is_refused_with_a_message(scenario_file, data, message):
    with pytest.raises(CommandError, match=message):
        command(scenario_file(data), "--json")


def test_a_file_that_is_not_json_is_refused(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(CommandError, match="is not JSON"):
        command(path)


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.json")), ids=lambda p: p.stem)
def test_every_bench_scenario_runs(path):
    data = json.loads(path.read_text())
    report = simulate({**data, "payments": 200})
    assert report["payments"] == 200 and report["attempts"] >= 200


# --- quality ------------------------------------------------------------------------------------


def test_first_attempt_success_stays_within_3_points_of_the_oracle_through_an_outage():
    report = simulate(OUTAGE)
    assert (
        report["oracle_first_attempt_success_rate"] - report["first_attempt_success_rate"] <= 0.03
    )


def first_attempts_between(scenario: dict, start: int, end: int) -> dict[str, int]:
    """First attempts per channel for payments [start, end): runs are deterministic, so the
    difference of two prefixes is that window."""
    before = simulate({**scenario, "payments": start})["per_channel"]
    after = simulate({**scenario, "payments": end})["per_channel"]
    return {code: after[code]["first_attempts"] - before[code]["first_attempts"] for code in after}


def test_the_breaker_takes_the_failing_channel_out_during_the_outage():
    report = simulate({**OUTAGE, "payments": 3000})
    assert report["breaker_events"] >= 2  # opened, and probed at least once
    during = first_attempts_between(OUTAGE, 1600, 3000)
    assert during["a"] <= 0.01 * 1400  # only probes


def test_the_recovered_channel_carries_most_traffic_again_after_the_outage():
    """How soon one run trusts the recovered channel again depends on when its draws happen
    to retry it (docs/routing.md, "Known weak spot"): about one seeded run in ten takes
    longer than the window, so the property is held over five runs."""
    recovered = 0
    for seed in range(1, 6):
        after = first_attempts_between({**OUTAGE, "seed": seed}, 4000, 5000)
        recovered += after["a"] > after["b"]
    assert recovered >= 4


def test_failover_rescues_most_first_attempt_failures():
    report = simulate(OUTAGE)
    assert report["success_rate"] >= 0.97
    assert report["success_rate"] > report["first_attempt_success_rate"] + 0.03


def test_between_equally_good_channels_the_cheaper_carries_most_traffic():
    report = simulate(EQUAL_RATES)
    channels = report["per_channel"]
    assert channels["cheap"]["first_attempts"] >= 0.7 * report["payments"]
    assert channels["cheap"]["first_attempts"] > 2 * channels["dear"]["first_attempts"]


def test_first_attempt_success_stays_within_3_points_of_the_oracle_through_drift():
    report = simulate(DRIFT)
    assert (
        report["oracle_first_attempt_success_rate"] - report["first_attempt_success_rate"] <= 0.03
    )


def test_the_contract_example_scenario_meets_the_target():
    report = json.loads(command(SCENARIOS / "outage.json", "--json"))
    assert report["payments"] == 20000
    assert (
        report["oracle_first_attempt_success_rate"] - report["first_attempt_success_rate"] <= 0.03
    )
