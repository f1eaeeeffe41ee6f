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

Modules: ``config`` (vocabulary, knobs, the account as routing sees it), ``estimates``
(success counts and change detection), ``state`` (one account's health), ``breaker``,
``outcomes`` (folding real outcomes in), ``stores``, ``scoring`` (the decision and the
:class:`Router`).

Money is ``Decimal``; probabilities are floats.
"""

from payments.routing.breaker import BreakerTransition, Change, reserve_probe
from payments.routing.config import (
    CENT,
    CLOSED,
    HALF_OPEN,
    OPEN,
    OUTCOMES,
    Approach,
    Breaker,
    CandidateAccount,
    Outcome,
    RoutingConfig,
)
from payments.routing.estimates import Estimate
from payments.routing.outcomes import ObservedOutcome, apply_outcome, apply_outcomes
from payments.routing.scoring import CandidateScore, Router, RoutingDecision
from payments.routing.state import AccountHealth
from payments.routing.stores import BreakerEventRecord, HealthStore, InMemoryHealthStore

__all__ = [
    "CENT",
    "CLOSED",
    "HALF_OPEN",
    "OPEN",
    "OUTCOMES",
    "AccountHealth",
    "Approach",
    "Breaker",
    "BreakerEventRecord",
    "BreakerTransition",
    "CandidateAccount",
    "CandidateScore",
    "Change",
    "Estimate",
    "HealthStore",
    "InMemoryHealthStore",
    "ObservedOutcome",
    "Outcome",
    "Router",
    "RoutingConfig",
    "RoutingDecision",
    "apply_outcome",
    "apply_outcomes",
    "reserve_probe",
]
