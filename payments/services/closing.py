"""Closing an unpaid trade at its channel, so it cannot be paid any more."""

from __future__ import annotations

import logging

from payments.accounts import backend_for
from payments.channels.base import ChannelError
from payments.models import Attempt
from payments.services import transitions
from payments.states import ATTEMPT_OPEN

log = logging.getLogger(__name__)


def close_at_channel(attempt: Attempt, backend=None) -> bool:
    """Close an unpaid trade at its channel; True only when the channel really closed it. A
    channel that cannot close (UnionPay, PayPal: the trade lapses on its own) never counts as
    closed, so nothing treats its trade as unpayable before it has lapsed."""
    backend = backend or backend_for(attempt.account)
    if not type(backend).supports_close:
        return False
    try:
        backend.close(out_trade_no=attempt.out_trade_no, channel_trade_no=attempt.channel_trade_no)
    except ChannelError as exc:
        log.info(
            "could not close %s: %s (the query task will settle it)", attempt.out_trade_no, exc
        )
        return False
    return True


def close_quietly(attempt_id: int) -> None:
    """Close an attempt that is still open (after its payment succeeded elsewhere, or the
    buyer switched methods); a channel that cannot close leaves it to the query task."""
    attempt = Attempt.objects.select_related("account").get(pk=attempt_id)
    if attempt.status in ATTEMPT_OPEN and close_at_channel(attempt):
        transitions.attempt_apply(attempt, "close")
