"""Double-entry journal (DESIGN.md §4): every money movement is one balanced, immutable entry.

Sign convention: debit positive, credit negative; the lines of an entry sum to zero, so the
whole journal sums to zero. Balances are sums of lines, never stored fields. Liabilities and
income therefore have negative natural balances; ``balance(..., natural=True)`` flips them so
a seller's pending money reads as a positive amount.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from config.prepared import PreparedRead
from payments.models import JournalEntry, JournalLine, LedgerAccount

CENT = Decimal("0.01")
Kind = LedgerAccount.Kind

CLEARING = "payments:clearing"  # money received for something not yet handed over
REFUNDS_IN_FLIGHT = "payments:refunds-in-flight"  # owed back to buyers: sent, not yet confirmed
PLATFORM_REVENUE = "platform:revenue"
WRITE_OFFS = "platform:write-offs"
#: what converting foreign-currency money back into CNY gained (credit) or lost (debit)
FX_DIFFERENCES = "platform:fx-differences"
#: disputed amounts a channel took back from our balance while a dispute is open (an asset:
#: they come back if it is won)
CHARGEBACKS = "payments:chargebacks"
#: disputes lost: what the buyers got back through their bank or PayPal, less what the shop
#: recovered from the seller (an expense)
CHARGEBACK_LOSSES = "platform:chargeback-losses"


@dataclass(frozen=True)
class Foreign:
    """What a CNY line was in the currency the buyer was charged in, and the rate."""

    amount: Decimal
    currency: str
    rate: Decimal


def channel_receivable(account_code: str) -> str:
    return f"channel:{account_code}:receivable"


def channel_fees(account_code: str) -> str:
    return f"channel:{account_code}:fees"


@dataclass(frozen=True)
class Party:
    """A family of accounts each user owns, coded ``<prefix>:<user id>:<name>``; its
    ``assets`` name the accounts that are assets (the rest are what the platform owes the
    user). The platform's own is the buyer's wallet; an app adds its own with
    :func:`party_register` (the shop's sellers, in ``marketplace/postings.py``)."""

    prefix: str
    assets: frozenset[str] = frozenset()

    def account(self, user_id: int, name: str) -> str:
        return f"{self.prefix}:{user_id}:{name}"


_PARTIES: dict[str, Party] = {}


def party_register(party: Party) -> Party:
    _PARTIES[party.prefix] = party
    return party


BUYER = party_register(Party("buyer"))


def bank_cash(bank_code: str) -> str:
    """The platform's money in one of its bank accounts (an asset)."""
    return f"bank:{bank_code}:cash"


def buyer_wallet(user_id: int) -> str:
    return BUYER.account(user_id, "wallet")


def _kind_of(code: str) -> str:
    parts = code.split(":")
    party = _PARTIES.get(parts[0])
    if party is not None:
        return Kind.ASSET if parts[-1] in party.assets else Kind.LIABILITY
    if code.endswith(":receivable") or code.startswith("bank:") or code == CHARGEBACKS:
        return Kind.ASSET
    if code.endswith(":fees") or code in (WRITE_OFFS, FX_DIFFERENCES, CHARGEBACK_LOSSES):
        return Kind.EXPENSE
    if code == PLATFORM_REVENUE:
        return Kind.INCOME
    return Kind.LIABILITY


def _owner_of(code: str) -> int | None:
    parts = code.split(":")
    if parts[0] in _PARTIES and len(parts) > 1 and parts[1].isdigit():
        return int(parts[1])
    return None


class UnbalancedEntry(ValueError):
    pass


def account(code: str, currency: str = "CNY") -> LedgerAccount:
    found, _ = LedgerAccount.objects.get_or_create(
        code=code,
        defaults={"kind": _kind_of(code), "currency": currency, "owner_id": _owner_of(code)},
    )
    return found


def post(
    *,
    key: str,
    kind: str,
    lines: Iterable[tuple[str, Decimal]],
    memo: str = "",
    reference: str = "",
    currency: str = "CNY",
) -> JournalEntry:
    """Post one balanced entry; posting the same ``key`` again returns the first entry and
    changes nothing (callbacks and tasks may run twice, concurrently).

    A line is ``(code, amount)`` or ``(code, amount, Foreign(...))``: the amount (in
    ``currency``, CNY) is what balances; the Foreign part records what it was in the buyer's
    currency."""
    lines = [
        (line[0], Decimal(line[1]).quantize(CENT), line[2] if len(line) > 2 else None)
        for line in lines
        if Decimal(line[1]) != 0
    ]
    if not lines:
        raise UnbalancedEntry(f"entry {key!r} has no non-zero lines")
    total = sum((line[1] for line in lines), Decimal("0"))
    if total != 0:
        raise UnbalancedEntry(f"entry {key!r} does not balance: lines sum to {total}")
    posted_at = timezone.now()
    with transaction.atomic(savepoint=False):
        entry_id = _insert_entry(
            key=key, kind=kind, memo=memo[:255], reference=reference[:64], posted_at=posted_at
        )
        if entry_id is None:
            # Posted before (a repeat), or a concurrent poster won the race on the unique key
            # (the insert waited for its commit).
            return JournalEntry.objects.get(key=key)
        if _insert_lines(entry_id, lines, currency) < len(lines):
            _insert_lines_of_new_accounts(entry_id, lines, currency)
    entry = JournalEntry(
        pk=entry_id,
        key=key,
        kind=kind,
        memo=memo[:255],
        reference=reference[:64],
        posted_at=posted_at,
    )
    entry._state.adding = False
    entry._state.db = connection.alias
    return entry


# Posting sits on the notification hot path, so it is two statements, not the ORM's five
# (savepoint, entry, account lookup, lines, release): the entry's unique key settles repeats
# without a savepoint, and the lines find their account ids in SQL. Both statements are
# plain SQL that PostgreSQL and SQLite share.


def _insert_entry(**values) -> int | None:
    """The entry's id, or None when its key was posted before."""
    table, qn = JournalEntry._meta.db_table, connection.ops.quote_name
    columns = ", ".join(qn(JournalEntry._meta.get_field(name).column) for name in values)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {qn(table)} ({columns}) VALUES ({', '.join(['%s'] * len(values))})"  # noqa: S608 -- identifiers from model metadata
            f" ON CONFLICT ({qn('key')}) DO NOTHING RETURNING {qn('id')}",
            list(values.values()),
        )
        row = cursor.fetchone()
    return row[0] if row else None


Line = tuple[str, Decimal, Foreign | None]


def _foreign_values(foreign: Foreign | None) -> list:
    if foreign is None:
        return [None, "", None]
    return [str(Decimal(foreign.amount)), foreign.currency, str(Decimal(foreign.rate))]


def _insert_lines(entry_id: int, lines: list[Line], currency: str) -> int:
    """Insert the lines whose account exists, in order; returns how many were inserted."""
    qn = connection.ops.quote_name
    values = " UNION ALL ".join(
        "SELECT %s AS n, %s AS code, CAST(%s AS NUMERIC) AS amount,"
        " CAST(%s AS NUMERIC) AS famount, %s AS fcurrency, CAST(%s AS NUMERIC) AS frate"
        for _ in lines
    )
    params: list = [entry_id, currency]
    for position, (code, amount, foreign) in enumerate(lines):
        params += [position, code, str(amount), *_foreign_values(foreign)]
    columns = "entry_id, account_id, amount, currency, foreign_amount, foreign_currency, fx_rate"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {qn(JournalLine._meta.db_table)} ({columns})"  # noqa: S608 -- identifiers from model metadata
            f" SELECT %s, a.id, v.amount, %s, v.famount, v.fcurrency, v.frate FROM ({values}) v"
            f" JOIN {qn(LedgerAccount._meta.db_table)} a ON a.code = v.code ORDER BY v.n",
            params,
        )
        return cursor.rowcount


def _insert_lines_of_new_accounts(entry_id: int, lines: list[Line], currency: str) -> None:
    """The lines of accounts that did not exist yet: open the accounts, then add the lines.

    Which lines are missing is read from the entry itself, not from which accounts exist now:
    a concurrent poster may have opened the account since the insert skipped its line."""
    inserted = Counter(
        JournalLine.objects.filter(entry_id=entry_id).values_list("account__code", flat=True)
    )
    new = []
    for code, amount, foreign in lines:
        if inserted[code]:
            inserted[code] -= 1
        else:
            new.append((code, amount, foreign))
    ids = {code: account(code, currency).pk for code, _, _ in new}
    JournalLine.objects.bulk_create(
        JournalLine(
            entry_id=entry_id,
            account_id=ids[code],
            amount=amount,
            currency=currency,
            foreign_amount=foreign.amount if foreign else None,
            foreign_currency=foreign.currency if foreign else "",
            fx_rate=foreign.rate if foreign else None,
        )
        for code, amount, foreign in new
    )


def balance(code: str, *, natural: bool = False) -> Decimal:
    """Sum of an account's lines. ``natural`` shows credit-normal accounts as positive."""
    total = _BALANCE.first(code=code) or Decimal("0.00")
    if natural and _kind_of(code) in {Kind.LIABILITY, Kind.INCOME}:
        total = -total
    return total.quantize(CENT)


# Every checkout reads the buyer's wallet: one account's sum, compiled once per connection
# (grouped by the account, so an account without lines has no row rather than a NULL).
_BALANCE = PreparedRead(
    lambda code: (
        JournalLine.objects.filter(account__code=code)
        .values("account__code")
        .annotate(s=Sum("amount"))
        .values_list("s", flat=True)
    ),
    code=str,
)


def balances(codes: Iterable[str], *, natural: bool = False) -> dict[str, Decimal]:
    """Several balances in one query (dashboards list many accounts)."""
    codes = list(codes)
    rows = (
        JournalLine.objects.filter(account__code__in=codes)
        .values_list("account__code")
        .annotate(s=Sum("amount"))
    )
    found = dict(rows)
    result = {}
    for code in codes:
        total = (found.get(code) or Decimal("0.00")).quantize(CENT)
        if natural and _kind_of(code) in {Kind.LIABILITY, Kind.INCOME}:
            total = -total
        result[code] = total
    return result


def unbalanced_entries() -> int:
    """How many entries do not sum to zero (must always be 0; integrity_check reports it)."""
    # Half a cent of tolerance: SQLite sums decimals as floats (PostgreSQL is exact).
    return (
        JournalEntry.objects.annotate(total=Sum("lines__amount"))
        .filter(Q(total__gte=Decimal("0.005")) | Q(total__lte=Decimal("-0.005")))
        .count()
    )


def journal_total() -> Decimal:
    return (JournalLine.objects.aggregate(s=Sum("amount"))["s"] or Decimal("0.00")).quantize(CENT)
