"""The order page's WeChat pieces: the OAuth step that lets WeChat Pay open inside WeChat's
browser, and the stand-in ``WeixinJSBridge`` script in sandbox mode (inside real WeChat the
app injects the bridge itself)."""

from django import template
from django.conf import settings
from django.utils.html import format_html

from payments.wechat_oauth import oauth_start_url

register = template.Library()

SANDBOX_BRIDGE_PATH = "/sandbox/wechatpay/jsapi/bridge.js"


@register.inclusion_tag("payments/_wechat_oauth.html", takes_context=True)
def wechat_oauth_step(context, ref, next_url):
    """A link through WeChat's silent OAuth, followed by checkout.js at once (by hand after
    a failure in this session); nothing outside WeChat or once the openid is known."""
    request = context.get("request")
    step = oauth_start_url(request, ref=str(ref), next_url=next_url) if request else None
    return {"step": step}


@register.simple_tag
def wechat_bridge_script():
    if not settings.PAYMENTS_SANDBOX:
        return ""
    return format_html(
        '<script src="{}" defer></script>', settings.SANDBOX_URL + SANDBOX_BRIDGE_PATH
    )
