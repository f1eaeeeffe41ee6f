"""PayPal: Orders v2 checkout, signed webhooks and the STL settlement report.

Wire protocol (CHANNELS.md §4.1–4.3):

* OAuth2 client credentials (``POST /v1/oauth2/token``, HTTP Basic ``client_id:client_secret``);
  the bearer token is cached per account until shortly before ``expires_in`` runs out.
* ``POST /v2/checkout/orders`` with ``intent=CAPTURE``; ``custom_id`` and ``invoice_id`` carry
  our ``out_trade_no``; the buyer is redirected to the order's ``approve`` link.
* PayPal only *approves* an order; the merchant must capture it. We capture in two places,
  both idempotent through the ``PayPal-Request-Id`` header ``capture-<order id>``:
  ``parse_notification`` for ``CHECKOUT.ORDER.APPROVED`` captures synchronously and reports the
  capture's outcome, and ``query`` captures an order it finds ``APPROVED`` (so a lost webhook
  cannot leave an approved order uncaptured). ``PAYMENT.CAPTURE.COMPLETED`` maps to succeeded
  again (the platform applies notices idempotently), ``…DENIED``/``…DECLINED`` to failed,
  ``PAYMENT.CAPTURE.REFUNDED`` to a refund notice.
* Webhooks are verified offline (CRC32 scheme of PayPal's SDK, §4.2): the string
  ``transmission_id|transmission_time|webhook_id|crc32(body)`` must verify with
  SHA256withRSA under the certificate at ``PAYPAL-CERT-URL``. The certificate is fetched only
  from the account's own ``base_url`` or an https ``*.paypal.com`` host, must chain to the CA
  certificates configured in ``webhook_ca_pem``, be in its validity period and carry a common
  name ending in ``.paypal.com``.
* Settlement: the STL report (§4.3), CSV records RH/FH/SH/CH/SB/SF/SC/RF/RC/FF with unsigned
  amounts in minor units and DR/CR direction columns. See :class:`StlFile`. Live PayPal
  publishes it only by SFTP; accounts with ``sftp_*`` credentials fetch it there, the host key
  pinned (:mod:`payments.channels.paypal.sftp`).
"""

from payments.channels.paypal.backend import PayPalBackend

__all__ = ["PayPalBackend"]
