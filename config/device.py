"""The first-party device id: a random id in a signed, long-lived, HttpOnly, SameSite=Lax
cookie, so risk's "new device" means a browser we never saw, not a new user-agent string
after a browser update. Client hints (``Sec-CH-UA*``), when the browser sends them, describe
the device for people (the sessions page, the log-in e-mail).

Sets ``request.device_id`` (read from the cookie, or new) and ``request.device_hints`` (the
hints sent, by short name). A client authenticating with an ``Authorization`` header (the
REST API's tokens) keeps no cookies: it gets no id, and risk falls back to its user agent."""

from __future__ import annotations

import secrets

from django.conf import settings

COOKIE = "cx_device"
SALT = "cardex.device"
MAX_AGE = 2 * 365 * 24 * 3600  # two years: a device stays known across visits
HINTS = {
    "HTTP_SEC_CH_UA": "brands",
    "HTTP_SEC_CH_UA_MOBILE": "mobile",
    "HTTP_SEC_CH_UA_PLATFORM": "platform",
    "HTTP_SEC_CH_UA_MODEL": "model",
}
# Ask for the hints not sent by default (platform and mobile are; the model is not).
ACCEPT_CH = "Sec-CH-UA, Sec-CH-UA-Mobile, Sec-CH-UA-Platform, Sec-CH-UA-Model"


def new_device_id() -> str:
    return "d-" + secrets.token_urlsafe(16)


def device_id_from(request) -> str:
    """The id in the request's cookie if its signature holds, else ''."""
    value = request.get_signed_cookie(COOKIE, default="", salt=SALT)
    return value if value.startswith("d-") and len(value) <= 64 else ""


def hints_from(meta) -> dict[str, str]:
    return {name: str(meta[key]).strip()[:120] for key, name in HINTS.items() if meta.get(key, "")}


def device_label(hints: dict[str, str], user_agent: str) -> str:
    """For people: "Windows · Chromium 131" from the hints, else the user agent, shortened."""
    platform = hints.get("platform", "").strip('"')
    brands = [
        part.split(";")[0].strip().strip('"')
        for part in hints.get("brands", "").split(",")
        if part.strip() and "Not" not in part
    ]
    versions = [
        part.split(";v=")[-1].strip('"') if ";v=" in part else ""
        for part in hints.get("brands", "").split(",")
        if part.strip() and "Not" not in part
    ]
    brand = f"{brands[-1]} {versions[-1]}".strip() if brands else ""
    model = hints.get("model", "").strip('"')
    label = " · ".join(part for part in (model, platform, brand) if part)
    return (label or user_agent)[:255]


class DeviceIdMiddleware:
    """Reads or issues the device id; re-sent only when new (the cookie lives two years)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        known = device_id_from(request)
        keeps_cookies = "HTTP_AUTHORIZATION" not in request.META
        request.device_id = known or (new_device_id() if keeps_cookies else "")
        request.device_hints = hints_from(request.META)
        response = self.get_response(request)
        if request.device_id and not known:
            response.set_signed_cookie(
                COOKIE,
                request.device_id,
                salt=SALT,
                max_age=MAX_AGE,
                httponly=True,
                samesite="Lax",
                secure=settings.SESSION_COOKIE_SECURE,
            )
        response.headers.setdefault("Accept-CH", ACCEPT_CH)
        return response
