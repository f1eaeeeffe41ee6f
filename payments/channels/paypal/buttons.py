"""PayPal's JS SDK buttons on the checkout page: where the SDK script is loaded from, and
the in-page widget the order page renders them from (no secrets: the client id is public).

The page loads ``https://www.paypal.com/sdk/js?client-id=…&currency=…&intent=capture`` and
calls ``paypal.Buttons({createOrder, onApprove, onCancel, onError}).render(…)``; createOrder
hands the SDK the id of the order :meth:`PayPalBackend.create` opened, onApprove asks the
platform to capture it (:meth:`PayPalBackend.approval_capture`). A simulator named by the
account's ``base_url`` serves a stand-in SDK at ``<base_url>/sdk/js`` with the same client
API, so the page code is the same in both (docs/channels/paypal.md).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

#: PayPal serves one SDK for live and sandbox REST apps: the client id decides which.
LIVE_SDK_URL = "https://www.paypal.com/sdk/js"
#: Venmo (US only) is switched off, so the page's Content-Security-Policy needs no venmo.com.
DISABLED_FUNDING = "venmo"


def sdk_url(base_url: str, *, client_id: str, currency: str) -> str:
    """The SDK script for the account's REST app: PayPal's own for a ``*.paypal.com`` API
    host, the simulator's stand-in (``<base_url>/sdk/js``) otherwise."""
    host = (urlsplit(base_url).hostname or "").lower()
    base = LIVE_SDK_URL if host.endswith(".paypal.com") else base_url.rstrip("/") + "/sdk/js"
    query = {
        "client-id": client_id,
        "currency": currency,
        "intent": "capture",
        "disable-funding": DISABLED_FUNDING,
    }
    return f"{base}?{urlencode(query)}"


def widget(*, sdk_url: str, order_id: str) -> dict[str, Any]:
    """What the order page needs to render the buttons for one PayPal order. ``fallback``
    tells the page that without JavaScript the buyer goes to the action's ``url`` (PayPal's
    approve page), as before the buttons existed."""
    return {"sdk": "paypal", "sdk_url": sdk_url, "order_id": order_id, "fallback": "redirect"}
