"""Who pays inside WeChat: the buyer's openid from WeChat's silent ``snsapi_base`` OAuth.

WeChat Pay JSAPI names the payer by an openid, which only WeChat's OAuth gives, per app id.
The order page opened in WeChat's browser sends the buyer through it once per app id
(:func:`oauth_start_url` tells the page where); the answer comes back to
:func:`wechat_oauth_callback`, which exchanges the code and remembers the openid
(:class:`~payments.models.WechatPayer`). The WeChat Pay channel reads it through the payer
port (``payments.channels.wechatpay.jsapi``) this module implements.

The ``state`` sent to WeChat is bound to the buyer's session, their account and the payable
(order) it was started for, single use and short-lived: a code obtained in another browser,
for another buyer or another order is refused, and nothing is stored.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from payments.accounts import backend_for
from payments.channels.base import ChannelError
from payments.client import device_from_meta
from payments.errors import buyer_message, error_spec
from payments.models import ChannelAccount, Method, WechatPayer
from payments.payables import PayableRef

SESSION_PENDING = "wechat_oauth_pending"
SESSION_FAILED = "wechat_oauth_failed"
STATE_SECONDS = 600  # WeChat's codes live 5 minutes; the state a little longer
MAX_PENDING = 5


class OAuthRefused(Exception):
    """The OAuth answer cannot be used; ``message`` is in the buyer's language."""

    def __init__(self, message: str, *, next_url: str = ""):
        super().__init__(message)
        self.message = message
        self.next_url = next_url


@dataclass(frozen=True)
class PendingOAuth:
    account: str
    ref: str
    next_url: str


# ---------------------------------------------------------------------------------------------
# The payer port (what the channel asks)


class StoredPayers:
    """The channel's payer port on :class:`WechatPayer` rows."""

    def openid(self, *, buyer_ref: str, app_id: str) -> str:
        if not buyer_ref.isdigit() or not app_id:
            return ""
        row = WechatPayer.objects.filter(buyer_id=int(buyer_ref), app_id=app_id).first()
        return row.openid if row else ""

    def forget(self, *, buyer_ref: str, app_id: str) -> None:
        if buyer_ref.isdigit():
            WechatPayer.objects.filter(buyer_id=int(buyer_ref), app_id=app_id).delete()


def wechat_accounts():
    """Enabled WeChat Pay accounts with an app id, in a stable order."""
    return [
        account
        for account in ChannelAccount.objects.filter(backend="wechatpay", enabled=True).order_by(
            "code"
        )
        if account.app_id and Method.WECHATPAY in (account.methods or [])
    ]


def account_without_openid(user) -> ChannelAccount | None:
    """The first WeChat Pay account whose app id has no openid for this buyer yet."""
    known = set(WechatPayer.objects.filter(buyer=user).values_list("app_id", flat=True))
    return next((a for a in wechat_accounts() if a.app_id not in known), None)


# ---------------------------------------------------------------------------------------------
# The state: bound to the session, the buyer and the payable


def state_begin(session, *, user_id: int, account: str, ref: str, next_url: str) -> str:
    """A fresh single-use state (32 hex characters, within WeChat's 128 of [A-Za-z0-9])."""
    now = time.time()
    pending = {
        state: entry
        for state, entry in dict(session.get(SESSION_PENDING) or {}).items()
        if now - float(entry.get("at", 0)) < STATE_SECONDS
    }
    while len(pending) >= MAX_PENDING:
        pending.pop(min(pending, key=lambda s: pending[s]["at"]))
    state = secrets.token_hex(16)
    pending[state] = {
        "user": user_id,
        "account": account,
        "ref": ref,
        "next": next_url,
        "at": now,
    }
    session[SESSION_PENDING] = pending
    return state


def state_claim(session, *, state: str, user_id: int, ref: str) -> PendingOAuth:
    """Use up ``state``: it must have been started in this session, by this buyer, for this
    payable, less than ten minutes ago. Raises :class:`OAuthRefused`."""
    pending = dict(session.get(SESSION_PENDING) or {})
    entry = pending.pop(state, None) if state else None
    session[SESSION_PENDING] = pending
    refused = _oauth_message()
    if entry is None:
        raise OAuthRefused(refused)
    next_url = str(entry.get("next", ""))
    if entry.get("user") != user_id or entry.get("ref") != ref:
        raise OAuthRefused(refused, next_url=next_url)
    if time.time() - float(entry.get("at", 0)) >= STATE_SECONDS:
        raise OAuthRefused(refused, next_url=next_url)
    return PendingOAuth(account=str(entry["account"]), ref=ref, next_url=next_url)


def _oauth_message() -> str:
    message = buyer_message(error_spec("wechatpay", "OAUTH_CODE"), "OAUTH_CODE")
    return f"{message.reason}. {message.guidance}".strip()


def _failed(session) -> list[str]:
    return list(session.get(SESSION_FAILED) or [])


def _mark_failed(session, account: str) -> None:
    session[SESSION_FAILED] = sorted({*_failed(session), account})


# ---------------------------------------------------------------------------------------------
# What the order page asks


@dataclass(frozen=True)
class OAuthStep:
    url: str
    automatic: bool  # False after a failure in this session: the buyer retries by hand


def oauth_start_url(request, *, ref: str, next_url: str) -> OAuthStep | None:
    """Where the order page in WeChat's browser must send the buyer so WeChat Pay can open
    there; None when not in WeChat or every app id's openid is known."""
    if device_from_meta(request.META).in_app != "wechat" or not request.user.is_authenticated:
        return None
    account = account_without_openid(request.user)
    if account is None:
        return None
    query = urlencode({"ref": ref, "next": next_url})
    return OAuthStep(
        url=f"{reverse('payments:wechat_oauth_start')}?{query}",
        automatic=account.code not in _failed(request.session),
    )


def _safe_next(request, value: str) -> str:
    if value.startswith("/") and url_has_allowed_host_and_scheme(
        value, allowed_hosts={request.get_host()}, require_https=False
    ):
        return value
    return "/"


# ---------------------------------------------------------------------------------------------
# Views


@never_cache
@login_required
@require_GET
def wechat_oauth_start(request):
    """Send the buyer to WeChat's authorize page for the first app id without an openid."""
    next_url = _safe_next(request, request.GET.get("next", ""))
    ref = PayableRef.parse(request.GET.get("ref", ""))
    account = account_without_openid(request.user)
    if ref is None or account is None:
        return redirect(next_url)
    request.session[SESSION_FAILED] = [c for c in _failed(request.session) if c != account.code]
    state = state_begin(
        request.session,
        user_id=request.user.pk,
        account=account.code,
        ref=str(ref),
        next_url=next_url,
    )
    callback = settings.SITE_URL + reverse("payments:wechat_oauth_callback")
    redirect_uri = f"{callback}?{urlencode({'ref': str(ref)})}"
    try:
        url = backend_for(account).oauth_authorize_url(redirect_uri=redirect_uri, state=state)
    except ChannelError:
        _mark_failed(request.session, account.code)
        messages.error(request, _oauth_message())
        return redirect(next_url)
    return redirect(url)


@never_cache
@login_required
@require_GET
def wechat_oauth_callback(request):
    """WeChat's answer: claim the state, exchange the code, remember the openid, go back."""
    try:
        pending = state_claim(
            request.session,
            state=request.GET.get("state", ""),
            user_id=request.user.pk,
            ref=request.GET.get("ref", ""),
        )
    except OAuthRefused as exc:
        messages.error(request, exc.message)
        return redirect(_safe_next(request, exc.next_url))
    next_url = _safe_next(request, pending.next_url)
    account = ChannelAccount.objects.filter(code=pending.account, enabled=True).first()
    try:
        if account is None:
            raise OAuthRefused(_oauth_message())
        openid = backend_for(account).oauth_openid(request.GET.get("code", ""))
    except (ChannelError, OAuthRefused):
        _mark_failed(request.session, pending.account)
        messages.error(request, _oauth_message())
        return redirect(next_url)
    WechatPayer.objects.update_or_create(
        buyer=request.user, app_id=account.app_id, defaults={"openid": openid}
    )
    return redirect(next_url)
