"""The buyer's browser as the platform sees it, read from a request in one place.

Every way in (the order page, the REST API, the wallet) describes the buyer with one
:class:`Client`: address, user agent, phone or desktop, the in-app browser the page is open
in (WeChat's or Alipay's), language and region. Ordering ranks methods from it, risk scores
the address and device, and the platform stores it on the payment; a channel receives the
subset its contract names (``channels.base.ClientInfo``), built from the stored payment when
the attempt is created.

The header parsers are pure (plain ``META`` mappings in, values out) so they are tested
without a request; :func:`client_from_request` is the only function that reads settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from django.conf import settings
from django.utils.translation import get_language

Device = Literal["phone", "desktop", "unknown"]
InApp = Literal["wechat", "alipay", ""]
# "profile": the buyer's own preferred currency places them abroad (payments.fx)
RegionSource = Literal["proxy", "language", "profile", ""]

HOME_REGION = "CN"
USER_AGENT_MAX = 255  # what the payment's record keeps


@dataclass(frozen=True)
class DeviceInfo:
    """Phone or desktop, and the in-app browser the page is open in, if any."""

    kind: Device = "unknown"
    in_app: InApp = ""


@dataclass(frozen=True)
class RegionInfo:
    """ISO 3166 country code ('' when unknown) and where it came from."""

    code: str = ""
    source: RegionSource = ""

    @property
    def cross_border(self) -> bool:
        return bool(self.code) and self.code != HOME_REGION


@dataclass(frozen=True)
class Client:
    """Who is paying, from where and on what: the platform-level description of a request.

    ``device`` / ``region`` / ``ip`` / ``user_agent`` / ``language`` are the names the
    payment's stored ``client`` record and the channel contract use."""

    ip: str = ""
    user_agent: str = ""
    device: Device = "unknown"
    in_app: InApp = ""
    language: str = ""
    region: str = ""
    region_source: RegionSource = ""
    #: the first-party device id (config/device.py), what risk calls "the device"
    device_id: str = ""

    @property
    def device_info(self) -> DeviceInfo:
        return DeviceInfo(self.device, self.in_app)

    @property
    def region_info(self) -> RegionInfo:
        return RegionInfo(self.region, self.region_source)


def client_from_request(request) -> Client:
    """Describe the request's buyer: address and region behind ``TRUSTED_PROXY_COUNT``
    proxies (``REGION_HEADER`` is believed only then), device from client hints or the user
    agent, language as the request was answered in."""
    meta = request.META
    device = device_from_meta(meta)
    region = region_from_meta(
        meta,
        trusted_proxy_count=settings.TRUSTED_PROXY_COUNT,
        region_header=settings.REGION_HEADER,
    )
    return Client(
        ip=client_ip(meta, trusted_proxy_count=settings.TRUSTED_PROXY_COUNT),
        user_agent=meta.get("HTTP_USER_AGENT", "")[:USER_AGENT_MAX],
        device=device.kind,
        in_app=device.in_app,
        language=get_language() or "",
        region=region.code,
        region_source=region.source,
        device_id=getattr(request, "device_id", ""),
    )


def client_ip(meta: Mapping[str, str], *, trusted_proxy_count: int) -> str:
    """The buyer's address: the entry our own proxies appended to X-Forwarded-For when
    there are ``trusted_proxy_count`` of them (anything left of it can be forged)."""
    if trusted_proxy_count > 0:
        hops = [h.strip() for h in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
        if len(hops) >= trusted_proxy_count:
            return hops[-trusted_proxy_count]
    return meta.get("REMOTE_ADDR", "")


def request_ip(request) -> str:
    """:func:`client_ip` of a request, with the configured number of trusted proxies."""
    return client_ip(request.META, trusted_proxy_count=settings.TRUSTED_PROXY_COUNT)


# ---------------------------------------------------------------------------------------------
# Headers → device and region

_PHONE_UA = re.compile(
    r"iPhone|iPod|Android.+Mobile|Windows Phone|Mobile Safari|MicroMessenger|AlipayClient|\bMobi",
    re.I,
)
_TABLET_UA = re.compile(r"iPad|Tablet|Android(?!.*Mobile)", re.I)
_LANG_TAG = re.compile(r"^([a-zA-Z]{1,8})(?:-([a-zA-Z0-9]{1,8}))?(?:-([a-zA-Z0-9]{1,8}))?")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
# Script subtags that pin a Chinese variant to a region when no country is given.
_CHINESE_SCRIPT_REGION = {"hans": "CN", "hant": "TW"}


def device_from_meta(meta: Mapping[str, str]) -> DeviceInfo:
    """Phone or desktop from the ``Sec-CH-UA-Mobile`` client hint when the browser sends it,
    otherwise from the user agent; tablets count as desktop (a big screen, a keyboard).
    ``MicroMessenger`` / ``AlipayClient`` in the user agent mark the in-app browsers."""
    ua = meta.get("HTTP_USER_AGENT", "")
    in_app: InApp = "wechat" if "MicroMessenger" in ua else "alipay" if "AlipayClient" in ua else ""
    hint = meta.get("HTTP_SEC_CH_UA_MOBILE", "").strip()
    if hint == "?1":
        return DeviceInfo("phone", in_app)
    if hint == "?0":
        return DeviceInfo("desktop", in_app)
    if not ua:
        return DeviceInfo("unknown", in_app)
    if _TABLET_UA.search(ua) and "Mobile" not in ua:
        return DeviceInfo("desktop", in_app)
    return DeviceInfo("phone" if _PHONE_UA.search(ua) else "desktop", in_app)


def region_from_meta(
    meta: Mapping[str, str], *, trusted_proxy_count: int, region_header: str
) -> RegionInfo:
    """The buyer's country: the trusted proxy's header when a proxy is configured (a client
    can forge it otherwise), else the region of the first ``Accept-Language`` entry."""
    if trusted_proxy_count > 0:
        value = meta.get(region_header, "").strip()
        if _COUNTRY.match(value):
            return RegionInfo(value.upper(), "proxy")
    return region_from_language(meta.get("HTTP_ACCEPT_LANGUAGE", ""))


def region_from_language(header: str) -> RegionInfo:
    """``zh-CN`` → CN, ``zh-Hant-HK`` → HK, ``zh`` → CN, ``en-US`` → US, ``en`` → unknown
    (English alone says nothing about where the buyer is)."""
    first = max(
        (_weighted(part) for part in header.split(",") if part.strip()),
        key=lambda pair: pair[0],
        default=(0.0, ""),
    )[1]
    match = _LANG_TAG.match(first)
    if not match:
        return RegionInfo()
    language, *subtags = (s for s in match.groups() if s)
    for subtag in subtags:
        if len(subtag) == 2 and subtag.isalpha():
            return RegionInfo(subtag.upper(), "language")
    if language.lower() == "zh":
        for subtag in subtags:
            if subtag.lower() in _CHINESE_SCRIPT_REGION:
                return RegionInfo(_CHINESE_SCRIPT_REGION[subtag.lower()], "language")
        return RegionInfo(HOME_REGION, "language")
    return RegionInfo()


def _weighted(part: str) -> tuple[float, str]:
    tag, _sep, params = part.strip().partition(";")
    quality = 1.0
    for param in params.split(";"):
        name, _eq, value = param.strip().partition("=")
        if name == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
    return quality, tag.strip()
