"""Mounted at /sandbox/ only when PAYMENTS_SANDBOX is on."""

import importlib

from django.urls import include, path

from payments.sandbox import core, views

app_name = "sandbox"

urlpatterns = [
    path("", views.index, name="index"),
    path("<slug:channel>/cashier/<str:trade_no>/", views.cashier, name="cashier"),
]


def _endpoints(cls: type[core.SandboxProvider]) -> list | None:
    """A provider's own endpoints: the ``urlpatterns`` of the module that defines it, or of
    the package that module belongs to (a simulator split into a package)."""
    name = cls.__module__
    while name.startswith(f"{__package__}."):
        module = importlib.import_module(name)
        if hasattr(module, "urlpatterns"):
            return module.urlpatterns
        name = name.rpartition(".")[0]
    return None


for _channel, _cls in sorted(core.providers().items()):
    _patterns = _endpoints(_cls)
    if _patterns is not None:
        urlpatterns.append(path(f"{_channel}/", include((_patterns, _channel))))
