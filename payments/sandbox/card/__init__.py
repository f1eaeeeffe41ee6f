"""A local Stripe-style card acquirer that speaks CHANNELS.md §4.4–4.6 from the acquirer's side.

API endpoints (mounted under ``/sandbox/card/``; form-encoded, ``Authorization: Bearer sk_…``):

* ``v1/payment_intents`` (create, ``Idempotency-Key``), ``…/search`` (``metadata['k']:'v'``),
  ``…/<id>`` (GET, ``expand[]=latest_charge``), ``…/<id>/cancel``.
* ``v1/refunds`` (create — partial, ``Idempotency-Key`` — and list by ``payment_intent`` or
  ``charge``), ``v1/refunds/<id>``.
* ``v1/reporting/report_runs`` (create; runs finish at once), ``…/<id>``, and
  ``v1/files/<id>/contents`` — the report CSV.
* ``v1/webhook_endpoints/<id>`` — GET, and POST ``url=`` to send events to another notify URL
  (default ``<SITE_URL>/payments/notify/card/``).

Buyer pages (the acquirer's hosted card page, the action URL of the "widget" action):

* ``elements/<intent id>/?client_secret=…`` — card number / expiry / CVC and the
  ``sandbox-approve`` / ``sandbox-decline`` controls. Stripe's test cards pick outcomes:
  4242 4242 4242 4242 pays, 4000 0000 0000 9995 insufficient_funds, …0002 generic_decline,
  …0069 expired_card, …0127 incorrect_cvc, …0119 processing_error, 4100 0000 0000 0019
  fraudulent, 4000 0000 0000 3220 always asks for 3-D Secure.
* ``3ds/<intent id>/`` — the 3-D Secure challenge. Amounts of 1000.00 or more (in the
  currency's major unit) always step up: the intent goes to ``requires_action`` with
  ``next_action.redirect_to_url`` pointing here.

Sandbox choices (documented in docs/channels/card.md): fee 0.6 % of each charge (half-up to the
currency's smallest unit), not returned on refunds (as Stripe); charges are available T+2;
webhooks (``payment_intent.succeeded`` / ``payment_intent.payment_failed`` /
``charge.refunded``) are retried with exponential back-off over 3 days and every try is signed
afresh (a new ``t=``); a payer who walks away ("timeout") leaves the intent in
``requires_payment_method`` until the merchant cancels it.

The package: ``protocol`` (identifiers, units, errors, forms, keys, signed webhooks),
``state`` (objects as the API renders them, the provider hooks), ``gateway`` (the API
endpoints and the URLs), ``report`` (the Reporting API) and ``pages`` (the card form and
3-D Secure).
"""

from payments.sandbox.card.gateway import urlpatterns
from payments.sandbox.card.state import CardSandbox

__all__ = ["CardSandbox", "urlpatterns"]
