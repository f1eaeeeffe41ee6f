"""Backend classes by channel code; adding a channel is one package in this directory.

The registry finds backends by walking the concrete subclasses of the contract's
``ChannelBackend`` (the contract does not call back into the registry, so the two modules do
not import each other). ``register`` remains for a backend defined outside the package."""

from __future__ import annotations

import importlib
import pkgutil

from payments.channels.base import AccountConfig, ChannelBackend

#: modules of the package that are shared helpers, not channels
_NOT_CHANNELS = {"base", "registry", "http", "signing", "wallet"}

_REGISTERED: dict[str, type[ChannelBackend]] = {}


def register(cls: type[ChannelBackend]) -> type[ChannelBackend]:
    _REGISTERED[cls.code] = cls
    return cls


def _concrete(cls: type[ChannelBackend]):
    for sub in cls.__subclasses__():
        if not getattr(sub, "__abstractmethods__", None) and getattr(sub, "code", None):
            yield sub
        yield from _concrete(sub)


def _backends() -> dict[str, type[ChannelBackend]]:
    # Later definitions win, as they did when each subclass registered itself on creation.
    found = {cls.code: cls for cls in _concrete(ChannelBackend)}
    found.update(_REGISTERED)
    return found


def autodiscover() -> None:
    import payments.channels as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in _NOT_CHANNELS:
            importlib.import_module(f"{package.__name__}.{info.name}")


def backend_class(code: str) -> type[ChannelBackend]:
    try:
        return _backends()[code]
    except KeyError:
        raise LookupError(f"no payment channel backend called {code!r}") from None


def backend_codes() -> list[str]:
    return sorted(_backends())


def get_backend(config: AccountConfig) -> ChannelBackend:
    return backend_class(config.backend)(config)
