"""A local WeChat Pay APIv3 that speaks CHANNELS.md §2 from WeChat's side.

Endpoints (mounted under ``/sandbox/wechatpay/``, the same paths as api.mch.weixin.qq.com):
``POST v3/pay/transactions/native|h5``, ``GET v3/pay/transactions/out-trade-no/{no}?mchid=``,
``GET v3/pay/transactions/id/{id}?mchid=``, ``POST v3/pay/transactions/out-trade-no/{no}/close``,
``POST v3/refund/domestic/refunds``, ``GET v3/refund/domestic/refunds/{out_refund_no}``,
``GET v3/bill/tradebill`` and the bill file behind its ``download_url``; for paying inside
WeChat (``jsapi``) ``POST v3/pay/transactions/jsapi``, the OAuth pages
``connect/oauth2/authorize`` and ``sns/oauth2/access_token``, and the stand-in
``WeixinJSBridge`` (``jsapi/bridge.js``, which confirms at ``jsapi/pay``).

Every request must carry a valid ``WECHATPAY2-SHA256-RSA2048`` Authorization made with the
merchant's registered API key (serial and a timestamp within 5 minutes); every answer and
notification is signed with the sandbox platform key ("微信支付公钥" mode, ``PUB_KEY_ID_…``);
notification resources are AES-256-GCM encrypted with the merchant's APIv3 key.

Sandbox choices (documented in docs/channels/wechatpay.md): a fixed 0.6 % fee per payment,
rounded half-up to the fen (written with 5 decimals, negative on refund rows); new refunds
answer PROCESSING and complete at once (query → SUCCESS, REFUND.SUCCESS notification); bills
exist for any day up to today that has trades; a payer's decline makes the order PAYERROR
(no notification, as WeChat only notifies successes), a timeout leaves it USERPAYING until
``time_expire``.

The package: ``protocol`` (errors, signatures, encryption, formats, identifiers, the
Authorization check), ``state`` (the provider hooks, orders and refunds), ``gateway`` (the API
endpoints), ``jsapi`` (OAuth, JSAPI orders and the bridge) and ``bill`` (the trade bill
export).
"""

from payments.sandbox.wechatpay import gateway, jsapi
from payments.sandbox.wechatpay.state import WechatPaySandbox

urlpatterns = [*gateway.urlpatterns, *jsapi.urlpatterns]

__all__ = ["WechatPaySandbox", "urlpatterns"]
