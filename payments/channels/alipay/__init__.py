"""Alipay open platform (支付宝开放平台) with RSA2 keys — CHANNELS.md §1.

What this module speaks, and why it looks the way it does:

* Requests are the gateway's form parameters (``app_id, method, charset, sign_type, timestamp,
  version, biz_content`` …) signed with the merchant's application private key: every non-empty
  parameter except ``sign`` (``sign_type`` included), sorted by key, joined as ``k=v`` with
  ``&`` and NOT URL-encoded, SHA256withRSA, base64 (§1.2).
* Synchronous answers are verified over the exact raw text of the ``*_response`` object, never
  a re-serialisation (§1.3).
* Notifications are form posts verified with ``sign`` and ``sign_type`` removed (§1.4); the
  reply is the literal ``success`` (or ``fail``).
* Which cashier: ``alipay.trade.precreate`` (a QR the checkout renders inline) on desktop,
  ``alipay.trade.wap.pay`` (a redirect into the Alipay app/H5 cashier) on phones and
  ``alipay.trade.page.pay`` (a redirect to the desktop cashier) when the device is unknown.
  For the two redirect flows the backend only builds the signed gateway URL; Alipay opens the
  trade when the buyer's browser arrives there.
* The daily trade bill (§1.7) is a ZIP of GBK CSV files; :class:`AlipayBill` streams its
  业务明细 file and checks the footer totals (and, inside the ZIP, the 汇总 file's fees).

The package: ``wire`` (signing, answers, amounts and times), ``errors`` (the code table),
``settlement`` (the bill parser) and ``backend`` (the flows). The backend never knows whether
``base_url`` points at Alipay or at the local sandbox.
"""

from payments.channels.alipay.backend import AlipayBackend

__all__ = ["AlipayBackend"]
