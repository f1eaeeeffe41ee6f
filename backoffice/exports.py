"""Exports of what Finance reconciles by hand: payments, refunds, journal lines, payouts,
discrepancies and orders, as CSV (UTF-8 with BOM, so spreadsheet programs read the Chinese
headers) or XLSX.

Rows are read with ``iterator()`` and written as they come, so a month of data never sits in
memory: CSV is streamed to the client line by line; XLSX is written by openpyxl's write-only
workbook to a temporary file and streamed from there. A text cell a spreadsheet would run as a
formula (leading ``=``, ``+``, ``-``, ``@``, tab, CR) is prefixed with ``'``; amounts stay
numbers (a number is never evaluated).
"""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from payments.ledger_labels import account_label, kind_label

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 2000


def neutralise(value):
    """A cell as it goes into a spreadsheet: text that would be evaluated is quoted."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return timezone.localtime(value).replace(tzinfo=None) if timezone.is_aware(value) else value
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, (int, Decimal, float, dt.date)):
        return value
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@dataclass(frozen=True)
class Column:
    header: str
    value: Callable
    money: bool = False  # shown as ¥ in XLSX


@dataclass(frozen=True)
class Export:
    """One exportable list: its columns, how its rows come from the admin's filtered queryset,
    and the date field a date range applies to."""

    name: str
    title: str
    columns: list[Column]
    date_field: str
    rows: Callable[[QuerySet], Iterable] = lambda qs: qs.iterator(chunk_size=CHUNK)

    def header(self) -> list[str]:
        return [str(c.header) for c in self.columns]

    def values(self, queryset: QuerySet) -> Iterator[list]:
        for obj in self.rows(queryset):
            yield [neutralise(c.value(obj)) for c in self.columns]


def _user(user) -> str:
    return user.get_username() if user else ""


def _journal_lines(entries: QuerySet) -> Iterator:
    from payments.models import JournalLine

    lines = (
        JournalLine.objects.filter(entry__in=entries.order_by().values("pk"))
        .select_related("entry", "account__owner")
        .order_by("entry__posted_at", "entry_id", "pk")
    )
    return lines.iterator(chunk_size=CHUNK)


def _line_account(line) -> str:
    owner = line.account.owner.get_username() if line.account.owner_id else ""
    return account_label(line.account.code, owner)


EXPORTS: dict[str, Export] = {
    "payments.payment": Export(
        "payments",
        _("payments"),
        [
            Column(_("created at"), lambda p: p.created_at),
            Column(_("reference"), lambda p: p.reference),
            Column(_("buyer"), lambda p: _user(p.buyer)),
            Column(_("method"), lambda p: p.get_method_display()),
            Column(_("status"), lambda p: p.get_status_display()),
            Column(_("currency"), lambda p: p.currency),
            Column(_("amount"), lambda p: p.amount, money=True),
            Column(_("refunded"), lambda p: p.refunded_amount, money=True),
            Column(_("succeeded at"), lambda p: p.succeeded_at),
        ],
        "created_at",
        rows=lambda qs: qs.select_related("buyer").iterator(chunk_size=CHUNK),
    ),
    "payments.refund": Export(
        "refunds",
        _("refunds"),
        [
            Column(_("created at"), lambda r: r.created_at),
            Column(_("refund no"), lambda r: r.refund_no),
            Column(_("payment"), lambda r: r.payment.reference),
            Column(_("status"), lambda r: r.get_status_display()),
            Column(_("origin"), lambda r: r.get_origin_display()),
            Column(_("currency"), lambda r: r.currency),
            Column(_("amount"), lambda r: r.amount, money=True),
            Column(_("reason"), lambda r: r.reason),
            Column(
                _("requested by"),
                lambda r: (
                    str(_("the system (automatic)"))
                    if r.requested_by_system
                    else _user(r.requested_by)
                ),
            ),
            Column(_("approved by"), lambda r: _user(r.approved_by)),
            Column(_("declined by"), lambda r: _user(r.declined_by)),
            Column(_("decided at"), lambda r: r.decided_at),
            Column(_("reason for the decision"), lambda r: r.decision_note),
            Column(_("settled at"), lambda r: r.settled_at),
        ],
        "created_at",
        rows=lambda qs: qs.select_related(
            "payment", "requested_by", "approved_by", "declined_by"
        ).iterator(chunk_size=CHUNK),
    ),
    "payments.journalentry": Export(
        "journal-lines",
        _("journal lines"),
        [
            Column(_("posted at"), lambda ln: ln.entry.posted_at),
            Column(_("kind"), lambda ln: kind_label(ln.entry.kind)),
            Column(_("key"), lambda ln: ln.entry.key),
            Column(_("reference"), lambda ln: ln.entry.reference),
            Column(_("account"), _line_account),
            Column(_("code"), lambda ln: ln.account.code),
            Column(_("currency"), lambda ln: ln.currency),
            Column(_("debit"), lambda ln: ln.amount if ln.amount > 0 else None, money=True),
            Column(_("credit"), lambda ln: -ln.amount if ln.amount < 0 else None, money=True),
            Column(_("memo"), lambda ln: ln.entry.memo),
        ],
        "posted_at",
        rows=_journal_lines,
    ),
    "marketplace.payout": Export(
        "payouts",
        _("payouts"),
        [
            Column(_("payout no"), lambda p: p.pk),
            Column(_("requested at"), lambda p: p.requested_at),
            Column(_("seller"), lambda p: _user(p.seller)),
            Column(_("status"), lambda p: p.get_status_display()),
            Column(_("currency"), lambda p: p.currency),
            Column(_("amount"), lambda p: p.amount, money=True),
            Column(_("destination"), lambda p: str(p.destination) if p.destination_id else ""),
            Column(_("decided by"), lambda p: _user(p.decided_by)),
            Column(_("decided at"), lambda p: p.decided_at),
            Column(_("paid at"), lambda p: p.paid_at),
            Column(_("bank reference"), lambda p: p.reference),
        ],
        "requested_at",
        rows=lambda qs: qs.select_related("seller", "destination", "decided_by").iterator(
            chunk_size=CHUNK
        ),
    ),
    "reconciliation.discrepancy": Export(
        "discrepancies",
        _("discrepancies"),
        [
            Column(_("created at"), lambda d: d.created_at),
            Column(_("kind"), lambda d: d.get_kind_display()),
            Column(_("status"), lambda d: d.get_status_display()),
            Column(_("settlement file"), lambda d: str(d.file)),
            Column(_("out trade no"), lambda d: d.attempt.out_trade_no if d.attempt_id else ""),
            Column(_("refund no"), lambda d: d.refund.refund_no if d.refund_id else ""),
            Column(_("expected"), lambda d: d.expected, money=True),
            Column(_("actual"), lambda d: d.actual, money=True),
            Column(_("note"), lambda d: d.note),
        ],
        "created_at",
        rows=lambda qs: qs.select_related("file", "attempt", "refund").iterator(chunk_size=CHUNK),
    ),
    "marketplace.order": Export(
        "orders",
        _("orders"),
        [
            Column(_("order no"), lambda o: o.number),
            Column(_("created at"), lambda o: o.created_at),
            Column(_("paid at"), lambda o: o.paid_at),
            Column(_("buyer"), lambda o: _user(o.buyer)),
            Column(_("brand"), lambda o: o.listing.brand.name),
            Column(_("face value"), lambda o: o.listing.face_value, money=True),
            Column(_("quantity"), lambda o: o.quantity),
            Column(_("currency"), lambda o: o.currency),
            Column(_("amount"), lambda o: o.amount, money=True),
            Column(_("status"), lambda o: o.get_status_display()),
        ],
        "created_at",
        rows=lambda qs: qs.select_related("buyer", "listing__brand").iterator(chunk_size=CHUNK),
    ),
}


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_stream(export: Export, queryset: QuerySet) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield BOM + writer.writerow(export.header())
    for row in export.values(queryset):
        yield writer.writerow(["" if v is None else v for v in row])


def xlsx_file(export: Export, queryset: QuerySet):
    """The workbook in a temporary file (openpyxl's write-only mode keeps rows out of
    memory); the caller streams and closes it."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=str(export.title)[:31])
    bold = Font(bold=True)
    header = []
    for text in export.header():
        cell = WriteOnlyCell(sheet, value=text)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    money_columns = {i for i, c in enumerate(export.columns) if c.money}
    for row in export.values(queryset):
        cells = []
        for i, value in enumerate(row):
            cell = WriteOnlyCell(sheet, value=value)
            if i in money_columns and isinstance(value, Decimal):
                cell.number_format = '"¥"#,##0.00'
            cells.append(cell)
        sheet.append(cells)
    handle = tempfile.TemporaryFile()  # noqa: SIM115 -- closed by the streaming response
    book.save(handle)
    handle.seek(0)
    return handle
