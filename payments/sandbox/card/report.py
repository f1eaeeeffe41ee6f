"""The simulated Reporting API (CHANNELS.md §4.6): report runs that finish at once and the
itemized balance-change CSV they produce, in major units, in the run's time zone."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import time
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse

from payments.sandbox import core
from payments.sandbox.card.protocol import (
    CHANNEL,
    api_view,
    error_response,
    exponent,
    fee_units,
    form_data,
    major_of,
    missing,
    random_token,
    stable_id,
    units_of,
)
from payments.sandbox.models import (
    SandboxMerchant,
    SandboxRefund,
    SandboxTrade,
)

AVAILABLE_AFTER = dt.timedelta(days=2)
REPORT_TYPES = frozenset({f"balance_change_from_activity.itemized.{n}" for n in (1, 2, 3)})
REPORT_COLUMNS = {
    "balance_transaction_id",
    "created_utc",
    "created",
    "available_on_utc",
    "available_on",
    "currency",
    "gross",
    "fee",
    "net",
    "reporting_category",
    "source_id",
    "description",
    "customer_facing_amount",
    "customer_facing_currency",
    "payment_intent_id",
    "charge_id",
    "payment_method_type",
    "card_brand",
    "card_funding",
    "card_country",
    "charge_created_utc",
}
DEFAULT_REPORT_COLUMNS = (
    "balance_transaction_id",
    "created_utc",
    "created",
    "available_on_utc",
    "currency",
    "gross",
    "fee",
    "net",
    "reporting_category",
    "source_id",
    "description",
)


# ---------------------------------------------------------------------------------------------
# Reporting API


def _run_json(run_id: str, run: Mapping[str, Any]) -> dict[str, Any]:
    file_id = run["file_id"]
    return {
        "id": run_id,
        "object": "reporting.report_run",
        "created": run["created"],
        "error": None,
        "livemode": False,
        "parameters": run["parameters"],
        "report_type": run["report_type"],
        "result": {
            "id": file_id,
            "object": "file",
            "created": run["created"],
            "expires_at": run["created"] + 7 * 86400,
            "filename": f"{file_id}.csv",
            "purpose": "finance_report_run",
            "size": run["size"],
            "title": f"{run['report_type']} {run_id}",
            "type": "csv",
            "url": f"{core.own_url()}/sandbox/{CHANNEL}/v1/files/{file_id}/contents",
        },
        "status": "succeeded",
        "succeeded_at": run["created"],
    }


@api_view
def report_runs(request: HttpRequest, merchant: SandboxMerchant) -> HttpResponse:
    """POST /v1/reporting/report_runs — the run finishes at once in the sandbox."""
    if request.method != "POST":
        return error_response(405, "invalid_request_error", "Use POST to create a report run.")
    data = form_data(request)
    report_type = data.get("report_type")
    if report_type not in REPORT_TYPES:
        return error_response(
            400,
            "invalid_request_error",
            f"Unknown report type: {report_type}",
            code="parameter_invalid_string",
            param="report_type",
        )
    parameters = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
    try:
        start, end = int(parameters["interval_start"]), int(parameters["interval_end"])
    except (KeyError, TypeError, ValueError):
        return error_response(
            400,
            "invalid_request_error",
            "parameters[interval_start] and parameters[interval_end] are required integers.",
            code="parameter_missing",
            param="parameters",
        )
    if end <= start:
        return error_response(
            400,
            "invalid_request_error",
            "interval_end must be after interval_start.",
            code="parameter_invalid_integer",
            param="parameters[interval_end]",
        )
    zone = str(parameters.get("timezone") or "Etc/UTC")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return error_response(
            400,
            "invalid_request_error",
            f"Invalid timezone: {zone}",
            code="parameter_invalid_string",
            param="parameters[timezone]",
        )
    columns = parameters.get("columns") or list(DEFAULT_REPORT_COLUMNS)
    if not isinstance(columns, list):
        columns = [columns]
    unknown = [
        c
        for c in columns
        if c not in REPORT_COLUMNS
        and not re.fullmatch(r"(payment|refund)_metadata\[[A-Za-z0-9_]+\]", c)
    ]
    if unknown:
        return error_response(
            400,
            "invalid_request_error",
            f"Invalid columns: {', '.join(unknown)}",
            code="parameter_invalid_string",
            param="parameters[columns]",
        )
    params = {"interval_start": start, "interval_end": end, "timezone": zone, "columns": columns}
    run_id, file_id = f"frr_{random_token(24)}", f"file_{random_token(24)}"
    run = {
        "report_type": report_type,
        "parameters": params,
        "created": int(time.time()),
        "file_id": file_id,
    }
    run["size"] = len(report_csv(merchant.merchant_id, params))
    with transaction.atomic():
        merchant = SandboxMerchant.objects.select_for_update().get(pk=merchant.pk)
        runs = dict(merchant.config.get("report_runs") or {})
        runs[run_id] = run
        if len(runs) > 100:
            for old in sorted(runs, key=lambda r: runs[r]["created"])[: len(runs) - 100]:
                runs.pop(old)
        merchant.config = {**merchant.config, "report_runs": runs}
        merchant.save(update_fields=["config"])
    return JsonResponse(_run_json(run_id, run))


@api_view
def report_run_detail(request: HttpRequest, merchant: SandboxMerchant, run_id: str) -> HttpResponse:
    run = (merchant.config.get("report_runs") or {}).get(run_id)
    if run is None:
        return missing("reporting.report_run", run_id)
    return JsonResponse(_run_json(run_id, run))


@api_view
def file_contents(request: HttpRequest, merchant: SandboxMerchant, file_id: str) -> HttpResponse:
    """GET /v1/files/<id>/contents — the report CSV (files.stripe.com on the live service)."""
    run = next(
        (r for r in (merchant.config.get("report_runs") or {}).values() if r["file_id"] == file_id),
        None,
    )
    if run is None:
        return missing("file", file_id)
    response = HttpResponse(
        report_csv(merchant.merchant_id, run["parameters"]), content_type="text/csv"
    )
    response["Content-Disposition"] = f'attachment; filename="{file_id}.csv"'
    return response


def _report_money(units: int, currency: str) -> str:
    return f"{major_of(units, currency):.{exponent(currency)}f}"


def report_csv(merchant_id: str, params: Mapping[str, Any]) -> bytes:
    """The itemized balance-change report for ``[interval_start, interval_end)``: one row per
    charge (gross, 0.6 % fee, net) and per refund (negative gross, no fee returned); amounts in
    major units; ``created`` in ``parameters[timezone]``."""
    zone = ZoneInfo(str(params.get("timezone") or "Etc/UTC"))
    start = dt.datetime.fromtimestamp(int(params["interval_start"]), tz=dt.UTC)
    end = dt.datetime.fromtimestamp(int(params["interval_end"]), tz=dt.UTC)
    columns = list(params["columns"])
    rows: list[tuple[dt.datetime, dict[str, str]]] = []

    def base(trade: SandboxTrade, when: dt.datetime) -> dict[str, str]:
        return {
            "created_utc": when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "created": when.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            "available_on_utc": (when + AVAILABLE_AFTER)
            .astimezone(dt.UTC)
            .strftime("%Y-%m-%d %H:%M:%S"),
            "available_on": (when + AVAILABLE_AFTER).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            "currency": trade.currency.lower(),
            "customer_facing_currency": trade.currency.lower(),
            "payment_intent_id": trade.trade_no,
            "charge_id": trade.extra.get("charge_id", ""),
            "charge_created_utc": (trade.paid_at or trade.created_at)
            .astimezone(dt.UTC)
            .strftime("%Y-%m-%d %H:%M:%S"),
            "payment_method_type": "card",
            "card_brand": "visa",
            "card_funding": "credit",
            "card_country": "US",
            **{f"payment_metadata[{k}]": v for k, v in (trade.extra.get("metadata") or {}).items()},
        }

    paid = SandboxTrade.objects.filter(
        channel=CHANNEL,
        merchant_id=merchant_id,
        status=SandboxTrade.Status.PAID,
        paid_at__gte=start,
        paid_at__lt=end,
    )
    for trade in paid:
        units = units_of(trade.amount, trade.currency)
        fee = fee_units(units)
        row = base(trade, trade.paid_at)
        row.update(
            balance_transaction_id=stable_id("txn_", trade.extra.get("charge_id", trade.trade_no)),
            gross=_report_money(units, trade.currency),
            fee=_report_money(fee, trade.currency),
            net=_report_money(units - fee, trade.currency),
            customer_facing_amount=_report_money(units, trade.currency),
            reporting_category="charge",
            source_id=trade.extra.get("charge_id", ""),
            description=trade.subject,
        )
        rows.append((trade.paid_at, row))
    refunded = SandboxRefund.objects.filter(
        trade__channel=CHANNEL,
        trade__merchant_id=merchant_id,
        status=SandboxRefund.Status.SUCCESS,
        created_at__gte=start,
        created_at__lt=end,
    ).select_related("trade")
    for refund in refunded:
        trade = refund.trade
        units = units_of(refund.amount, trade.currency)
        row = base(trade, refund.created_at)
        row.update(
            balance_transaction_id=stable_id("txn_", refund.refund_id),
            gross=_report_money(-units, trade.currency),
            fee=_report_money(0, trade.currency),
            net=_report_money(-units, trade.currency),
            customer_facing_amount=_report_money(units, trade.currency),
            reporting_category="refund",
            source_id=refund.refund_id,
            description=f"REFUND FOR CHARGE ({trade.subject})"
            if trade.subject
            else "REFUND FOR CHARGE",
            **{
                f"refund_metadata[{k}]": v
                for k, v in (
                    (trade.extra.get("refund_meta") or {}).get(refund.refund_id) or {}
                ).items()
            },
        )
        rows.append((refund.created_at, row))
    rows.sort(key=lambda item: item[0])
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for _when, row in rows:
        writer.writerow([row.get(column, "") for column in columns])
    return out.getvalue().encode("utf-8")
