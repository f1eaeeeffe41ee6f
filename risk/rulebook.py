"""The staff's rules and lists as the engine reads them: loaded once and kept in memory until
an edit, so a decision reads neither table. Any save or delete of a rule or list entry bumps a
version in the shared cache (``CACHES["default"]``) and drops this process's copy at once;
other processes look at the version at most once every :data:`CHECK_SECONDS` and reload after
a bump (so an edit reaches every process within a second, and a decision does not pay a
cache round trip)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.core.cache import cache

from risk.models import ListEntry, Rule

VERSION_KEY = "risk:rulebook:version"
CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Rulebook:
    version: int
    rules: tuple[Rule, ...]
    lists: dict[tuple[str, str], str]  # (field, value) → kind


_loaded: Rulebook | None = None
_checked_at = 0.0


def current() -> Rulebook:
    """The enabled rules and the lists, from memory unless an edit happened since."""
    global _loaded, _checked_at
    now = time.monotonic()
    if _loaded is not None and now - _checked_at < CHECK_SECONDS:
        return _loaded
    _checked_at = now
    version = cache.get(VERSION_KEY)
    if version is None:
        version = 1
        cache.add(VERSION_KEY, version, timeout=None)
    if _loaded is None or _loaded.version != version:
        _loaded = Rulebook(
            version=version,
            rules=tuple(Rule.objects.filter(enabled=True)),
            lists={(e.field, e.value): e.kind for e in ListEntry.objects.all()},
        )
    return _loaded


def invalidate(**_kwargs) -> None:
    """Receiver of post_save/post_delete of Rule and ListEntry (see RiskConfig.ready)."""
    global _loaded
    _loaded = None
    try:
        cache.incr(VERSION_KEY)
    except ValueError:  # not set yet (or evicted): the next read starts a fresh version
        cache.set(VERSION_KEY, 2, timeout=None)
