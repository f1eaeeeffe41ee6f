"""WeChat Pay APIv3 (微信支付) for a direct merchant — CHANNELS.md §2.

What this module speaks, and why it looks the way it does:

* Every request carries ``Authorization: WECHATPAY2-SHA256-RSA2048 mchid=…,nonce_str=…,
  timestamp=…,serial_no=…,signature=…`` where the signature is SHA256withRSA with the
  merchant's API key over ``METHOD\\nCANONICAL_URL\\nTIMESTAMP\\nNONCE\\nBODY\\n`` and the
  canonical URL is the raw path plus query (§2.1).
* Answers and notifications are signed by the platform (``Wechatpay-Timestamp/-Nonce/
  -Signature/-Serial``) over ``TIMESTAMP\\nNONCE\\nBODY\\n``; a timestamp 5 minutes or more
  away from now is refused (§2.2). The platform key is the "微信支付公钥" (``PUB_KEY_ID_…``)
  or a platform certificate, chosen by ``Wechatpay-Serial``.
* Notification resources are AES-256-GCM encrypted with the 32-byte APIv3 key (§2.3); the
  reply is 204 with no body on success, 4xx with ``{"code":"FAIL","message":…}`` otherwise.
* Cashier: Native pay (``code_url``, a QR rendered inline) on desktop and unknown devices, H5
  (``h5_url``, a redirect) on phones when the buyer's IP is known (H5 requires it).
* The trade bill (§2.5, §2.6) is requested gzipped, its SHA-1 (over the uncompressed text)
  checked, and :class:`WechatBill` streams it: header line, backtick-prefixed rows, two summary
  lines; BOM or not, CRLF or LF, gzip or plain, ALL/SUCCESS/REFUND (and the legacy) layouts.

The package: ``wire`` (signatures, encryption, states), ``errors`` (the code table),
``settlement`` (the bill parser) and ``backend`` (the flows). The backend never knows whether
``base_url`` points at api.mch.weixin.qq.com or at the sandbox.
"""

from payments.channels.wechatpay.backend import WechatPayBackend

__all__ = ["WechatPayBackend"]
