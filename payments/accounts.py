"""From a configured ChannelAccount row to a ready backend."""

import time

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

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


# The notification endpoint answers every channel all day, while an account's row changes a
# few times a year: each process keeps the account and its ready backend (keys decoded once)
# for PAYMENTS_NOTIFY_ACCOUNT_SECONDS. Saving or deleting an account drops this process's
# copy at once; other processes see the change within that time.
_notify_accounts: dict[str, tuple[float, ChannelAccount, ChannelBackend]] = {}


def notification_account(code: str) -> tuple[ChannelAccount, ChannelBackend] | tuple[None, None]:
    """The account a notification URL names and the backend that verifies it; (None, None)
    for a code no account has (never cached, so a new account is served at once)."""
    now = time.monotonic()
    cached = _notify_accounts.get(code)
    if cached is not None and cached[0] > now:
        return cached[1], cached[2]
    account = ChannelAccount.objects.filter(code=code).first()
    if account is None:
        _notify_accounts.pop(code, None)
        return None, None
    backend = backend_for(account)
    ttl = settings.PAYMENTS_NOTIFY_ACCOUNT_SECONDS
    if ttl > 0:
        _notify_accounts[code] = (now + ttl, account, backend)
    return account, backend


@receiver([post_save, post_delete], sender=ChannelAccount, dispatch_uid="payments.accounts.forget")
def forget_notification_accounts(**kwargs) -> None:
    _notify_accounts.clear()
