"""A second factor for staff in admin: TOTP (RFC 6238) through django-otp.

A member of staff with a confirmed TOTP device must type its current code after the
password before any admin page opens; one without a device is sent to enrol one (a QR code
to scan with any authenticator app) when ``STAFF_TOTP_REQUIRED`` is on, and may enrol on
their own otherwise. Wrong codes count as failed log-ins for django-axes, so guessing codes
locks the account from that address exactly like guessing passwords; django-otp's own
throttle also doubles the wait after each wrong code."""

from __future__ import annotations

import base64
import functools
from urllib.parse import urlencode

import segno
from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.signals import user_login_failed
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django_otp import devices_for_user, match_token
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.lockout import lockout_response

#: admin paths a signed-in member of staff may reach before passing the second factor
_OPEN_PATHS = ("login/", "logout/", "otp/", "jsi18n/")


def _admin_prefix() -> str:
    return _admin_prefix_of(get_script_prefix(), get_urlconf())


@functools.lru_cache(maxsize=8)
def _admin_prefix_of(script_prefix: str, urlconf) -> str:
    """Resolved once per URL map, not at every request this middleware sees."""
    return reverse("admin:index", urlconf=urlconf)


@receiver(setting_changed)
def _forget_admin_prefix(*, setting, **kwargs):
    if setting == "ROOT_URLCONF":
        _admin_prefix_of.cache_clear()


def _has_device(user) -> bool:
    return any(devices_for_user(user, confirmed=True))


def _next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return _admin_prefix()


class StaffOTPMiddleware:
    """Admin pages for staff only once the second factor is passed (or, with the setting
    off, for staff who have not enrolled one). Runs after django-otp's OTPMiddleware."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        prefix = _admin_prefix()
        user = getattr(request, "user", None)
        if (
            request.path.startswith(prefix)
            and user is not None
            and user.is_authenticated
            and user.is_staff
            and not request.path[len(prefix) :].startswith(_OPEN_PATHS)
            and not user.is_verified()
        ):
            query = urlencode({"next": request.get_full_path()})
            if _has_device(user):
                return redirect(f"{reverse('staff-otp-verify')}?{query}")
            if settings.STAFF_TOTP_REQUIRED:
                return redirect(f"{reverse('staff-otp-enroll')}?{query}")
        return self.get_response(request)


class TokenForm(forms.Form):
    token = forms.CharField(
        label=gettext_lazy("Code from your authenticator app"),
        min_length=6,
        max_length=8,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )

    def clean_token(self) -> str:
        token = "".join(self.cleaned_data["token"].split())
        if not token.isdigit():
            raise forms.ValidationError(_("The code is six digits."))
        return token


def _failed(request: HttpRequest) -> HttpResponse | None:
    """Count a wrong code as a failed log-in (django-axes); once the account is locked from
    this address the session ends and the lock-out page answers."""
    from axes.handlers.proxy import AxesProxyHandler

    credentials = {settings.AXES_USERNAME_FORM_FIELD: request.user.get_username()}
    user_login_failed.send(sender=__name__, credentials=credentials, request=request)
    if AxesProxyHandler.is_locked(request, credentials):
        logout(request)
        return lockout_response(request, credentials=credentials)
    return None


@never_cache
@login_required(login_url="admin:login")
def verify(request: HttpRequest) -> HttpResponse:
    """The second step of the admin log-in: the current code of one of the user's devices."""
    user = request.user
    if user.is_verified() or not _has_device(user):
        return redirect(_next(request))
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        device = match_token(user, form.cleaned_data["token"])
        if device is not None:
            otp_login(request, device)
            return redirect(_next(request))
        locked = _failed(request)
        if locked is not None:
            return locked
        form.add_error("token", _("That code is not right, or it has expired. Try the next one."))
    return render(
        request,
        "admin/otp_verify.html",
        {
            **admin.site.each_context(request),  # the back office's header and language
            "form": form,
            "next": _next(request),
            "title": _("Two-step sign-in"),
        },
    )


@never_cache
@login_required(login_url="admin:login")
def enroll(request: HttpRequest) -> HttpResponse:
    """Enrol a TOTP device: scan the QR code, type the code it shows to confirm. A user who
    has a device must pass it first (a stolen password must not enrol a new one)."""
    user = request.user
    if not user.is_staff:
        return redirect("/")
    if _has_device(user) and not user.is_verified():
        return redirect(f"{reverse('staff-otp-verify')}?{urlencode({'next': request.path})}")
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=_("Authenticator app"), confirmed=False)
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"]):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            return redirect(_next(request))
        locked = _failed(request)
        if locked is not None:
            return locked
        form.add_error("token", _("That code is not right; check the app's clock and try again."))
    qr = segno.make(device.config_url, error="m")
    return render(
        request,
        "admin/otp_enroll.html",
        {
            **admin.site.each_context(request),
            "form": form,
            "next": _next(request),
            "title": _("Set up two-step sign-in"),
            "qr_svg": qr.svg_inline(scale=5, dark="#000", light="#fff"),
            "secret": _base32(device.bin_key),
            "required": settings.STAFF_TOTP_REQUIRED,
        },
    )


def _base32(key: bytes) -> str:
    """The key as authenticator apps take it when typed (groups of four)."""
    text = base64.b32encode(key).decode().rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))
