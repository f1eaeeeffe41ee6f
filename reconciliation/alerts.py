"""Telling staff about a day that needs them: a file missing past its deadline, a file refused
(its totals disagree, it is broken, it is another merchant's) and discrepancies above the
account's thresholds. Once per account, day and kind; sent through risk's alert channels."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.db.models.functions import Abs, Coalesce

from payments.models import ChannelAccount
from reconciliation.models import AccountPolicy, Discrepancy, ReconciliationAlert, Statement
from risk.alerts import staff_notify

FINANCE = "Finance"


def policy_for(account: ChannelAccount) -> AccountPolicy:
    """The account's policy, or the defaults when staff have set none."""
    return AccountPolicy.objects.filter(account=account).first() or AccountPolicy(account=account)


def alert_raise(
    *,
    account: ChannelAccount,
    day: dt.date,
    kind: str,
    text: str,
) -> ReconciliationAlert | None:
    """Record and send an alert, unless this account's day already had one of this kind."""
    try:
        with transaction.atomic():
            alert = ReconciliationAlert.objects.create(
                account=account, day=day, kind=kind, text=text
            )
    except IntegrityError:
        return None
    finance = list(
        get_user_model()
        .objects.filter(groups__name=FINANCE, is_active=True)
        .exclude(email="")
        .values_list("email", flat=True)
    )
    body = {
        "event": f"reconciliation.{kind}",
        "channel": account.code,
        "day": day.isoformat(),
        "alert_id": alert.pk,
    }
    staff_notify(
        f"[Cardex reconciliation] {text}",
        body,
        emails=[*finance, *policy_for(account).email_list],
        key=f"reconciliation-{alert.pk}",
    )
    return alert


def statement_check(*, statement: Statement) -> ReconciliationAlert | None:
    """Alert when the day's discrepancies exceed the account's count or amount threshold."""
    policy = policy_for(statement.account)
    money = Discrepancy._meta.get_field("actual")
    found = Discrepancy.objects.filter(file_id=statement.file_id).aggregate(
        n=Count("id"),
        amount=Coalesce(Sum(Abs(Coalesce("actual", "expected"))), 0, output_field=money),
    )
    if found["n"] <= policy.alert_discrepancies and found["amount"] <= policy.alert_amount:
        return None
    text = (
        f"{statement.account.code} {statement.day}: {found['n']} discrepancies "
        f"(¥{found['amount']:,.2f}) exceed the threshold of {policy.alert_discrepancies} "
        f"or ¥{policy.alert_amount:,.2f}"
    )
    return alert_raise(
        account=statement.account,
        day=statement.day,
        kind=ReconciliationAlert.Kind.DISCREPANCIES,
        text=text,
    )
