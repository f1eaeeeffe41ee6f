"""Simulated UnionPay ACP 5.1.0 gateway (CHANNELS.md §3), speaking the provider's side.

* ``gateway/api/frontTransReq.do`` — the buyer's browser posts the merchant's signed form;
  the signature is verified against the merchant certificate registered under its certId,
  then the buyer lands on the cashier page (approve / decline).
* ``gateway/api/backTransReq.do`` — refunds (txnType 04), partial allowed.
* ``gateway/api/queryTrans.do`` — status query (txnType 00) by orderId + txnTime.
* ``/`` (the mount point) — file transfer (txnType 76), standing in for the separate
  ``filedownload`` host; answers base64(zlib(ZIP)) with the ZM detail and RD summary.

Every answer and notification is signed SHA256withRSA(sha256hex) by the sandbox's own
"UnionPay" signing certificate, which chains sandbox root → middle CA (generated once with
``cryptography``) and carries 中国银联股份有限公司 in its CN as the real one does.

Sandbox policies (the real ones are not published): notification retries after 1, 2, 4, 8,
16, 32, 60 and 120 minutes; a fixed fee of 0.60 % per payment (ROUND_HALF_UP to the fen, as
UnionPay's own sample file rounds), the same rate returned on refunds; the file for day D
holds payments paid and refunds made on Beijing calendar day D (real UnionPay cuts the
clearing day at 23:00).
"""

from payments.sandbox.unionpay.gateway import UnionPaySandbox

__all__ = ["UnionPaySandbox"]
