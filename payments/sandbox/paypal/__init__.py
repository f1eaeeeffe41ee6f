"""A local PayPal REST API that speaks CHANNELS.md §4.1–4.3 from PayPal's side.

Endpoints (mounted under ``/sandbox/paypal/``):

* ``v1/oauth2/token`` — client-credentials tokens (HTTP Basic ``client_id:client_secret``);
  tokens are HMAC-signed by the sandbox, name the merchant and live ``expires_in`` = 32400 s.
* ``v2/checkout/orders`` (create, idempotent by ``PayPal-Request-Id``; a second order with the
  same ``invoice_id`` is ``DUPLICATE_INVOICE_ID``), ``v2/checkout/orders/<id>`` (GET) and
  ``…/capture``; ``v2/payments/captures/<id>/refund`` (partial, idempotent by
  ``PayPal-Request-Id``).
* ``v1/notifications/webhooks/<webhook_id>`` — GET, and PATCH ``/url`` to point the merchant's
  webhook at another notify URL (default ``<SITE_URL>/payments/notify/paypal/``).
* ``v1/notifications/certs/<name>`` — the webhook signing certificate (PEM), the target of
  ``PAYPAL-CERT-URL``; it is issued by a sandbox CA whose certificate ``provision`` hands out as
  ``webhook_ca_pem``.
* ``sdk/js`` — a stand-in of PayPal's JS SDK (``paypal.Buttons``) and its approval window,
  ``sdk/orders/<id>`` and ``…/approve`` behind it (:mod:`.buttons`).
* ``ppreports/outgoing/STL-yyyymmdd.01.009.CSV`` — the day's settlement report. Live PayPal
  puts STL files on SFTP (reports.paypal.com, same directory); the sandbox serves them over
  HTTP with the bearer token.

Sandbox choices (documented in docs/channels/paypal.md): the approve link is the shared cashier;
"approve" makes the order APPROVED and sends ``CHECKOUT.ORDER.APPROVED``; a decline other than
"timeout" also approves (the payer chose a funding source) but the capture is then refused with
the decline's issue code (422), as PayPal does when the funding source fails; "timeout" leaves
the order unapproved and reports it VOIDED (expired). A capture sends
``PAYMENT.CAPTURE.COMPLETED``, a refund ``PAYMENT.CAPTURE.REFUNDED``. Fee: a fixed 0.6 % of
each capture, rounded half-up to the cent; refunds return the fee pro rata (cumulatively, so a
full refund returns exactly the original fee). Webhooks are retried 25 times over 3 days, each
try a new transmission (new id, time and signature). The STL day is the settings.TIME_ZONE day.
"""

from payments.sandbox.paypal.gateway import PayPalSandbox

__all__ = ["PayPalSandbox"]
