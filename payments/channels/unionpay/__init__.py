"""UnionPay online payment (银联全渠道 / ACP 5.1.0), gateway B2C consumption (CHANNELS.md §3).

Wire rules this package follows (``wire``, ``errors``, ``backend``, ``settlement``):

* Messages are ``application/x-www-form-urlencoded`` key/value maps; synchronous responses
  come back as a raw ``k=v&k=v`` string (values not URL-encoded, ``{…}`` values may contain
  ``&``) — §3.1.
* ``signMethod=01``: put ``certId`` in the map, drop empty values, sort by key, join ``k=v``
  with ``&``, take the **lowercase hex** SHA-256 of that string, then SHA256withRSA over the
  bytes of the hex string, base64 — §3.2. Responses and notifications carry the signer's
  certificate in ``signPubKeyCert``; it must chain to the configured UnionPay root/middle CA
  and name 中国银联股份有限公司 as its owner before its key is trusted (official SDK
  ``CertUtil.verifyCertificate``).
* Front-end consumption is a browser form post to ``frontTransReq.do`` (no synchronous
  answer); the result arrives as a backUrl POST, acknowledged with HTTP 200 — §3.3.
* Status query (txnType 00) identifies the order by ``orderId`` + ``txnTime``; ``respCode``
  / ``origRespCode`` 03/04/05 mean "still unknown, ask again" — §3.3.
* File transfer (txnType 76, fileType 00) returns ``fileContent`` = base64(zlib(ZIP)); the ZIP
  holds the fixed-width ZM detail file and the GBK RD summary — §3.4.

The attempt reference (``channel_trade_no``) is the order's ``txnTime`` until UnionPay
assigns a ``queryId`` (notification, query, file): ACP needs ``orderId`` + ``txnTime`` to
query an order and the ``queryId`` (``origQryId``) to refund it.
"""

from payments.channels.unionpay.backend import UnionPayBackend

__all__ = ["UnionPayBackend"]
