"""A local Alipay open-platform gateway that speaks CHANNELS.md §1 from Alipay's side.

Endpoints (mounted under ``/sandbox/alipay/``):

* ``gateway.do`` — every API method by its ``method`` parameter, GET or POST form. Requests are
  verified with the merchant's registered application public key (RSA2 over the sorted,
  unencoded ``k=v`` string, ``sign_type`` included); answers are ``{"<method>_response": {…},
  "sign": "…"}`` signed over the raw response object with the sandbox's Alipay key.
  ``alipay.trade.page.pay`` / ``wap.pay`` arrive from the buyer's browser and redirect to the
  cashier; ``alipay.trade.precreate``'s ``qr_code`` is the cashier URL.
* ``downloadBillFile.resource`` — the trade bill ZIP behind ``bill_download_url`` (valid 30 s).

Sandbox choices (documented in docs/channels/alipay.md): the service fee is a fixed 0.6 % of
each payment (rounded half-up to the fen), returned pro rata on refunds and written in 服务费
as a negative number on 交易 rows and a positive one on 退款 rows; bills are available for any
day up to today; a payer's decline closes the trade (``TRADE_CLOSED`` notification) except a
timeout, which leaves it waiting until ``time_expire``.

The package: ``protocol`` (errors, signatures, formats, identifiers), ``state`` (the provider
hooks and trade state), ``gateway`` (the API methods and the browser flows) and ``bill`` (the
trade bill export).
"""

from payments.sandbox.alipay.gateway import urlpatterns
from payments.sandbox.alipay.state import AlipaySandbox

__all__ = ["AlipaySandbox", "urlpatterns"]
