"""Risk and routing explanations as tables staff can read (never raw JSON in admin)."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from payments.money import format_money

RISK_KEYS = {
    "score": _("risk score"),
    "decision": _("decision"),
    "reasons": _("reasons"),
    "assessment_id": _("assessment"),
    "reviewed_by": _("reviewed by"),
    "review": _("review"),
    "challenge": _("one-time code"),
}
DECISIONS = {
    "allow": _("allow"),
    "challenge": _("challenge"),
    "review": _("review"),
    "block": _("block"),
    "approved": _("approved"),
    "blocked": _("blocked"),
}
CANDIDATE_COLUMNS = (
    ("code", _("channel account")),
    ("estimate", _("estimated success")),
    ("fee", _("fee")),
    ("weight", _("weight")),
    ("score", _("score")),
    ("breaker", _("breaker")),
    ("note", _("note")),
    ("excluded", _("excluded because")),
)
BREAKERS = {"closed": _("closed"), "open": _("open"), "half_open": _("half-open (probing)")}
APPROACHES = {
    "exploit": _("best expected value"),
    "explore": _("exploration"),
    "degraded": _("degraded (every account unhealthy)"),
    "none": _("no usable account"),
}


def _text(value) -> str:
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    if isinstance(value, dict):
        return "；".join(f"{k}: {v}" for k, v in value.items() if k != "digest")
    return str(value)


def risk_table(risk: dict):
    if not risk:
        return "—"
    rows = []
    for key, value in risk.items():
        if key == "challenge" and isinstance(value, dict):
            value = _("sent, %(tries)s tries") % {"tries": value.get("tries", 0)}
        elif key in {"decision", "review"}:
            value = DECISIONS.get(value, value)
        rows.append((RISK_KEYS.get(key, key), _text(value)))
    body = format_html_join("", '<tr><th scope="row">{}</th><td>{}</td></tr>', rows)
    return format_html('<table class="explain">{}</table>', body)


def routing_table(routing: dict):
    if not routing:
        return "—"
    head = format_html_join(
        "", '<th scope="col">{}</th>', ((label,) for _k, label in CANDIDATE_COLUMNS)
    )
    rows = []
    for candidate in routing.get("candidates", []):
        cells = []
        for key, _label in CANDIDATE_COLUMNS:
            value = candidate.get(key)
            if key == "estimate" and value is not None:
                value = f"{100 * float(value):.1f}%"
            elif key == "fee" and value not in (None, ""):
                value = format_money(value, routing.get("currency", "CNY"))
            elif key == "breaker":
                value = BREAKERS.get(value, value)
            cells.append((_text(value),))
        rows.append(format_html("<tr>{}</tr>", format_html_join("", "<td>{}</td>", cells)))
    summary = format_html(
        "<p>{}：{} · {}：{} · {}：{}</p>",
        _("approach"),
        APPROACHES.get(routing.get("approach"), routing.get("approach") or "—"),
        _("chosen"),
        routing.get("winner") or "—",
        _("failover order"),
        " → ".join(routing.get("order") or []) or "—",
    )
    return format_html(
        '{}<table class="explain"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
        summary,
        head,
        format_html("".join(str(r) for r in rows)),
    )
