"""Card acquiring through a Stripe-style API: PaymentIntents, ``Stripe-Signature`` webhooks and
the Reporting API's itemized balance-change report.

Wire protocol (CHANNELS.md §4.4–4.6):

* Form-encoded calls with ``Authorization: Bearer <secret key>``; amounts in the currency's
  smallest unit (zero-decimal currencies such as JPY/KRW have none); ``Idempotency-Key`` is
  ``out_trade_no`` for ``POST /v1/payment_intents`` and ``refund_no`` for ``POST /v1/refunds``,
  so both are safe to re-send.
* The buyer pays on the acquirer's card page (action type "widget"): its URL comes from the
  account's ``hosted_page_url`` template and the widget params are what a card element needs —
  ``publishable_key``, the PaymentIntent's ``client_secret`` and id — never the secret key.
  Instalments: the intent is created with
  ``payment_method_options[card][installments][enabled]=true``; the chosen plan
  (``{count, interval: month, type: fixed_count}``) travels with the widget params and the page
  URL because Stripe accepts ``installments[plan]`` only when the intent is confirmed.
* Webhooks carry ``Stripe-Signature: t=…,v1=…``: HMAC-SHA256 over ``"{t}.{raw body}"`` with the
  endpoint secret (``whsec_…``); any matching ``v1`` is accepted (constant-time compare) and
  ``t`` must lie within 300 s of now (stripe-python ``_webhook.py``).
* Settlement: a report run of ``balance_change_from_activity.itemized.3`` with an explicit
  column list (``REPORT_COLUMNS``), polled until it succeeds, then its CSV file downloaded with
  the secret key. Report amounts are in MAJOR units. See :class:`StripeReport`.

The package: ``wire`` (units, webhook signatures, error answers, states), ``errors`` (the
code table), ``settlement`` (the report parser) and ``backend`` (the flows).
"""

from payments.channels.card.backend import CardBackend

__all__ = ["CardBackend"]
