"""Channel health kept in the database, and the two calls the payment service makes:
``route`` (which accounts to try, in order) and ``health_record`` (what happened).

The rules — scoring, exploration, circuit breaker — live in :mod:`payments.routing` and are
the same ones ``simulate_routing`` runs; this module only stores their state: one
``ChannelHealth`` row per account (``state`` JSON plus the ``breaker``/``opened_at``
columns staff and checkout read) and one ``BreakerEvent`` per breaker transition.
docs/routing.md describes the model.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.db.models import Q, Sum
from django.dispatch import Signal
from django.utils import timezone

from config.prepared import PreparedRead
from payments.channels.registry import backend_class
from payments.models import (
    Attempt,
    BreakerEvent,
    ChannelAccount,
    ChannelHealth,
    Method,
    Notification,
)
from payments.routing import (
    CENT,
    OPEN,
    AccountHealth,
    Breaker,
    CandidateAccount,
    Change,
    ObservedOutcome,
    Outcome,
    Router,
    RoutingConfig,
    RoutingDecision,
    apply_outcomes,
)
from payments.states import ATTEMPT_OPEN, AttemptStatus

log = logging.getLogger(__name__)


# Every routing decision and every outcome reads these: compiled once per connection.
_ALL_HEALTH = PreparedRead(lambda: ChannelHealth.objects.values_list("account__code", "state"))
_HEALTH_LOCKED = PreparedRead(
    lambda code: ChannelHealth.objects.select_for_update(of=("self",)).filter(account__code=code)[
        :1
    ],
    code=str,
)


class DatabaseHealthStore:
    """:class:`payments.routing.HealthStore` over ``ChannelHealth`` rows.

    Reads are plain; every update locks the account's row (``select_for_update``) so
    concurrent outcomes of the same account are folded in one after the other, never lost.
    """

    def load(self, codes: Sequence[str]) -> Mapping[str, AccountHealth]:
        wanted = set(codes)  # a handful of accounts: all rows, one compiled statement
        return {
            code: AccountHealth.from_json(state)
            for code, state in _ALL_HEALTH.all()
            if code in wanted
        }

    def update(self, code: str, change: Callable[[AccountHealth], Change]) -> AccountHealth:
        """Inside a transaction the update joins it (a notification's outcome is then counted
        exactly when its attempt changes); on its own it is one short transaction."""
        joined = connection.in_atomic_block
        with transaction.atomic(savepoint=False):
            if not joined and connection.vendor == "postgresql":
                # Health is advisory: losing the last few outcomes in a crash is harmless, so
                # this hot row's own commits need not wait for the WAL flush.
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL synchronous_commit TO OFF")
            # Lock only the health row (``of``): a join lock on the account row would make every
            # request touching the account wait for this one.
            row = _HEALTH_LOCKED.first(code=code)
            if row is None:
                account_id = ChannelAccount.objects.values_list("pk", flat=True).get(code=code)
                row, _ = ChannelHealth.objects.select_for_update().get_or_create(
                    account_id=account_id
                )
            state, transitions = change(AccountHealth.from_json(row.state))
            row.state = state.to_json()
            row.breaker = state.breaker
            row.opened_at = (
                dt.datetime.fromtimestamp(state.opened_at, tz=dt.UTC)
                if state.opened_at is not None
                else None
            )
            row.save(update_fields=["state", "breaker", "opened_at", "updated_at"])
            for transition in transitions:
                BreakerEvent.objects.create(
                    account_id=row.account_id,
                    from_state=transition.from_state,
                    to_state=transition.to_state,
                    reason=transition.reason[:255],
                )
                log.log(
                    logging.WARNING if transition.to_state == OPEN else logging.INFO,
                    "channel %s breaker %s -> %s: %s",
                    code,
                    transition.from_state,
                    transition.to_state,
                    transition.reason,
                )
        return state


def routing_config() -> RoutingConfig:
    """The defaults of RoutingConfig, overridden by the optional ``PAYMENTS_ROUTING`` dict."""
    return RoutingConfig(**getattr(settings, "PAYMENTS_ROUTING", {}))


def router() -> Router:
    return Router(DatabaseHealthStore(), routing_config())


def candidate_from(account: ChannelAccount) -> CandidateAccount:
    """The routing view of a configured account."""
    return CandidateAccount(
        code=account.code,
        methods=frozenset(account.methods or ()),
        enabled=account.enabled,
        fee_percent=account.fee_percent,
        fee_fixed=account.fee_fixed,
        min_amount=account.min_amount,
        max_amount=account.max_amount,
        daily_cap=account.daily_cap,
        currency=account.currency,
        weight=account.weight,
    )


def today_volume(codes: Iterable[str]) -> dict[str, Decimal]:
    """Today's (local day) succeeded + still-open attempt volume per account code: what
    counts against a daily cap."""
    start = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    rows = (
        Attempt.objects.filter(account__code__in=list(codes), created_at__gte=start)
        .filter(Q(status=AttemptStatus.SUCCEEDED) | Q(status__in=ATTEMPT_OPEN))
        .values_list("account__code")
        .annotate(total=Sum("amount"))
    )
    return {code: Decimal(total or 0).quantize(CENT) for code, total in rows}


#: in-app browser → the wallet that is its own (and that it lets open only its own way)
IN_APP_WALLETS = {"wechat": Method.WECHATPAY}


def pays_there(backend: str, method: str, in_app: str) -> bool:
    """Whether an account of ``backend`` can take ``method`` from inside ``in_app``."""
    if not in_app or IN_APP_WALLETS.get(in_app) != method:
        return True
    try:
        return in_app in backend_class(backend).pays_inside_apps
    except LookupError:
        return False


def route(
    method: str,
    amount: Decimal,
    currency: str,
    *,
    exclude_codes: Iterable[str] = (),
    day_volume: Mapping[str, Decimal] | None = None,
    rng: random.Random | None = None,
    charge_currency: str = "",
    in_app: str = "",
    enabled: Iterable[ChannelAccount] | None = None,
) -> RoutingDecision:
    """Rank the enabled accounts serving ``method`` for one attempt.

    ``charge_currency``: the buyer pays in it, so only accounts that can charge it compete.

    ``exclude_codes``: accounts this payment already tried. ``in_app``: the in-app browser
    the buyer pays from (payments.client): inside it, the app's own wallet is routed only
    to backends that can open it there (``ChannelBackend.pays_inside_apps``) — a bank's QR
    for WeChat Pay cannot be paid inside WeChat. ``day_volume``: today's
    succeeded + pending volume per account code; when omitted it is read from the attempts
    of the accounts that have a daily cap. ``rng`` makes the decision reproducible (tests);
    real traffic leaves it out. ``enabled``: the enabled accounts, when the caller has read
    them already (a payment failing over routes again with the same read).
    """
    if enabled is None:
        enabled = ChannelAccount.objects.filter(enabled=True).order_by("code")
    accounts = [
        candidate_from(a)
        for a in enabled
        if method in (a.methods or ())
        and a.can_charge(charge_currency or currency)
        and pays_there(a.backend, method, in_app)
    ]
    if day_volume is None:
        capped = [a.code for a in accounts if a.daily_cap is not None]
        day_volume = today_volume(capped) if capped else {}
    return router().rank(
        accounts,
        method=method,
        amount=amount,
        currency=currency,
        now=timezone.now(),
        rng=rng or random.Random(),
        exclude=tuple(exclude_codes),
        day_volume=day_volume,
    )


def health_record(
    account: ChannelAccount | str,
    method: str,
    amount: Decimal,
    outcome: Outcome | str,
    *,
    delay_seconds: float | None = None,
) -> AccountHealth | None:
    """Feed one real outcome of an attempt back into its account's health.

    ``outcome``: ``succeeded``; ``declined`` (the buyer's side — error codes whose
    ``counts_against_channel`` is false); ``failed`` (the channel's fault); ``error``;
    ``timeout``. ``delay_seconds``: how long the channel took to notify.

    Called inside a transaction (a notification being applied), the outcome commits or rolls
    back with it, and holds the account's health row until then — so call it last there. On
    its own, health is advisory: a database failure is logged and swallowed rather than
    failing the payment.
    """
    code = account if isinstance(account, str) else account.code
    try:
        return router().record_outcome(
            code, method, amount, outcome, timezone.now(), delay=delay_seconds
        )
    except DatabaseError:
        if connection.in_atomic_block:
            raise
        log.exception("could not record %s outcome for channel %s", outcome, code)
        return None


# Outcomes that arrive by notification are not written to the account's health row by the
# request that applies them: every notification of an account would queue for that one row.
# The apply transaction marks the notification with its outcome instead (no extra statement),
# and a worker folds the marked rows into health in order of arrival, about a second later —
# once per second however many notices come in. A beat task folds whatever a lost task left.

FOLD_DUE_KEY = "payments:health-fold-due"
FOLD_DELAY_SECONDS = 1


def pending_outcomes():
    return Notification.objects.filter(health_folded_at__isnull=True).exclude(health_outcome="")


def health_fold(*, batch: int = 5000) -> int:
    """Fold notified outcomes into their accounts' health, oldest first; returns how many.
    Each account's batch is folded and marked in one transaction under its health row's lock,
    so concurrent folds never count an outcome twice."""
    config = routing_config()
    store = DatabaseHealthStore()
    folded = 0
    codes = set(pending_outcomes().order_by().values_list("account__code", flat=True).distinct())
    for code in sorted(codes):
        while True:
            rows: list[tuple] = []

            def change(state: AccountHealth, code=code, rows=rows) -> Change:
                # Read under the lock: a fold that ran meanwhile has marked its rows.
                rows.extend(
                    pending_outcomes()
                    .filter(account__code=code)
                    .order_by("pk")
                    .values_list(
                        "pk",
                        "health_outcome",
                        "received_at",
                        "attempt__method",
                        "attempt__amount",
                        "attempt__created_at",
                    )[:batch]
                )
                return apply_outcomes(state, (_observed(*row[1:]) for row in rows), config)

            with transaction.atomic():
                store.update(code, change)
                Notification.objects.filter(pk__in=[row[0] for row in rows]).update(
                    health_folded_at=timezone.now()
                )
            folded += len(rows)
            if len(rows) < batch:
                break
    return folded


def _observed(
    outcome: str, received_at: dt.datetime, method: str, amount: Decimal, created_at: dt.datetime
) -> ObservedOutcome:
    delay = (received_at - created_at).total_seconds() if outcome == "succeeded" else None
    return ObservedOutcome(
        method=method, amount=amount, outcome=outcome, at=received_at.timestamp(), delay=delay
    )


#: sent when a fold of notified outcomes is due; ``payments.tasks`` queues the worker's fold,
#: so this store and the tasks that run it do not import each other
fold_due = Signal()


def fold_soon() -> None:
    """Have a worker fold the notified outcomes in about a second (called after the caller's
    commit). One task per window however many notifications arrive: the key that marks a
    fold as queued lives exactly as long as the fold's countdown, so a notice that finds it
    committed before that fold starts, and is in it. Caches that are not shared (local
    memory) only mean one fold per process and window."""
    if not cache.add(FOLD_DUE_KEY, True, timeout=FOLD_DELAY_SECONDS):
        return
    try:
        fold_due.send(sender=ChannelHealth, countdown=FOLD_DELAY_SECONDS)
    except Exception:  # the broker is down: the beat's fold picks the outcomes up later
        cache.delete(FOLD_DUE_KEY)
        log.exception("could not queue the channel health fold")


def breaker_states(codes: Iterable[str]) -> dict[str, Breaker]:
    """The breaker each account is effectively in now (an open breaker whose cool-down has
    passed is half-open even before a probe has written so); accounts never seen are closed."""
    codes = list(codes)
    now = timezone.now().timestamp()
    states = DatabaseHealthStore().load(codes)
    return {code: states[code].breaker_at(now) if code in states else "closed" for code in codes}


def health_summary(account: ChannelAccount) -> dict[str, Any]:
    """What staff see about one account's health: effective breaker, smoothed success per
    method and amount band, outcome counts, notification delay."""
    state = DatabaseHealthStore().load([account.code]).get(account.code, AccountHealth())
    return state.summary(timezone.now().timestamp(), routing_config())
