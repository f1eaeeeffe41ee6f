"""Rates on the actions an attacker repeats: log-in, sign-up, the one-time code, placing an
order, starting a payment — per user and per client address, on the shared cache.

The same DRF throttle classes serve the REST API (``throttle_classes = ORDER``) and the site's
pages (``@throttle(ORDER)``), so one counter covers both ways in. Rates live in
``settings.THROTTLE_RATES`` (docs/security.md). Only state-changing requests are counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import SimpleRateThrottle


class _ActionThrottle(SimpleRateThrottle):
    """Counts unsafe requests of one action; the rate comes from THROTTLE_RATES[scope]."""

    def get_rate(self):
        from django.conf import settings

        return settings.THROTTLE_RATES[self.scope]

    def allow_request(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        return super().allow_request(request, view)


class _PerAddress(_ActionThrottle):
    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class _PerUser(_ActionThrottle):
    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None  # anonymous callers are held by the per-address rate
        return self.cache_format % {"scope": self.scope, "ident": user.pk}


class LoginAddressThrottle(_PerAddress):
    scope = "login-ip"


class SignupAddressThrottle(_PerAddress):
    scope = "signup-ip"


class PasswordResetAddressThrottle(_PerAddress):
    scope = "password-reset-ip"


class ChallengeUserThrottle(_PerUser):
    scope = "challenge-user"


class ChallengeAddressThrottle(_PerAddress):
    scope = "challenge-ip"


class OrderUserThrottle(_PerUser):
    scope = "order-user"


class OrderAddressThrottle(_PerAddress):
    scope = "order-ip"


class PayUserThrottle(_PerUser):
    scope = "pay-user"


class PayAddressThrottle(_PerAddress):
    scope = "pay-ip"


LOGIN = (LoginAddressThrottle,)
SIGNUP = (SignupAddressThrottle,)
PASSWORD_RESET = (PasswordResetAddressThrottle,)
CHALLENGE = (ChallengeUserThrottle, ChallengeAddressThrottle)
ORDER = (OrderUserThrottle, OrderAddressThrottle)
PAY = (PayUserThrottle, PayAddressThrottle)


def throttle_wait(
    request: HttpRequest, classes: Sequence[type[SimpleRateThrottle]]
) -> float | None:
    """Seconds to wait if any of the rates is spent (the request is not counted then), else
    None (and the request is counted against each rate)."""
    waits = []
    for cls in classes:
        limiter = cls()
        if not limiter.allow_request(request, None):
            waits.append(limiter.wait() or 1.0)
    return max(waits) if waits else None


def rate_limited_message(wait: float) -> str:
    return _("Too many requests. Please wait %(seconds)d seconds and try again.") % {
        "seconds": max(1, math.ceil(wait))
    }


def rate_limited_response(request: HttpRequest, wait: float) -> HttpResponse:
    """429 with a Retry-After: JSON under /api/, the site's page elsewhere."""
    message = rate_limited_message(wait)
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {"detail": message}, status=429, json_dumps_params={"ensure_ascii": False}
        )
    else:
        response = render(request, "429.html", {"message": message}, status=429)
    response["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


def throttle(classes: Sequence[type[SimpleRateThrottle]]) -> Callable:
    """Decorate a page view: a spent rate answers 429 before the view runs."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            wait = throttle_wait(request, classes)
            if wait is not None:
                return rate_limited_response(request, wait)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class ActionThrottleMixin:
    """For DRF views: the action's rates on top of the API-wide ones."""

    action_throttles: Sequence[type[SimpleRateThrottle]] = ()

    def get_throttles(self):
        return [*super().get_throttles(), *(cls() for cls in self.action_throttles)]
