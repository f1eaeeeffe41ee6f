"""Mounted at /sandbox/ only when PAYMENTS_SANDBOX is on."""

import importlib

from django.urls import include, path

from payments.sandbox import core, views

app_name = "sandbox"

urlpatterns = [
    path("", views.index, name="index"),
    path("<slug:channel>/cashier/<str:trade_no>/", views.cashier, name="cashier"),
]

for _channel, _cls in sorted(core.providers().items()):
    _module = importlib.import_module(_cls.__module__)
    if hasattr(_module, "urlpatterns"):
        urlpatterns.append(path(f"{_channel}/", include((_module.urlpatterns, _channel))))
