"""A local epay / 易支付 aggregator (docs/channels/aggregator.md), mounted under
``/sandbox/aggregator/``: ``submit.php`` and ``mapi.php`` open trades on the shared cashier,
``api.php`` answers the order query, refunds and the daily export, and a paid trade is
notified by GET; ``v2`` serves the RSA-signed ``api/pay/*`` endpoints over the same trades
(``trades``). It signs with its own code (``protocol``), not the backend's."""

from payments.sandbox.aggregator.gateway import AggregatorSandbox, urlpatterns

__all__ = ["AggregatorSandbox", "urlpatterns"]
