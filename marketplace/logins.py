"""Every log-in through the web is handed to risk (docs/risk.md, "Log-ins"): the account,
its e-mail, the session it opened, the first-party device id (config/device.py), the
address and region as the platform reads them. Log-ins without a request that went through
the middleware (a test's ``force_login``, a management command) carry no device and are not
scored."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from config.device import device_label
from payments.client import client_from_request
from risk.services import LoginFacts, login_assess


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
