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
        _("channel account"),
        _("day"),
        _("currency"),
        _("lines"),
        _("gross"),
        _("refunded"),
        _("fees"),
        _("net"),
        _("expected settlement date"),
        _("matched"),
        _("discrepancies"),
    ]
    rows = (
        (
            s.account.code,
            s.day.isoformat(),
            s.currency,
            s.count,
            s.gross,
            s.refunded,
            s.fees,
            s.net,
            s.expected_settlement_date.isoformat(),
            s.matched,
            s.discrepancies,
        )
        for s in statements.select_related("account")
        .order_by("account__code", "day")
        .iterator(chunk_size=2000)
    )
    return csv_lines(header, rows)


def clearings_csv(clearings: QuerySet[SellerClearing]) -> Iterator[str]:
    header = [
        _("channel account"),
        _("day"),
        _("seller"),
        _("currency"),
        _("orders"),
        _("gross"),
        _("commission"),
        _("seller net cleared"),
    ]
    rows = (
        (
            c.statement.account.code,
            c.statement.day.isoformat(),
            c.seller.get_username(),
            c.currency,
            c.orders,
            c.gross,
            c.commission,
            c.net,
        )
        for c in clearings.select_related("statement__account", "seller")
        .order_by("statement__account__code", "statement__day", "seller__username")
        .iterator(chunk_size=2000)
    )
    return csv_lines(header, rows)


def daily_statement(day) -> tuple[list[str], list[list]]:
    """The day across every channel account: count, gross, refunds, fees and net per
    channel and currency, then a total line per currency. One grouped query."""
    from decimal import Decimal

    from django.db.models import Sum

    header = [
        _("day"),
        _("channel account"),
        _("currency"),
        _("lines"),
        _("gross"),
        _("refunded"),
        _("fees"),
        _("net"),
    ]
    groups = (
        Statement.objects.filter(day=day)
        .values("account__code", "currency")
        .annotate(
            n=Sum("count"),
            gross=Sum("gross"),
            refunded=Sum("refunded"),
            fees=Sum("fees"),
            net=Sum("net"),
        )
        .order_by("currency", "account__code")
    )
    rows, totals = [], {}
    for g in groups:
        cent = Decimal("0.01")
        values = [
            g["n"],
            *(Decimal(str(g[k] or 0)).quantize(cent) for k in ("gross", "refunded", "fees", "net")),
        ]
        rows.append([day.isoformat(), g["account__code"], g["currency"], *values])
        total = totals.setdefault(g["currency"], [0, 0, 0, 0, 0])
        totals[g["currency"]] = [a + b for a, b in zip(total, values, strict=True)]
    for currency, values in totals.items():
        rows.append([day.isoformat(), _("total"), currency, *values])
    return header, rows


def daily_statement_csv(day) -> Iterator[str]:
    header, rows = daily_statement(day)
    return csv_lines(header, rows)


def daily_statement_xlsx(day) -> bytes:
    """The same table as an Excel workbook (openpyxl), amounts as numbers to two places."""
    import io
    from decimal import Decimal

    from openpyxl import Workbook

    header, rows = daily_statement(day)
    book = Workbook(write_only=True)
    sheet = book.create_sheet(title=day.isoformat())
    sheet.append(header)
    for row in rows:
        sheet.append([float(cell) if isinstance(cell, Decimal) else _safe(cell) for cell in row])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
