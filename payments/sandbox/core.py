"""What every simulated provider shares: a registry, fault switches, the cashier's
approve/decline flow; notifications are queued through ``notifications`` and delivered by
``tasks`` with the provider's retry schedule (neither imports this module back but tasks).

A provider module subclasses :class:`SandboxProvider`, sets ``channel`` and implements the
hooks; its own protocol endpoints (``urlpatterns``, in its module or, for a simulator split
into a package, in the package) are mounted under ``/sandbox/<channel>/``.
"""

from __future__ import annotations

import abc
import contextlib
import contextvars
import functools
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from django.conf import settings
from django.db import transaction
from django.http import HttpResponse, JsonResponse
from django.urls import reverse
from django.utils import timezone

from config.prepared import PreparedRead
from payments.sandbox.models import SandboxFault, SandboxMerchant, SandboxNotification, SandboxTrade
from payments.sandbox.notifications import enqueue_notification, notifications_lost, retry_scale

__all__ = [
    "COMMON_DECLINES",
    "DeclineReason",
    "SandboxProvider",
    "enqueue_notification",
    "fault_response",
    "notifications_lost",
    "own_url",
    "provider",
    "providers",
    "retry_scale",
    "serving_at",
]


class DisputeRefused(ValueError):
    """The sandbox cannot dispute this trade (not paid, already disputed, no such channel…)."""


_serving_at: contextvars.ContextVar[str] = contextvars.ContextVar("sandbox_serving_at", default="")


def own_url() -> str:
    """Where the simulators answer: SANDBOX_URL when they run as a process of their own
    (`make serve`), else this site. Their pages and API links use it; what they send to the
    merchant (webhooks) goes to SITE_URL."""
    return _serving_at.get() or settings.SANDBOX_URL or settings.SITE_URL


@contextlib.contextmanager
def serving_at(url: str):
    """Provision merchants for simulators served at ``url`` (credentials that carry links,
    such as a hosted card page, name that address) whatever this process's settings say."""
    token = _serving_at.set(url.rstrip("/"))
    try:
        yield
    finally:
        _serving_at.reset(token)


_PROVIDERS: dict[str, type[SandboxProvider]] = {}


@dataclass(frozen=True)
class DeclineReason:
    key: str
    label: str
    code: str  # the provider's own error code for this decline


COMMON_DECLINES = ("insufficient_funds", "phone_mismatch", "risk", "timeout")


class SandboxProvider(abc.ABC):
    """Hooks a simulated provider implements; see payments/sandbox/alipay/state.py for an
    example."""

    channel: ClassVar[str]
    #: seconds between notification retries, as the real provider publishes them
    retry_schedule: ClassVar[tuple[int, ...]] = (15, 15, 30, 180, 600, 1200, 1800)
    #: the provider's codes for the cashier's decline choices
    declines: ClassVar[tuple[DeclineReason, ...]] = ()
    #: how notifications travel: POST with the body, or GET with the body as query string
    notify_method: ClassVar[str] = "POST"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if getattr(cls, "channel", None):
            _PROVIDERS[cls.channel] = cls

    # --- hooks --------------------------------------------------------------------------------
    @abc.abstractmethod
    def provision(self, *, merchant_id: str, app_id: str = "") -> dict:
        """Register a merchant at this simulated provider (its public keys, API keys, webhook
        id…, stored in a SandboxMerchant) and return the credentials dict the merchant's
        ChannelAccount must hold to talk to it. Idempotent per merchant_id."""

    @abc.abstractmethod
    def payment_notification(self, trade: SandboxTrade) -> tuple[Mapping[str, str], bytes] | None:
        """Headers and body of the "paid" (or "declined", where the provider notifies that)
        notification for ``trade``; None when the provider sends none for this state."""

    def notification_accepted(self, status_code: int, body: bytes) -> bool:
        """Whether the merchant's answer stops the retries (provider rule)."""
        return status_code == 200

    def delivery_headers(self, note: SandboxNotification) -> Mapping[str, str]:
        """Headers for one delivery try. Providers that sign every try afresh (Stripe puts a new
        timestamp in each retry's signature) override this; the default resends the stored ones."""
        return note.headers

    # --- disputes (channels whose simulator can raise one: card, PayPal) -----------------------
    #: the module writing the channel's dispute notices (``dispute_open(trade, reason=…)`` and
    #: ``dispute_close(trade, won=…)``, each the signed body), None where the channel has none
    dispute_notices: ClassVar = None

    @property
    def supports_disputes(self) -> bool:
        return self.dispute_notices is not None

    def dispute_notify(self, merchant: SandboxMerchant, trade: SandboxTrade, body: bytes) -> None:
        """Queue a dispute notice to the merchant as the channel sends its other notices."""
        raise DisputeRefused(f"the {self.channel} sandbox raises no disputes")

    def dispute_open(self, trade: SandboxTrade, *, reason: str = "") -> None:
        """The payer's bank (or PayPal) disputes a paid trade; the signed notice is queued."""
        merchant = self._dispute_merchant(trade)
        extra = {"reason": reason} if reason else {}  # else the channel's usual reason
        self.dispute_notify(merchant, trade, self.dispute_notices.dispute_open(trade, **extra))

    def dispute_close(self, trade: SandboxTrade, *, won: bool) -> None:
        """The dispute is ruled for the merchant (``won``) or the payer; the notice is queued."""
        merchant = self._dispute_merchant(trade)
        self.dispute_notify(merchant, trade, self.dispute_notices.dispute_close(trade, won=won))

    def _dispute_merchant(self, trade: SandboxTrade) -> SandboxMerchant:
        if not self.supports_disputes:
            raise DisputeRefused(f"the {self.channel} sandbox raises no disputes")
        merchant = self.merchant(trade.merchant_id)
        if merchant is None:
            raise DisputeRefused("the trade's merchant is not provisioned")
        return merchant

    # --- shared -------------------------------------------------------------------------------
    def merchant(self, merchant_id: str) -> SandboxMerchant | None:
        return _MERCHANT.first(channel=self.channel, merchant_id=merchant_id)

    def cashier_url(self, trade: SandboxTrade) -> str:
        return own_url() + reverse("sandbox:cashier", args=[self.channel, trade.trade_no])

    def decline_code(self, key: str) -> str:
        for reason in self.declines:
            if reason.key == key:
                return reason.code
        return self.declines[0].code if self.declines else key

    def settle(self, trade: SandboxTrade, *, approve: bool, decline_key: str = "") -> SandboxTrade:
        """The payer approved or declined on the cashier page; returns the trade as it now
        stands (unchanged when it was no longer waiting)."""
        with transaction.atomic():
            trade = _TRADE_LOCKED.get(pk=trade.pk)
            if trade.status != SandboxTrade.Status.WAITING:
                return trade
            if approve:
                trade.status, trade.paid_at = SandboxTrade.Status.PAID, timezone.now()
            else:
                trade.status, trade.decline_code = (
                    SandboxTrade.Status.DECLINED,
                    self.decline_code(decline_key),
                )
            trade.save(update_fields=["status", "paid_at", "decline_code"])
            if not approve and decline_key == "timeout":
                return trade  # the payer walked away: no notification, the merchant must query
            message = self.payment_notification(trade)
            if message and trade.notify_url:
                headers, body = message
                enqueue_notification(self.channel, trade.notify_url, headers, body)
        return trade


# Each payer's page and API call reads these: compiled once per connection.
_TRADE_LOCKED = PreparedRead(
    lambda pk: SandboxTrade.objects.select_for_update().filter(pk=pk), pk=int
)
_MERCHANT = PreparedRead(
    lambda channel, merchant_id: SandboxMerchant.objects.filter(
        channel=channel, merchant_id=merchant_id
    ),
    channel=str,
    merchant_id=str,
)
_FAULT = PreparedRead(
    lambda channel: SandboxFault.objects.filter(channel=channel).order_by("pk")[:1], channel=str
)


def provider(channel: str) -> SandboxProvider:
    _autodiscover()
    try:
        return _PROVIDERS[channel]()
    except KeyError:
        raise LookupError(f"no sandbox provider for {channel!r}") from None


def providers() -> dict[str, type[SandboxProvider]]:
    _autodiscover()
    return dict(_PROVIDERS)


@functools.cache
def _autodiscover() -> None:
    """Import every channel's simulator once (each registers itself)."""
    import importlib
    import pkgutil

    import payments.sandbox as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in {
            "apps",
            "core",
            "keys",
            "models",
            "notifications",
            "provisioning",
            "tasks",
            "urls",
            "views",
            "admin",
            "migrations",
        }:
            importlib.import_module(f"{package.__name__}.{info.name}")


# ------------------------------------------------------------------------------------------------
# Fault switches


def fault_response(channel: str) -> HttpResponse | None:
    """Apply the channel's fault switches to one API call: a 503 when down or on a simulated
    system error, after an optional delay. None means "answer normally"."""
    fault = _FAULT.first(channel=channel)
    if fault is None:
        return None
    if fault.slow_ms:
        time.sleep(fault.slow_ms / 1000)
    if fault.down:
        return JsonResponse(
            {"code": "SYSTEM_ERROR", "message": f"{channel} sandbox is down"}, status=503
        )
    if fault.error_rate and random.random() < fault.error_rate:  # noqa: S311 - simulation
        return JsonResponse(
            {"code": "SYSTEM_ERROR", "message": "simulated system error"}, status=503
        )
    return None
