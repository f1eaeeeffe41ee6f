"""The metrics contract between risk monitoring and the apps that own the data (DESIGN.md §6).

``risk`` imports no other app of the project, so the apps that own the data register
*metric sources* here (from their ``AppConfig.ready``): a callable that, for a time range and
a grain (hour or day), returns plain :class:`DataPoint` rows — metric name, dimensions such as
``channel``/``method``, period start, numerator and denominator. A rate is numerator /
denominator; monitors (risk/alerts.py) and the staff page (risk/selectors.py) only ever see
these rows.

A source must be set-based: one GROUP BY query per call, however much data there is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, Protocol

Grain = Literal["hour", "day"]
HOUR: Grain = "hour"
DAY: Grain = "day"
PERCENT = Decimal("0.01")


def dimensions_key(dimensions: Mapping[str, str]) -> str:
    """Canonical text of a set of dimensions (sorted ``name=value`` pairs), used as a key."""
    return ",".join(f"{name}={dimensions[name]}" for name in sorted(dimensions))


@dataclass(frozen=True)
class DataPoint:
    """One metric's counts for one set of dimensions in one period."""

    metric: str
    dimensions: tuple[tuple[str, str], ...]
    period_start: dt.datetime
    numerator: int
    denominator: int

    @classmethod
    def of(
        cls,
        metric: str,
        *,
        period_start: dt.datetime,
        numerator: int,
        denominator: int,
        **dimensions,
    ) -> DataPoint:
        """Build a point from keyword dimensions; ``None`` values become ``""``."""
        dims = tuple(
            sorted(
                (name, "" if value is None else str(value)) for name, value in dimensions.items()
            )
        )
        return cls(metric, dims, period_start, int(numerator or 0), int(denominator or 0))

    @property
    def dims(self) -> dict[str, str]:
        return dict(self.dimensions)


class Source(Protocol):
    def __call__(
        self, *, since: dt.datetime, until: dt.datetime, grain: Grain
    ) -> Iterable[DataPoint]: ...


@dataclass(frozen=True)
class Metric:
    """A registered metric. Several metrics may share one source (one query feeds them all)."""

    name: str
    label: str
    source: Source
    dimensions: tuple[str, ...] = ("channel", "method")
    description: str = ""
    higher_is_better: bool = True


_registry: dict[str, Metric] = {}


def register(
    name: str,
    *,
    label: str,
    source: Source,
    dimensions: Sequence[str] = ("channel", "method"),
    description: str = "",
    higher_is_better: bool = True,
) -> Metric:
    """Register (or replace, so a reloaded app does not duplicate) a metric source."""
    metric = Metric(name, label, source, tuple(dimensions), description, higher_is_better)
    _registry[name] = metric
    return metric


def unregister(name: str) -> None:
    _registry.pop(name, None)


def metric(name: str) -> Metric | None:
    return _registry.get(name)


def metrics() -> list[Metric]:
    """In registration order (the order of INSTALLED_APPS): payments first, then the shop."""
    return list(_registry.values())


def metric_names() -> list[str]:
    return sorted(_registry)


@dataclass
class Collector:
    """Calls each source at most once per (range, grain) and hands out its points per metric,
    so monitors and pages that share a range do not repeat queries."""

    _cache: dict[tuple[int, dt.datetime, dt.datetime, str], list[DataPoint]] = field(
        default_factory=dict
    )

    def points(
        self, name: str, *, since: dt.datetime, until: dt.datetime, grain: Grain
    ) -> list[DataPoint]:
        found = metric(name)
        if found is None:
            return []
        key = (id(found.source), since, until, grain)
        if key not in self._cache:
            self._cache[key] = list(found.source(since=since, until=until, grain=grain))
        return [point for point in self._cache[key] if point.metric == name]


@dataclass(frozen=True)
class Total:
    """Counts added up over a window for one set of dimensions."""

    dimensions: dict[str, str]
    numerator: int
    denominator: int

    @property
    def percent(self) -> Decimal | None:
        return rate_percent(self.numerator, self.denominator)


def rate_percent(numerator: int, denominator: int) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) * 100 / Decimal(denominator)).quantize(PERCENT)


def matches(point: DataPoint, wanted: Mapping[str, str]) -> bool:
    dims = point.dims
    return all(dims.get(name) == str(value) for name, value in wanted.items())


def totals(
    points: Iterable[DataPoint], *, where: Mapping[str, str] | None = None, split: bool = True
) -> dict[str, Total]:
    """Add points up per dimensions (``split``) or into one total, keeping those that match
    ``where``; keyed by :func:`dimensions_key`."""
    where = dict(where or {})
    sums: dict[str, list] = {}
    for point in points:
        if not matches(point, where):
            continue
        dims = point.dims if split else where
        entry = sums.setdefault(dimensions_key(dims), [dims, 0, 0])
        entry[1] += point.numerator
        entry[2] += point.denominator
    return {key: Total(dims, num, den) for key, (dims, num, den) in sums.items()}


__all__ = [
    "DAY",
    "HOUR",
    "Collector",
    "DataPoint",
    "Grain",
    "Metric",
    "Source",
    "Total",
    "dimensions_key",
    "matches",
    "metric",
    "metric_names",
    "metrics",
    "rate_percent",
    "register",
    "totals",
    "unregister",
]
