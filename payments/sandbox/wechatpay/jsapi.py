"""Paying inside WeChat, from WeChat's side: the ``snsapi_base`` OAuth pages of
open.weixin.qq.com and api.weixin.qq.com, ``POST /v3/pay/transactions/jsapi``, and a
stand-in of the ``WeixinJSBridge`` the WeChat app injects into its browser.

The sandbox's WeChat user is this browser: a cookie names it, and its openid under an app
id is ``oSBX`` + the user's id + a MAC over (app id, user), so the JSAPI endpoint can tell an
openid it issued for this app id from any other without keeping a list. The bridge's
``paySign`` is verified here with the merchant's registered public key (this module's own
code, not the backend's).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect
from django.urls import path
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from payments.sandbox import core, keys
from payments.sandbox.models import SandboxMerchant, SandboxTrade
from payments.sandbox.wechatpay.gateway import api, order_create, request_json
from payments.sandbox.wechatpay.protocol import CHANNEL, ApiError, answer, digits
from payments.sandbox.wechatpay.state import WechatPaySandbox

USER_COOKIE = "sandbox_wx_user"
CODE_SECONDS = 300  # WeChat: a code is valid 5 minutes, once
CODE_PREFIX = "sandbox:wechatpay:oauth:"
BRIDGE_SCRIPT = Path(__file__).with_name("bridge.js")
OK, CANCEL, FAIL = (f"get_brand_wcpay_request:{s}" for s in ("ok", "cancel", "fail"))


# ---------------------------------------------------------------------------------------------
# Openids


def _code_key(code: str) -> str:
    return CODE_PREFIX + hashlib.sha256(code.encode()).hexdigest()


def _openid_key() -> bytes:
    return hashlib.sha256(b"openid:" + keys.provider_private_pem(CHANNEL).encode()).digest()


def _mac(app_id: str, user: str) -> str:
    digest = hmac.new(_openid_key(), f"{app_id}:{user}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:16]


def openid_for(app_id: str, user: str) -> str:
    return f"oSBX{user}{_mac(app_id, user)}"


def openid_valid(app_id: str, openid: str) -> bool:
    """Whether the sandbox issued ``openid`` under ``app_id``."""
    if not openid.startswith("oSBX") or len(openid) != 32:
        return False
    user = openid[4:16]
    return hmac.compare_digest(openid, openid_for(app_id, user))


def _merchant_of_app(app_id: str) -> SandboxMerchant | None:
    return next(
        (
            m
            for m in SandboxMerchant.objects.filter(channel=CHANNEL)
            if m.config.get("appid") == app_id and app_id
        ),
        None,
    )


# ---------------------------------------------------------------------------------------------
# OAuth (open.weixin.qq.com, api.weixin.qq.com)


@never_cache
@require_GET
def oauth_authorize(request: HttpRequest) -> HttpResponse:
    """snsapi_base is silent in WeChat: straight back to ``redirect_uri`` with a code."""
    app_id = request.GET.get("appid", "")
    redirect_uri = request.GET.get("redirect_uri", "")
    parts = urlsplit(redirect_uri)
    if _merchant_of_app(app_id) is None:
        return HttpResponseBadRequest("appid 无效 (invalid appid)")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return HttpResponseBadRequest("redirect_uri 参数错误")
    if request.GET.get("response_type") != "code" or request.GET.get("scope") not in (
        "snsapi_base",
        "snsapi_userinfo",
    ):
        return HttpResponseBadRequest("scope 参数错误或没有 scope 权限")
    user = request.COOKIES.get(USER_COOKIE, "")
    if len(user) != 12 or not user.isalnum():
        user = secrets.token_hex(6)
    code = secrets.token_urlsafe(24)
    issued = {"appid": app_id, "openid": openid_for(app_id, user)}
    cache.set(_code_key(code), issued, CODE_SECONDS)
    answer_query = urlencode({"code": code, "state": request.GET.get("state", "")})
    query = f"{parts.query}&{answer_query}" if parts.query else answer_query
    response = redirect(urlunsplit((parts.scheme, parts.netloc, parts.path, query, "")))
    response.set_cookie(USER_COOKIE, user, max_age=365 * 86400, samesite="Lax", httponly=True)
    return response


@never_cache
@require_GET
def oauth_access_token(request: HttpRequest) -> HttpResponse:
    """The code → openid exchange; WeChat's errcodes for a wrong secret or code."""
    app_id = request.GET.get("appid", "")
    merchant = _merchant_of_app(app_id)
    if merchant is None:
        return JsonResponse({"errcode": 40013, "errmsg": "invalid appid"})
    secret = request.GET.get("secret", "")
    if not hmac.compare_digest(secret, str(merchant.config.get("app_secret", ""))):
        return JsonResponse({"errcode": 40125, "errmsg": "invalid appsecret"})
    if request.GET.get("grant_type") != "authorization_code":
        return JsonResponse({"errcode": 40002, "errmsg": "invalid grant_type"})
    code = request.GET.get("code", "")
    issued = cache.get(_code_key(code)) if code else None
    if not issued or issued["appid"] != app_id:
        return JsonResponse({"errcode": 40029, "errmsg": "invalid code"})
    cache.delete(_code_key(code))
    return JsonResponse(
        {
            "access_token": secrets.token_urlsafe(32),
            "expires_in": 7200,
            "refresh_token": secrets.token_urlsafe(32),
            "openid": issued["openid"],
            "scope": "snsapi_base",
        }
    )


# ---------------------------------------------------------------------------------------------
# POST /v3/pay/transactions/jsapi


def api_jsapi(request: HttpRequest, merchant: SandboxMerchant) -> HttpResponse:
    data = request_json(request)
    payer = data.get("payer")
    openid = str(payer.get("openid") or "") if isinstance(payer, dict) else ""
    if not openid:
        raise ApiError(400, "PARAM_ERROR", "JSAPI 支付必须填写 payer.openid")
    if not openid_valid(str(data.get("appid", "")), openid):
        raise ApiError(400, "OPENID_MISMATCH", "openid 与 appid 不匹配")
    trade = order_create(request, merchant, "JSAPI")
    with transaction.atomic():
        trade = SandboxTrade.objects.select_for_update().get(pk=trade.pk)
        if trade.extra.get("openid", openid) != openid:
            raise ApiError(403, "OUT_TRADE_NO_USED", "商户订单号重复，且订单信息不一致")
        if not trade.extra.get("prepay_id"):
            trade.extra = {
                **trade.extra,
                "openid": openid,
                "prepay_id": "wx" + digits(trade.trade_no + "prepay", 34),
            }
            trade.save(update_fields=["extra"])
    return answer(200, {"prepay_id": trade.extra["prepay_id"]})


# ---------------------------------------------------------------------------------------------
# The bridge


@require_GET
def bridge_script(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(BRIDGE_SCRIPT.read_bytes(), content_type="text/javascript")
    response["Cache-Control"] = "no-store"
    return response


def pay_sign_valid(public_pem: str, params: dict) -> bool:
    """SHA256withRSA over ``appId\\ntimeStamp\\nnonceStr\\npackage\\n`` with the merchant's
    registered key."""
    message = "".join(
        f"{params.get(name, '')}\n" for name in ("appId", "timeStamp", "nonceStr", "package")
    )
    try:
        key = serialization.load_pem_public_key(public_pem.encode())
        key.verify(
            base64.b64decode(str(params.get("paySign", "")), validate=True),
            message.encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def bridge_outcome(params: dict, *, confirm: bool) -> tuple[str, str]:
    """What ``getBrandWCPayRequest`` answers for these parameters: the parameters are
    checked like WeChat does (app id, package, sign type, paySign), then the payer's choice
    settles the order (confirm) or leaves it unpaid (a simulated failure)."""
    package = str(params.get("package", ""))
    prepay_id = package.removeprefix("prepay_id=")
    trade = (
        SandboxTrade.objects.filter(channel=CHANNEL, extra__prepay_id=prepay_id).first()
        if package.startswith("prepay_id=") and prepay_id
        else None
    )
    if trade is None:
        return FAIL, "prepay_id 无效"
    merchant = SandboxMerchant.objects.get(channel=CHANNEL, merchant_id=trade.merchant_id)
    if params.get("appId") != trade.extra.get("appid") or params.get("signType") != "RSA":
        return FAIL, "appId 或 signType 参数错误"
    if not pay_sign_valid(str(merchant.config.get("public_key", "")), params):
        return FAIL, "支付验证签名失败"
    if trade.status == SandboxTrade.Status.PAID:
        return OK, ""
    if trade.status != SandboxTrade.Status.WAITING:
        return FAIL, "订单已关闭"
    if not confirm:
        return FAIL, "支付失败（模拟）"
    WechatPaySandbox().settle(trade, approve=True)
    return OK, ""


def _site_origin() -> str:
    parts = urlsplit(settings.SITE_URL)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _to_the_site(response: HttpResponse) -> HttpResponse:
    """The shop's page reads the answer: when the simulators are served on their own origin
    (`make serve`), only the shop's origin (SITE_URL) may read it."""
    origin = _site_origin()
    if origin:
        response["Access-Control-Allow-Origin"] = origin
        response["Vary"] = "Origin"
    return response


@csrf_exempt
@require_http_methods(["POST", "OPTIONS"])
def bridge_pay(request: HttpRequest) -> HttpResponse:
    """The stand-in bridge's confirm sheet posts here: ``{"request": {...}, "confirm": bool}``.
    When the simulators are served on their own origin the browser may ask first (a CORS
    preflight, or Chromium's private-network one): only the shop's origin is answered yes."""
    if request.method == "OPTIONS":
        response = _to_the_site(HttpResponse(status=204))
        if "Access-Control-Allow-Origin" in response:
            response["Access-Control-Allow-Methods"] = "POST"
            response["Access-Control-Allow-Headers"] = "Content-Type"
            if request.headers.get("Access-Control-Request-Private-Network") == "true":
                response["Access-Control-Allow-Private-Network"] = "true"
        return response
    fault = core.fault_response(CHANNEL)
    if fault is not None:
        return _to_the_site(JsonResponse({"err_msg": FAIL, "err_desc": "系统繁忙"}))
    try:
        data = json.loads(request.body or b"{}")
        params = data["request"]
        if not isinstance(params, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        return _to_the_site(JsonResponse({"err_msg": FAIL, "err_desc": "参数错误"}))
    err_msg, desc = bridge_outcome(params, confirm=bool(data.get("confirm")))
    return _to_the_site(JsonResponse({"err_msg": err_msg, "err_desc": desc}))


urlpatterns = [
    path("connect/oauth2/authorize", oauth_authorize, name="oauth-authorize"),
    path("sns/oauth2/access_token", oauth_access_token, name="oauth-access-token"),
    path("v3/pay/transactions/jsapi", api(("POST",), api_jsapi), name="jsapi"),
    path("jsapi/bridge.js", bridge_script, name="jsapi-bridge"),
    path("jsapi/pay", bridge_pay, name="jsapi-pay"),
]
