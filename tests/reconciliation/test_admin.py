"""The exceptions queue in admin: listed, resolved or written off only with a note."""

import pytest
from django.urls import reverse

from reconciliation.models import Discrepancy, SettlementFile, Statement

pytestmark = pytest.mark.django_db


@pytest.fixture
def items():
    file = SettlementFile.objects.create(
        channel_code="alipay", name="f", content=b"x", sha256="0" * 64, size=1
    )
    return [
        Discrepancy.objects.create(file=file, kind=kind)
        for kind in ("missing_ours", "missing_channel")
    ]


def act(admin_client, action, ids, note):
    url = reverse("admin:reconciliation_discrepancy_changelist")
    return admin_client.post(
        url,
        {"action": action, "_selected_action": ids, "note": note},
        follow=True,
        HTTP_ACCEPT_LANGUAGE="en",
    )


def test_the_queue_and_statements_list(admin_client, items):
    for name in ("discrepancy", "statement", "settlementfile"):
        response = admin_client.get(
            reverse(f"admin:reconciliation_{name}_changelist")
            + ("?status=open" if name == "discrepancy" else "")
        )
        assert response.status_code == 200
    assert Statement.objects.count() == 0


def test_write_off_needs_a_note(admin_client, admin_user, items):
    act(admin_client, "write_off", [items[0].pk], "")
    items[0].refresh_from_db()
    assert items[0].status == "open"
    act(admin_client, "write_off", [items[0].pk], "below threshold")
    act(admin_client, "mark_resolved", [items[1].pk], "paid late, delivered")
    items[0].refresh_from_db()
    items[1].refresh_from_db()
    assert items[0].status == "written_off" and "below threshold" in items[0].note
    assert items[0].resolved_by == admin_user and items[0].resolved_at
    assert items[1].status == "resolved"


# ---------------------------------------------------------------------------------------------
# Finance confirms a payment from the queue; clearings are shown read-only


@pytest.fixture
def finance_client(db):
    from django.test import Client

    from tests.accounts.factories import UserFactory

    client = Client()
    user = UserFactory(username="fiona-finance", is_staff=True, groups=["Finance"])
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def lost_payment(shop, brand):
    """An order paid at the channel whose notification never arrived, and the day's pull."""
    from tests.accounts.factories import UserFactory
    from tests.reconciliation.conftest import listing_of, pull_today

    order, payment = shop.buy(
        listing_of(UserFactory(username="sally-seller"), brand, price="92.00"), notified=False
    )
    pull_today()
    return order, Discrepancy.objects.get(kind="status_mismatch")


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_finance_confirms_a_payment_from_the_queue(finance_client, lost_payment, shop, mailoutbox):
    order, discrepancy = lost_payment
    with shop.captured(execute=True):
        response = act(finance_client, "confirm_payment", [discrepancy.pk], "checked the file")
    assert response.status_code == 200
    assert messages_of(response) == [
        f"Discrepancy #{discrepancy.pk} confirmed: applied: payment succeeded"
    ]
    order.refresh_from_db()
    discrepancy.refresh_from_db()
    assert order.status == "delivered" and len(mailoutbox) == 1
    assert discrepancy.status == "resolved" and discrepancy.resolved_by == finance_client.user
    assert "checked the file" in discrepancy.note

    with shop.captured(execute=True):
        again = act(finance_client, "confirm_payment", [discrepancy.pk], "")
    assert messages_of(again) == [
        f"Discrepancy #{discrepancy.pk} was not confirmed: It is already resolved."
    ]
    assert len(mailoutbox) == 1


def test_the_action_refuses_other_kinds_with_a_message(finance_client, items):
    response = act(finance_client, "confirm_payment", [items[1].pk], "")
    [message] = messages_of(response)
    assert message.startswith(
        f"Discrepancy #{items[1].pk} was not confirmed: Only a status mismatch"
    )
    items[1].refresh_from_db()
    assert items[1].status == "open" and items[1].resolved_by is None


def test_only_those_who_may_change_discrepancies_may_confirm(client, lost_payment):
    from django.contrib.auth.models import Permission

    from tests.accounts.factories import UserFactory

    _, discrepancy = lost_payment
    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_discrepancy"))
    client.force_login(viewer)
    page = client.get(reverse("admin:reconciliation_discrepancy_changelist"))
    assert b"confirm_payment" not in page.content
    act(client, "confirm_payment", [discrepancy.pk], "")
    discrepancy.refresh_from_db()
    assert discrepancy.status == "open"

    client.force_login(UserFactory(username="sue-support", is_staff=True, groups=["Support"]))
    assert client.get(reverse("admin:reconciliation_discrepancy_changelist")).status_code == 403


def test_finance_sees_clearings_read_only_and_on_the_statement(finance_client, shop, brand):
    from tests.accounts.factories import UserFactory
    from tests.reconciliation.conftest import listing_of, pull_today

    shop.buy(listing_of(UserFactory(username="sally-seller"), brand, price="92.00"), 2)
    pull_today()
    statement = Statement.objects.get()

    listing = finance_client.get(reverse("admin:reconciliation_sellerclearing_changelist"))
    assert (
        listing.status_code == 200
        and b"sally-seller" in listing.content
        and b"174.80" in listing.content
    )
    clearing = statement.clearings.get()
    change = finance_client.get(
        reverse("admin:reconciliation_sellerclearing_change", args=[clearing.pk])
    )
    assert change.status_code == 200 and b'name="_save"' not in change.content
    assert finance_client.get(reverse("admin:reconciliation_sellerclearing_add")).status_code == 403
    assert (
        finance_client.get(
            reverse("admin:reconciliation_sellerclearing_delete", args=[clearing.pk])
        ).status_code
        == 403
    )

    page = finance_client.get(reverse("admin:reconciliation_statement_change", args=[statement.pk]))
    assert page.status_code == 200
    assert b"sally-seller" in page.content and b"174.80" in page.content and b"9.20" in page.content


def test_finance_exports_statements_as_csv(client, items):
    """Finance's statements leave as a spreadsheet: exact amounts, one row per account × day."""
    import csv
    import datetime as dt
    import io
    from decimal import Decimal

    from payments.models import ChannelAccount
    from tests.accounts.factories import UserFactory

    account = ChannelAccount.objects.create(
        code="alipay",
        name="Alipay",
        backend="alipay",
        methods=["alipay"],
        base_url="http://sandbox.invalid/",
    )
    file = items[0].file
    for day, gross in ((dt.date(2026, 11, 23), "1000.00"), (dt.date(2026, 11, 24), "250.50")):
        Statement.objects.create(
            account=account,
            day=day,
            file=file,
            count=3,
            gross=Decimal(gross),
            refunded=Decimal("10.00"),
            fees=Decimal("6.00"),
            net=Decimal(gross) - Decimal("16.00"),
            expected_settlement_date=day + dt.timedelta(days=1),
            matched=3,
            discrepancies=0,
        )
    client.force_login(UserFactory(is_staff=True, groups=["Finance"]))
    response = client.post(
        reverse("admin:reconciliation_statement_changelist"),
        {
            "action": "export_csv",
            "_selected_action": list(Statement.objects.values_list("pk", flat=True)),
        },
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode(
        "utf-8-sig"
    )  # a BOM, so spreadsheets read UTF-8
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][:3] == ["channel account", "day", "currency"]
    assert rows[1][:2] == ["alipay", "2026-11-23"] and "984.00" in rows[1]
    assert rows[2][:2] == ["alipay", "2026-11-24"] and "234.50" in rows[2]
    assert len(rows) == 3


def test_finance_exports_seller_clearings_as_csv(client, items):
    import datetime as dt
    from decimal import Decimal

    from payments.models import ChannelAccount
    from reconciliation.models import SellerClearing
    from tests.accounts.factories import UserFactory

    account = ChannelAccount.objects.create(
        code="alipay",
        name="Alipay",
        backend="alipay",
        methods=["alipay"],
        base_url="http://sandbox.invalid/",
    )
    statement = Statement.objects.create(
        account=account,
        day=dt.date(2026, 11, 24),
        file=items[0].file,
        expected_settlement_date=dt.date(2026, 11, 25),
    )
    seller = UserFactory(username="=cmd|evil")  # a name a spreadsheet would run as a formula
    SellerClearing.objects.create(
        statement=statement,
        seller=seller,
        currency="CNY",
        orders=2,
        gross=Decimal("184.00"),
        commission=Decimal("9.20"),
        net=Decimal("174.80"),
    )
    client.force_login(UserFactory(is_staff=True, groups=["Finance"]))
    response = client.post(
        reverse("admin:reconciliation_sellerclearing_changelist"),
        {
            "action": "export_csv",
            "_selected_action": list(SellerClearing.objects.values_list("pk", flat=True)),
        },
    )
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "alipay,2026-11-24,'=cmd|evil,CNY,2,184.00,9.20,174.80" in body
