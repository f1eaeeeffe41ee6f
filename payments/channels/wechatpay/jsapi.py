"""Paying inside WeChat's own browser: WeChat Pay JSAPI.

WeChat refuses H5 payments inside itself; there the page pays through the
``WeixinJSBridge`` that WeChat injects. Three steps, all named by WeChat's documentation:

1. ``snsapi_base`` OAuth (silent): the browser is sent to ``open.weixin.qq.com`` and comes
   back with a ``code``, which ``api.weixin.qq.com/sns/oauth2/access_token`` exchanges for the
   buyer's ``openid`` under our app id (:func:`authorize_url`, :func:`exchange_code`);
2. ``POST /v3/pay/transactions/jsapi`` with ``payer.openid`` answers a ``prepay_id`` (the
   backend's create);
3. the page calls ``WeixinJSBridge.invoke('getBrandWCPayRequest', …)`` with the parameters
   of :func:`bridge_parameters`, signed SHA256withRSA over
   ``appId\\ntimeStamp\\nnonceStr\\npackage\\n`` with the merchant API key.

The openid is remembered by the platform per buyer and app id; the channel reaches it
through the payer port below (registered in ``PaymentsConfig.ready()``), as the balance
channel reaches wallets, so it imports nothing of the platform.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlencode, urlsplit

from payments.channels import http
from payments.channels.base import AccountConfig, ChannelDeclined, ChannelUnavailable
from payments.channels.wechatpay.wire import sign_message

LIVE_HOSTS = frozenset({"api.mch.weixin.qq.com", "api2.mch.weixin.qq.com"})
LIVE_AUTHORIZE_URL = "https://open.weixin.qq.com/connect/oauth2/authorize"
LIVE_TOKEN_URL = "https://api.weixin.qq.com/sns/oauth2/access_token"
AUTHORIZE_PATH = "connect/oauth2/authorize"
TOKEN_PATH = "sns/oauth2/access_token"
SCOPE = "snsapi_base"
#: WeChat's own mark in its in-app browser's user agent
IN_APP_MARK = "MicroMessenger"
BRIDGE = "WeixinJSBridge"
CODE = re.compile(r"[0-9A-Za-z_\-]{1,128}")  # WeChat's codes are 32 such characters


def in_wechat(user_agent: str) -> bool:
    """True inside WeChat's in-app browser, where only JSAPI can pay."""
    return IN_APP_MARK in (user_agent or "")


# ---------------------------------------------------------------------------------------------
# The payer port: openids the platform remembers


class PayerPort(Protocol):
    def openid(self, *, buyer_ref: str, app_id: str) -> str:
        """The openid remembered for this buyer under ``app_id``; '' when none."""

    def forget(self, *, buyer_ref: str, app_id: str) -> None:
        """Drop an openid WeChat refused, so the next checkout asks WeChat again."""


_port: PayerPort | None = None


def register(port: PayerPort) -> None:
    global _port
    _port = port


def payers() -> PayerPort:
    if _port is None:
        raise ChannelDeclined("no WeChat payer store is registered", code="MISCONFIGURED")
    return _port


# ---------------------------------------------------------------------------------------------
# OAuth (snsapi_base)


def oauth_urls(account: AccountConfig) -> tuple[str, str]:
    """(authorize URL, access-token URL): WeChat's own hosts for a live account, the
    account's base URL (the local sandbox) otherwise."""
    host = urlsplit(account.base_url).hostname or ""
    if host in LIVE_HOSTS:
        return LIVE_AUTHORIZE_URL, LIVE_TOKEN_URL
    base = account.base_url.rstrip("/") + "/"
    return base + AUTHORIZE_PATH, base + TOKEN_PATH


def authorize_url(account: AccountConfig, *, redirect_uri: str, state: str) -> str:
    """Where the browser goes for the buyer's openid; WeChat sends it back to
    ``redirect_uri?code=…&state=…``. The fragment is WeChat's required suffix."""
    if not account.app_id:
        raise ChannelDeclined(
            f"WeChat Pay account {account.code!r} has no app id", code="MISCONFIGURED"
        )
    query = urlencode(
        {
            "appid": account.app_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": SCOPE,
            "state": state,
        }
    )
    return f"{oauth_urls(account)[0]}?{query}#wechat_redirect"


def exchange_code(account: AccountConfig, code: str) -> str:
    """The openid behind an OAuth ``code`` (single use, 5 minutes). WeChat's ``errcode``
    answers raise ChannelDeclined with ``OAUTH_<errcode>``; a code that is not even
    well-formed is refused before calling."""
    if not CODE.fullmatch(code or ""):
        raise ChannelDeclined("the WeChat OAuth code is missing or malformed", code="OAUTH_CODE")
    secret = account.credentials.get("app_secret")
    if not secret:
        raise ChannelDeclined(
            f"WeChat Pay account {account.code!r} has no app_secret credential",
            code="MISCONFIGURED",
        )
    query = urlencode(
        {
            "appid": account.app_id,
            "secret": str(secret),
            "code": code,
            "grant_type": "authorization_code",
        }
    )
    url = f"{oauth_urls(account)[1]}?{query}"
    parts = urlsplit(url)
    response = http.send(f"{parts.scheme}://{parts.netloc}", "GET", url)
    try:
        answer = json.loads(response.content or b"{}")
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise ChannelUnavailable("WeChat's OAuth answer is not JSON", code="BAD_RESPONSE")
    if answer.get("errcode"):
        raise ChannelDeclined(
            f"WeChat OAuth refused the code: {answer.get('errmsg') or answer['errcode']}",
            code=f"OAUTH_{answer['errcode']}",
            raw={"errcode": answer["errcode"], "errmsg": answer.get("errmsg", "")},
        )
    openid = str(answer.get("openid") or "")
    if not openid:
        raise ChannelUnavailable("WeChat's OAuth answer has no openid", code="BAD_RESPONSE")
    return openid


# ---------------------------------------------------------------------------------------------
# The bridge call


def pay_sign_message(app_id: str, timestamp: str, nonce: str, package: str) -> str:
    """``appId\\ntimeStamp\\nnonceStr\\npackage\\n`` — every line ends with ``\\n``."""
    return f"{app_id}\n{timestamp}\n{nonce}\n{package}\n"


def bridge_parameters(
    *,
    app_id: str,
    prepay_id: str,
    private_key: str,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The object ``getBrandWCPayRequest`` takes, signed with the merchant API key."""
    timestamp = timestamp or str(int(time.time()))
    nonce = nonce or secrets.token_hex(16)
    package = f"prepay_id={prepay_id}"
    return {
        "appId": app_id,
        "timeStamp": timestamp,
        "nonceStr": nonce,
        "package": package,
        "signType": "RSA",
        "paySign": sign_message(pay_sign_message(app_id, timestamp, nonce, package), private_key),
    }


def jsapi_body(order: Mapping[str, object], openid: str) -> dict[str, object]:
    """The JSAPI order: the common order fields plus ``payer.openid``."""
    if not openid:
        raise ChannelDeclined("no openid for the buyer under this app id", code="OPENID_MISSING")
    return {**order, "payer": {"openid": openid}}
