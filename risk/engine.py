"""One risk engine for every transaction (DESIGN.md §6).

Callers describe the transaction with plain facts (:class:`TransactionFacts`); the engine
derives features, applies the built-in signals and the staff-editable rules, decides, and
stores the assessment. Sellers' uploads are scored the same way from :class:`SellerFacts`
(:func:`assess_seller`). It imports no other app of the project.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from django.utils import timezone

from risk import history, rulebook, sql
from risk.models import Assessment, Decision, ListEntry, Rule

# Many small buyers paying one seller's new listings (laundering): a payment is a candidate
# when its buyer's account is at most a week old, it pays at most ¥200, and the listing is at
# most three days old; FAN_IN_BUYERS distinct candidate buyers of one seller within
# FAN_IN_WINDOW_DAYS (this one included) step the next one up.
FAN_IN_BUYER_AGE_DAYS = 7
FAN_IN_SMALL_AMOUNT = Decimal("200.00")
FAN_IN_LISTING_DAYS = 3
FAN_IN_WINDOW_DAYS = 3
FAN_IN_BUYERS = 5

# At most this many of the buyer's recent payment accounts are looked up for signals.
SIGNAL_ACCOUNTS = 5
# Paying with this many distinct cards / wallet accounts lately is card testing or a ring.
MANY_PAYMENT_ACCOUNTS = 5

# Score bands → decision. Rules may force a decision regardless of score.
CHALLENGE_AT, REVIEW_AT, BLOCK_AT = 40, 70, 100
_SEVERITY = {Decision.ALLOW: 0, Decision.CHALLENGE: 1, Decision.REVIEW: 2, Decision.BLOCK: 3}


@dataclass(frozen=True)
class TransactionFacts:
    subject: str
    user_ref: str
    amount: Decimal
    method: str = ""
    ip: str = ""
    device: str = ""
    email: str = ""
    account_age_days: int = 0
    good_orders: int = 0
    disputes: int = 0
    average_amount: Decimal | None = None
    user_payments_last_hour: int = 0
    ip_payments_last_hour: int = 0
    new_device: bool = False
    new_ip: bool = False
    brand_high_risk: bool = False
    seller_linked: bool = False
    seller_ref: str = ""
    #: the buyer's account at the channel (card fingerprint, wallet login), when known
    account_ref: str = ""
    #: the accounts at the channels the buyer paid with lately (newest first): a signal on
    #: any of them — another buyer's chargeback on that card — counts for this buyer too
    past_account_refs: tuple[str, ...] = ()
    #: how old the seller's listing being paid for is, when it is a shop order
    listing_age_days: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fan_in_candidate(self) -> bool:
        """A young account paying a small amount for one of the seller's new listings: alone
        harmless, many at once is money being funnelled to the seller."""
        return (
            bool(self.seller_ref)
            and self.listing_age_days is not None
            and self.listing_age_days <= FAN_IN_LISTING_DAYS
            and self.account_age_days <= FAN_IN_BUYER_AGE_DAYS
            and self.amount <= FAN_IN_SMALL_AMOUNT
        )

    @property
    def signal_keys(self) -> list[history.Key]:
        """The keys decaying signals are kept on: buyer, device, address, payment account."""
        return [
            ("user", self.user_ref),
            ("device", self.device),
            ("ip", self.ip),
            ("account", self.account_ref),
            *(("account", ref) for ref in self.past_account_refs[:SIGNAL_ACCOUNTS]),
        ]

    @property
    def sighting_keys(self) -> list[history.Key]:
        """What links this buyer to the seller as seen now: device, address range (payout
        accounts are compared as sighted, see ``history.shared_keys``)."""
        return [("device", self.device), ("ip24", history.ip_range(self.ip))]


@dataclass(frozen=True)
class RiskResult:
    score: int
    decision: str
    reasons: tuple[str, ...]
    features: dict[str, Any]
    assessment_id: int | None = None


# Decaying signals (risk/history.py) the engine scores, by reason.
CHANNEL_RISK_DECLINE = "channel_risk_decline"
SUSPICIOUS_LOGIN = "suspicious_login"
CHARGEBACK = "chargeback"


def features_of(
    facts: TransactionFacts,
    *,
    signals: dict[str, float] | None = None,
    shared_with_seller: set[str] | frozenset[str] = frozenset(),
    buybacks: int = 0,
    fan_in_buyers: int = 0,
) -> dict[str, Any]:
    """Pure: the facts, the decayed signal weights of the buyer's keys and the keys the
    buyer shares with the seller, as rule-addressable features."""
    signals = signals or {}
    self_dealing = bool(shared_with_seller)
    amount_ratio = (
        (facts.amount / facts.average_amount).quantize(Decimal("0.01"))
        if facts.average_amount
        else None
    )
    trusted = facts.good_orders >= 3 and facts.disputes == 0 and facts.account_age_days >= 30
    return {
        "amount": facts.amount,
        "account_age_days": facts.account_age_days,
        "good_orders": facts.good_orders,
        "disputes": facts.disputes,
        "amount_ratio": amount_ratio,
        "user_velocity_1h": facts.user_payments_last_hour,
        "ip_velocity_1h": facts.ip_payments_last_hour,
        "new_device": facts.new_device,
        "new_ip": facts.new_ip,
        "brand_high_risk": facts.brand_high_risk,
        "seller_linked": facts.seller_linked,
        "trusted": trusted,
        "method": facts.method,
        "channel_risk_weight": signals.get(CHANNEL_RISK_DECLINE, 0.0),
        "login_risk_weight": signals.get(SUSPICIOUS_LOGIN, 0.0),
        "chargeback_weight": signals.get(CHARGEBACK, 0.0),
        "seller_shares_device": "device" in shared_with_seller,
        "seller_shares_ip_range": "ip24" in shared_with_seller,
        "seller_shares_payout": "payout" in shared_with_seller,
        "self_dealing": self_dealing,
        "seller_ref": facts.seller_ref,
        "seller_buybacks_30d": buybacks,
        "listing_age_days": facts.listing_age_days,
        "payment_accounts": len({facts.account_ref, *facts.past_account_refs} - {""}),
        "fan_in_candidate": facts.fan_in_candidate,
        # distinct young accounts that paid this seller's new listings small amounts in the
        # last FAN_IN_WINDOW_DAYS, this buyer included (0 when this payment is not one)
        "seller_fan_in_buyers": fan_in_buyers + 1 if facts.fan_in_candidate else 0,
        **facts.extra,
    }


def _builtin(f: dict[str, Any]) -> list[tuple[int, str]]:
    """Signals every marketplace of prepaid value needs; weights tuned to keep good buyers
    frictionless (a trusted buyer's discount offsets one soft signal)."""
    hits: list[tuple[int, str]] = []
    if f["account_age_days"] < 1:
        hits.append((15, "new_account"))
    if f["new_device"]:
        hits.append((15, "new_device"))
    if f["new_ip"]:
        hits.append((10, "new_ip"))
    if f["amount_ratio"] is not None and f["amount_ratio"] >= 5:
        hits.append((20, "unusual_amount"))
    if f["good_orders"] == 0 and f["amount"] >= 2000:
        hits.append((25, "large_first_purchase"))
    if f["user_velocity_1h"] >= 10:
        hits.append((40, "user_velocity"))
    elif f["user_velocity_1h"] >= 5:
        hits.append((20, "user_velocity"))
    if f["ip_velocity_1h"] >= 20:
        hits.append((40, "ip_velocity"))
    if f["brand_high_risk"]:
        hits.append((10, "high_risk_brand"))
    if f["seller_linked"]:
        hits.append((45, "buyer_seller_link"))
    if f["disputes"] >= 3:
        hits.append((30, "dispute_history"))
    # A channel declined this buyer, device, address or payment account for risk: the next
    # attempt anywhere steps up, even for a trusted buyer (60 - 20 ≥ 40).
    if f["channel_risk_weight"] >= 1:
        hits.append((60, CHANNEL_RISK_DECLINE))
    elif f["channel_risk_weight"] >= 0.5:
        hits.append((40, CHANNEL_RISK_DECLINE))
    if f["login_risk_weight"] >= 0.5:
        hits.append((60, SUSPICIOUS_LOGIN))
    # A chargeback on this buyer, device, address or card: a lost one (two signals) holds the
    # next payment for review, an open one steps it up — a trusted buyer's too (90 - 20 ≥ 70).
    if f["chargeback_weight"] >= 1.5:
        hits.append((90, CHARGEBACK))
    elif f["chargeback_weight"] >= 0.5:
        hits.append((60, CHARGEBACK))
    # Self-dealing: the buyer and the seller are one person or a ring.
    if f["seller_shares_payout"]:
        hits.append((70, "self_dealing_payout"))
    if f["seller_shares_device"]:
        hits.append((60, "self_dealing_device"))
    if f["seller_shares_ip_range"]:
        hits.append((25, "self_dealing_ip_range"))
    if f["seller_buybacks_30d"] >= 2:  # the seller's codes keep going to linked accounts
        hits.append((40, "seller_buyback_ring"))
    if f["payment_accounts"] >= MANY_PAYMENT_ACCOUNTS:
        hits.append((25, "many_payment_accounts"))
    # many young accounts each paying a little for one seller's new listings (laundering)
    if f["seller_fan_in_buyers"] >= FAN_IN_BUYERS:
        hits.append((45, "seller_fan_in"))
    if f["trusted"]:
        hits.append((-20, "trusted_buyer"))
    return hits


def _matches(rule: Rule, value: Any) -> bool:
    if value is None:
        return False
    if rule.operator == "in":
        return str(value) in {v.strip() for v in rule.value.split(",")}
    if isinstance(value, bool):
        target: Any = rule.value.strip().lower() in {"1", "true", "yes"}
    else:
        try:
            target, value = Decimal(rule.value.strip()), Decimal(str(value))
        except (ArithmeticError, ValueError):
            target, value = rule.value, str(value)
    return {
        "gt": lambda: value > target,
        "gte": lambda: value >= target,
        "lt": lambda: value < target,
        "lte": lambda: value <= target,
        "eq": lambda: value == target,
    }[rule.operator]()


def assess(
    facts: TransactionFacts, *, store: bool = True, known: history.KeyHistory | None = None
) -> RiskResult:
    """Score a payment: one query for the keys' signals and what the buyer shares with the
    seller (unless the caller read it already, ``known``: :func:`key_history_query`), one to
    store; rules and lists from memory."""
    if known is None:
        now = timezone.now()
        known = history.read_keys(now=now, **_key_history_args(facts, now=now))
    signals, shared, fan_in_buyers = known.weights, known.shared, known.fan_in
    buybacks = _buybacks(facts.seller_ref) if shared else 0
    f = features_of(
        facts,
        signals=signals,
        shared_with_seller=shared,
        buybacks=buybacks,
        fan_in_buyers=fan_in_buyers,
    )
    hits = _builtin(f)
    lists = (
        ("user", facts.user_ref),
        ("ip", facts.ip),
        ("device", facts.device),
        ("email", facts.email),
    )
    return decide(
        f,
        hits,
        lists=lists,
        subject=facts.subject,
        user_ref=facts.user_ref,
        store=store,
        seller_ref=facts.seller_ref,
        fan_in=facts.fan_in_candidate,
    )


def key_history_query(
    facts: TransactionFacts, *, now: dt.datetime, more_accounts: tuple[str, list] | None = None
) -> tuple[str, list] | None:
    """The statement reading what risk remembers of the payment's keys (its signals, the
    link to the seller, the fan-in count), for :func:`assess` or for a caller sending it
    beside its own reads; ``more_accounts`` as in :func:`history.keys_query`."""
    return history.keys_query(
        now=now, more_accounts=more_accounts, **_key_history_args(facts, now=now)
    )


def _key_history_args(facts: TransactionFacts, *, now: dt.datetime) -> dict[str, Any]:
    return {
        "signal_keys": facts.signal_keys,
        "user_ref": facts.user_ref,
        "seller_ref": facts.seller_ref,
        "sighting_keys": facts.sighting_keys,
        "fan_in_since": now - dt.timedelta(days=FAN_IN_WINDOW_DAYS)
        if facts.fan_in_candidate
        else None,
    }


BUYBACK_DAYS = 30


def _buybacks(seller_ref: str) -> int:
    """Payments to this seller by accounts linked to them in the last 30 days (one query,
    only when this buyer is linked: the rare case)."""
    since = timezone.now() - dt.timedelta(days=BUYBACK_DAYS)
    return Assessment.objects.filter(
        subject__startswith="payment:",
        created_at__gte=since,
        features__seller_ref=seller_ref,
        features__self_dealing=True,
    ).count()


def decide(
    f: dict[str, Any],
    hits: list[tuple[int, str]],
    *,
    lists: tuple[tuple[str, str], ...],
    subject: str,
    user_ref: str,
    store: bool,
    seller_ref: str = "",
    fan_in: bool = False,
) -> RiskResult:
    """List hits and staff rules on top of the built-in signals, score → decision, stored.
    Rules match by feature name, so a rule only ever fires where its feature exists."""
    hits = list(hits)
    forced = Decision.ALLOW
    book = rulebook.current()
    for kind_field, value in lists:
        if not value:
            continue
        kind = book.lists.get((kind_field, value))
        if kind == ListEntry.Kind.BLOCK:
            hits.append((100, f"blocklist_{kind_field}"))
            forced = Decision.BLOCK
        elif kind == ListEntry.Kind.ALLOW:
            hits.append((-50, f"allowlist_{kind_field}"))
    forcing: list[str] = []  # rules that force a decision are reasons whatever their score
    rule: Rule
    for rule in book.rules:
        if _matches(rule, f.get(rule.feature)):
            hits.append((rule.score, rule.reason_code))
            if rule.action and rule.action != Decision.ALLOW:
                forcing.append(rule.reason_code)
            if rule.action and _SEVERITY[rule.action] > _SEVERITY[forced]:
                forced = rule.action
    score = max(0, sum(s for s, _ in hits))
    by_score = (
        Decision.BLOCK
        if score >= BLOCK_AT
        else Decision.REVIEW
        if score >= REVIEW_AT
        else Decision.CHALLENGE
        if score >= CHALLENGE_AT
        else Decision.ALLOW
    )
    decision = forced if _SEVERITY[forced] > _SEVERITY[by_score] else by_score
    reasons = tuple(dict.fromkeys([code for s, code in hits if s > 0] + forcing))
    assessment_id = None
    if store:
        assessment_id = sql.insert_returning_id(  # no save() hooks on the hot path
            Assessment,
            {
                "subject": subject[:80],
                "user_ref": user_ref[:40],
                "score": score,
                "decision": str(decision),
                "reasons": list(reasons),
                "features": _json_safe(f),
                "reviewed_by": "",
                "review_outcome": "",
                "created_at": timezone.now(),
                "seller_ref": seller_ref[:40],
                "fan_in": fan_in,
            },
        )
    return RiskResult(
        score=score,
        decision=str(decision),
        reasons=reasons,
        features=f,
        assessment_id=assessment_id,
    )


# --- sellers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SellerFacts:
    """A seller's upload of codes, described by the marketplace (DESIGN.md §6: "a new seller
    dumping many high-value codes"). Counts and face values of the last 24 h include this
    upload. ``subject`` is ``listing-upload:<listing id>``."""

    subject: str
    seller_ref: str
    upload_codes: int
    upload_face_value: Decimal
    account_age_days: int = 0
    good_sales: int = 0
    disputes: int = 0
    disputes_refunded: int = 0
    codes_last_24h: int = 0
    face_value_last_24h: Decimal = Decimal("0")
    high_risk_share: Decimal = Decimal("0")
    brand_high_risk: bool = False
    ip: str = ""
    email: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def seller_features_of(facts: SellerFacts) -> dict[str, Any]:
    """Seller features are prefixed ``seller_``/``upload_`` so staff rules written for
    buyers' payments never fire on uploads, and the other way round."""
    judged = facts.good_sales + facts.disputes
    dispute_rate = (
        (Decimal(facts.disputes) / Decimal(judged)).quantize(Decimal("0.0001"))
        if judged
        else Decimal("0")
    )
    trusted = (
        facts.good_sales >= 20 and dispute_rate < Decimal("0.02") and facts.account_age_days >= 30
    )
    return {
        "seller_account_age_days": facts.account_age_days,
        "seller_good_sales": facts.good_sales,
        "seller_disputes": facts.disputes,
        "seller_disputes_refunded": facts.disputes_refunded,
        "seller_dispute_rate": dispute_rate,
        "seller_trusted": trusted,
        "upload_codes": facts.upload_codes,
        "upload_face_value": facts.upload_face_value,
        "upload_brand_high_risk": facts.brand_high_risk,
        "seller_codes_24h": facts.codes_last_24h,
        "seller_face_value_24h": facts.face_value_last_24h,
        "seller_high_risk_share_24h": facts.high_risk_share,
        **facts.extra,
    }


def _seller_builtin(f: dict[str, Any]) -> list[tuple[int, str]]:
    """A fresh account with no sales moving a lot of prepaid value fast is the classic
    stolen-card cash-out; a proven seller's volume is normal business."""
    hits: list[tuple[int, str]] = []
    unproven = f["seller_good_sales"] < 10
    if f["seller_account_age_days"] < 1:
        hits.append((20, "new_seller"))
    elif f["seller_account_age_days"] < 7:
        hits.append((10, "young_seller"))
    if f["seller_good_sales"] == 0 and f["upload_face_value"] >= 2000:
        hits.append((25, "large_first_upload"))
    if unproven and f["seller_face_value_24h"] >= 10000:
        hits.append((35, "high_value_dump"))
    elif unproven and f["seller_face_value_24h"] >= 5000:
        hits.append((15, "high_value_dump"))
    if unproven and f["seller_codes_24h"] >= 200:
        hits.append((20, "code_velocity"))
    if f["seller_high_risk_share_24h"] >= Decimal("0.5") or f["upload_brand_high_risk"]:
        hits.append((15, "high_risk_brands"))
    if f["seller_disputes"] >= 3 and f["seller_dispute_rate"] >= Decimal("0.05"):
        hits.append((30, "seller_dispute_history"))
    if f["seller_disputes_refunded"] >= 2:
        hits.append((30, "seller_bad_codes"))
    if f["seller_trusted"]:
        hits.append((-20, "trusted_seller"))
    return hits


def assess_seller(facts: SellerFacts, *, store: bool = True) -> RiskResult:
    """Score a seller's upload with the same lists, rules and decision bands as payments.
    The marketplace reads the result: allow/challenge → on sale, review/block → paused for
    an analyst, a block-list hit → withdrawn (docs/risk.md)."""
    f = seller_features_of(facts)
    history.sighting_record(facts.seller_ref, [("ip24", history.ip_range(facts.ip))])
    lists = (("user", facts.seller_ref), ("ip", facts.ip), ("email", facts.email))
    return decide(
        f,
        _seller_builtin(f),
        lists=lists,
        subject=facts.subject,
        user_ref=facts.seller_ref,
        store=store,
    )


def _json_safe(features: dict[str, Any]) -> dict[str, Any]:
    """Amounts stay Decimal in the engine and are stored as strings (exact, JSON-safe)."""
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in features.items() if k != "extra"}


__all__ = [
    "RiskResult",
    "SellerFacts",
    "TransactionFacts",
    "asdict",
    "assess",
    "assess_seller",
    "features_of",
    "key_history_query",
    "seller_features_of",
]
