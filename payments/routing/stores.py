"""Where account health lives: the store protocol, and the in-memory store of simulations and
unit tests (``payments.health`` is the database one)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from payments.routing.breaker import BreakerTransition, Change
from payments.routing.state import AccountHealth


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
