"""Reads of the payment platform's books for staff pages and exports."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Q, QuerySet, Sum

from payments.ledger_labels import account_label
from payments.models import JournalEntry, LedgerAccount

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class TrialBalanceRow:
    account: LedgerAccount
    label: str
    opening: Decimal
    debit: Decimal
    credit: Decimal
    closing: Decimal


@dataclass(frozen=True)
class TrialBalance:
    since: dt.datetime
    until: dt.datetime
    rows: list[TrialBalanceRow] = field(default_factory=list)

    @property
    def total_debit(self) -> Decimal:
        return sum((r.debit for r in self.rows), ZERO)

    @property
    def total_credit(self) -> Decimal:
        return sum((r.credit for r in self.rows), ZERO)

    @property
    def total_opening(self) -> Decimal:
        return sum((r.opening for r in self.rows), ZERO)

    @property
    def total_closing(self) -> Decimal:
        return sum((r.closing for r in self.rows), ZERO)

    @property
    def balanced(self) -> bool:
        return self.total_debit == self.total_credit and self.total_closing == ZERO


def _cents(value) -> Decimal:
    return (value or ZERO).quantize(CENT)


def trial_balance(*, since: dt.datetime, until: dt.datetime) -> TrialBalance:
    """Every account that moved or holds money: balance before ``since``, debits and credits
    in ``[since, until)``, balance at ``until``. One query; the debit and credit totals are
    equal and the closing balances sum to zero because every entry balances."""
    before = Q(lines__entry__posted_at__lt=since)
    within = Q(lines__entry__posted_at__gte=since, lines__entry__posted_at__lt=until)
    accounts = (
        LedgerAccount.objects.select_related("owner")
        .annotate(
            _opening=Sum("lines__amount", filter=before),
            _debit=Sum("lines__amount", filter=within & Q(lines__amount__gt=0)),
            _credit=Sum("lines__amount", filter=within & Q(lines__amount__lt=0)),
        )
        .filter(Q(_opening__isnull=False) | Q(_debit__isnull=False) | Q(_credit__isnull=False))
        .order_by("kind", "code")
    )
    rows = []
    for acc in accounts:
        opening, debit, credit = _cents(acc._opening), _cents(acc._debit), -_cents(acc._credit)
        owner = acc.owner.get_username() if acc.owner_id else ""
        rows.append(
            TrialBalanceRow(
                account=acc,
                label=account_label(acc.code, owner),
                opening=opening,
                debit=debit,
                credit=credit,
                closing=opening + debit - credit,
            )
        )
    return TrialBalance(since=since, until=until, rows=rows)


def entries_for_reference(reference: str) -> QuerySet[JournalEntry]:
    """The journal entries a payment, order or payout caused (they carry its reference)."""
    return JournalEntry.objects.filter(reference=reference).order_by("posted_at", "pk")
