"""From a configured ChannelAccount row to a ready backend."""

from payments.channels.base import AccountConfig, ChannelBackend
from payments.channels.registry import backend_class
from payments.models import ChannelAccount


def config_for(account: ChannelAccount) -> AccountConfig:
    return AccountConfig(
        code=account.code,
        backend=account.backend,
        base_url=account.base_url,
        merchant_id=account.merchant_id,
        app_id=account.app_id,
        currency=account.currency,
        credentials=account.credentials,
        notify_url=account.notify_url(),
    )


def backend_for(account: ChannelAccount) -> ChannelBackend:
    return backend_class(account.backend)(config_for(account))
