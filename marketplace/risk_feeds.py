"""What the shop tells risk as it happens (docs/risk.md).

Every log-in through the web: the account, its e-mail, the session it opened, the
first-party device id (config/device.py), the address and region as the platform reads them.
Log-ins without a request that went through the middleware (a test's ``force_login``, a
management command) carry no device and are not scored.

Every payout account a seller saves: risk keeps a digest of it, so a buyer and a seller
paid out to one account are linked (self-dealing)."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_save
from django.dispatch import receiver

from config.device import device_label
from marketplace.models import PayoutDestination
from payments.client import client_from_request
from risk.services import LoginFacts, login_assess, sighting_record


@receiver(user_logged_in, dispatch_uid="marketplace.logins.score")
def login_score(sender, request, user, **kwargs) -> None:
    if request is None or not getattr(request, "device_id", ""):
        return
    client = client_from_request(request)
    session = getattr(request, "session", None)
    login_assess(
        LoginFacts(
            user_ref=str(user.pk),
            email=user.email or "",
            session_key=(session.session_key or "") if session is not None else "",
            device=request.device_id,
            device_label=device_label(getattr(request, "device_hints", {}), client.user_agent),
            ip=client.ip,
            region=client.region if client.region_source == "proxy" else "",
        )
    )


@receiver(post_save, sender=PayoutDestination, dispatch_uid="marketplace.risk_feeds.payout")
def payout_destination_sighted(sender, instance: PayoutDestination, **kwargs) -> None:
    sighting_record(user_ref=str(instance.seller_id), payout=(instance.kind, instance.account))
