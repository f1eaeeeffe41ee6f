"""Backend classes by channel code; adding a channel is one module in this package."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from payments.channels.base import AccountConfig, ChannelBackend

_BACKENDS: dict[str, type[ChannelBackend]] = {}


def register(cls: type[ChannelBackend]) -> type[ChannelBackend]:
    _BACKENDS[cls.code] = cls
    return cls


def autodiscover() -> None:
    import payments.channels as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in {"base", "registry"}:
            importlib.import_module(f"{package.__name__}.{info.name}")


def backend_class(code: str) -> type[ChannelBackend]:
    try:
        return _BACKENDS[code]
    except KeyError:
        raise LookupError(f"no payment channel backend called {code!r}") from None


def backend_codes() -> list[str]:
    return sorted(_BACKENDS)


def get_backend(config: AccountConfig) -> ChannelBackend:
    return backend_class(config.backend)(config)
