"""The buyer's browser as the platform reads it: device, in-app browser, region, address."""

import pytest
from django.test import RequestFactory

from payments.client import (
    Client,
    DeviceInfo,
    RegionInfo,
    client_from_request,
    client_ip,
    device_from_meta,
    region_from_language,
    region_from_meta,
)

# --- device ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        (
            {"HTTP_SEC_CH_UA_MOBILE": "?1", "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64)"},
            "phone",
        ),
        ({"HTTP_SEC_CH_UA_MOBILE": "?0", "HTTP_USER_AGENT": "Mozilla/5.0 (iPhone)"}, "desktop"),
        (
            {
                "HTTP_USER_AGENT": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) "
                "Mobile/15E148"
            },
            "phone",
        ),
        (
            {
                "HTTP_USER_AGENT": "Mozilla/5.0 (Linux; Android 14; Pixel 8) Chrome/120 "
                "Mobile Safari/537.36"
            },
            "phone",
        ),
        ({"HTTP_USER_AGENT": "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X)"}, "desktop"),
        ({"HTTP_USER_AGENT": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120"}, "desktop"),
        ({}, "unknown"),
    ],
)
def test_device_comes_from_the_client_hint_first_then_the_user_agent(meta, expected):
    assert device_from_meta(meta).kind == expected


def test_device_notices_the_wechat_in_app_browser():
    ua = "Mozilla/5.0 (iPhone) AppleWebKit Mobile/15E148 MicroMessenger/8.0.47"
    assert device_from_meta({"HTTP_USER_AGENT": ua}) == DeviceInfo("phone", "wechat")


# --- region ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "code"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "CN"),
        ("zh", "CN"),
        ("zh-Hans", "CN"),
        ("zh-Hant-HK", "HK"),
        ("zh-TW", "TW"),
        ("en-US,en;q=0.9", "US"),
        ("en;q=0.5, de-DE", "DE"),
        ("en", ""),
        ("", ""),
        ("*", ""),
    ],
)
def test_region_from_accept_language(header, code):
    assert region_from_language(header).code == code


def test_region_header_is_trusted_only_behind_a_configured_proxy():
    meta = {"HTTP_X_COUNTRY_CODE": "sg", "HTTP_ACCEPT_LANGUAGE": "zh-CN"}
    assert region_from_meta(
        meta, trusted_proxy_count=1, region_header="HTTP_X_COUNTRY_CODE"
    ) == RegionInfo("SG", "proxy")
    assert region_from_meta(
        meta, trusted_proxy_count=0, region_header="HTTP_X_COUNTRY_CODE"
    ) == RegionInfo("CN", "language")


def test_device_notices_the_alipay_in_app_browser():
    ua = "Mozilla/5.0 (Linux; Android 14) Mobile Safari/537.36 AlipayClient/10.5.30"
    assert device_from_meta({"HTTP_USER_AGENT": ua}) == DeviceInfo("phone", "alipay")


# --- address --------------------------------------------------------------------------------------


def test_the_address_is_the_one_our_own_proxy_appended():
    meta = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4, 203.0.113.9, 10.0.0.2"}
    assert client_ip(meta, trusted_proxy_count=1) == "10.0.0.2"
    assert client_ip(meta, trusted_proxy_count=2) == "203.0.113.9"


def test_without_a_trusted_proxy_a_forwarded_for_header_is_ignored():
    meta = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "1.2.3.4"}
    assert client_ip(meta, trusted_proxy_count=0) == "10.0.0.1"


# --- one request, one client ----------------------------------------------------------------------


def test_a_request_from_wechat_on_a_phone_behind_the_proxy_is_described_whole(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    request = RequestFactory().get(
        "/",
        HTTP_USER_AGENT="Mozilla/5.0 (iPhone) Mobile/15E148 MicroMessenger/8.0.47",
        HTTP_X_COUNTRY_CODE="hk",
        HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.2",
    )
    client = client_from_request(request)
    assert isinstance(client, Client)
    assert (client.device, client.in_app, client.region, client.region_source, client.ip) == (
        "phone",
        "wechat",
        "HK",
        "proxy",
        "10.0.0.2",
    )
    assert client.device_info == DeviceInfo("phone", "wechat")
    assert client.region_info == RegionInfo("HK", "proxy")


def test_a_very_long_user_agent_is_cut_to_what_the_payment_keeps():
    request = RequestFactory().get("/", HTTP_USER_AGENT="x" * 1000)
    assert len(client_from_request(request).user_agent) == 255
