"""epay / 易支付 aggregators (聚合支付): niche methods such as QQ Wallet, and a second
provider for Alipay and WeChat Pay, through one merchant id (pid) and its MD5 key (v1) or
RSA key pair (v2), as the account chooses.

The package: ``wire`` (MD5 and SHA256withRSA signing, type names, amounts), ``errors``
(the code table), ``settlement`` (the daily export parser) and ``backend`` (the flows)."""

from payments.channels.aggregator.backend import AggregatorBackend

__all__ = ["AggregatorBackend"]
