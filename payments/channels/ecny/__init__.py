"""e-CNY (数字人民币) — and the wallets served next to it — through an acquiring bank's
aggregated-payment API (CHANNELS.md §5).

There is no public PBOC merchant API: merchants accept e-CNY through an operating institution
or acceptance-service institution, whose "polypay"-style API signs with SM2/SM3 (国密). The
wire format is therefore acquirer-specific; this package implements the documented protocol
in ``docs/channels/ecny.md`` and is the adapter to replace or extend for a real bank.

The same API serves the bank's other aggregated wallets: one order call with a pay type
(``payMethod``: ``ECNY``, ``ALIPAY``, ``WECHAT``, ``UNIONPAY``) answers that wallet's QR /
deeplink payload, so one backend serves the methods ``ecny``, ``alipay``, ``wechatpay`` and
``unionpay`` — a bank aggregator account is a second provider for a method next to the
direct channel. Which of them an account serves is its configuration (``methods``) and the
bank's contract (``PAY_METHOD_NOT_OPEN`` otherwise).

Protocol summary (full spec in the doc):

* JSON envelope over HTTPS POST: ``version``, ``encoding``, ``signMethod`` ("SM2"),
  ``merId``, ``appId``, ``reqTime`` / ``respTime`` / ``notifyTime`` (Beijing
  ``yyyyMMddHHmmss``), ``nonce``, ``bizContent`` (a JSON *string*), ``sign``.
* String-to-sign: every top-level member except ``sign`` whose value is a non-empty string,
  sorted by key, ``k=v`` joined with ``&``, UTF-8. Signature: SM2 with the SM3 digest of
  Z‖M (GB/T 32918.2, default user id ``1234567812345678``), ASN.1 DER (r, s), base64.
* Amounts in the API are integer fen strings (``txnAmt``); the reconciliation file is in
  yuan with two decimals.
"""

from payments.channels.ecny.backend import ECNYBackend

__all__ = ["ECNYBackend"]
