"""Statements and seller clearings as CSV for Finance's spreadsheets (DESIGN.md §1: "export
statements"). Streamed, so a year of statements never sits in memory; UTF-8 with a BOM so
spreadsheet programs read the Chinese headers; amounts as exact decimal strings."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from reconciliation.models import SellerClearing, Statement

BOM = "\ufeff"


class _Line:
    """csv.writer's file: hands back each line it writes."""

    def write(self, value: str) -> str:
        return value


def _safe(value) -> str:
    """A text cell a spreadsheet would run as a formula is quoted as text."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in {"=", "+", "@", "\t", "\r"} else text


def csv_lines(header: list[str], rows: Iterable[Iterable]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield BOM + writer.writerow(header)
    for row in rows:
        yield writer.writerow([_safe(cell) for cell in row])


def statements_csv(statements: QuerySet[Statement]) -> Iterator[str]:
    header = [
        _("channel account"), _("day"), _("currency"), _("lines"), _("gross"), _("refunded"), _("fees"), _("net"),
        _("expected settlement date"), _("matched"), _("discrepancies"),
    ]
    rows = (
        (s.account.code, s.day.isoformat(), s.currency, s.count, s.gross, s.refunded, s.fees, s.net,
         s.expected_settlement_date.isoformat(), s.matched, s.discrepancies)
        for s in statements.select_related("account").order_by("account__code", "day").iterator(chunk_size=2000)
    )
    return csv_lines(header, rows)


def clearings_csv(clearings: QuerySet[SellerClearing]) -> Iterator[str]:
    header = [_("channel account"), _("day"), _("seller"), _("currency"), _("orders"), _("gross"), _("commission"), _("seller net cleared")]
    rows = (
        (c.statement.account.code, c.statement.day.isoformat(), c.seller.get_username(), c.currency, c.orders,
         c.gross, c.commission, c.net)
        for c in clearings.select_related("statement__account", "seller")
        .order_by("statement__account__code", "statement__day", "seller__username").iterator(chunk_size=2000)
    )
    return csv_lines(header, rows)
