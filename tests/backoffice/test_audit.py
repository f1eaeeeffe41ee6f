"""The audit trail: every staff change with before/after, every admin action and sensitive
view, append-only and searchable."""

import pytest
from auditlog.models import LogEntry

from marketplace.models import Listing
from payments.models import ChannelAccount
from tests.accounts.factories import UserFactory
from tests.backoffice.conftest import staff_client
from tests.marketplace.factories import ListingFactory

pytestmark = pytest.mark.django_db


def channel_account(**kwargs) -> ChannelAccount:
    account = ChannelAccount(
        code="ali-1",
        name="Alipay 1",
        backend="alipay",
        methods=["alipay"],
        base_url="https://pay.example/",
        **kwargs,
    )
    account.credentials = {"private_key": "TOP-SECRET-KEY"}
    account.save()
    return account


def test_a_staff_change_is_recorded_with_who_and_before_and_after(client):
    account = channel_account()
    admin = staff_client(client, "superuser").user
    form = {
        "code": "ali-1",
        "name": "Alipay 1",
        "backend": "alipay",
        "methods": ["alipay"],
        "enabled": "",
        "weight": "1.00",
        "currency": "CNY",
        "fee_percent": "0.380",
        "fee_fixed": "0.00",
        "min_amount": "0.01",
        "max_amount": "50000.00",
        "daily_cap": "",
        "settlement_days": "1",
        "merchant_id": "",
        "app_id": "",
        "base_url": "https://pay.example/",
        "new_credentials": '{"private_key": "NEW-SECRET"}',
    }
    response = client.post(f"/admin/payments/channelaccount/{account.pk}/change/", form)
    assert response.status_code == 302
    entry = LogEntry.objects.get_for_object(account).filter(action=LogEntry.Action.UPDATE).get()
    assert entry.actor == admin
    assert entry.changes_dict["enabled"] == ["True", "False"]
    assert entry.changes_dict["fee_percent"] == ["0.600", "0.380"]
    assert "SECRET" not in str(entry.changes) and "credentials" not in str(entry.changes)


def test_an_admin_action_leaves_one_row_per_selected_object(client):
    risk = staff_client(client, "Risk").user
    listings = ListingFactory.create_batch(2, status=Listing.Status.ACTIVE)
    client.post(
        "/admin/marketplace/listing/",
        {
            "action": "pause",
            "_selected_action": [str(listing.pk) for listing in listings],
        },
    )
    rows = LogEntry.objects.filter(
        action=LogEntry.Action.ACCESS, additional_data__event="admin_action"
    )
    assert rows.count() == 2
    assert {row.object_pk for row in rows} == {str(listing.pk) for listing in listings}
    assert all(row.actor == risk and row.additional_data["action"] == "pause" for row in rows)
    assert "暂停" in rows.first().changes_text


def test_the_audit_trail_is_append_only_even_for_a_superuser(client):
    channel_account()
    staff_client(client, "superuser")
    entry = LogEntry.objects.first()
    assert client.get("/admin/auditlog/logentry/add/").status_code == 403
    assert client.post(f"/admin/auditlog/logentry/{entry.pk}/delete/").status_code == 403
    page = client.get(f"/admin/auditlog/logentry/{entry.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    response = client.post(
        "/admin/auditlog/logentry/", {"action": "delete_selected", "_selected_action": [entry.pk]}
    )
    assert LogEntry.objects.filter(pk=entry.pk).exists() and response.status_code in (200, 302)


def test_the_audit_trail_is_searchable_by_who_did_it(client):
    someone = UserFactory(username="clerk-zhang", is_staff=True, is_superuser=True)
    client.force_login(someone)
    ListingFactory()
    listing = ListingFactory(status=Listing.Status.ACTIVE)
    client.post(
        "/admin/marketplace/listing/", {"action": "pause", "_selected_action": [listing.pk]}
    )
    response = client.get("/admin/auditlog/logentry/", {"q": "clerk-zhang"})
    assert response.status_code == 200
    found = response.context["cl"].result_list
    assert any(e.actor_id == someone.pk and e.object_pk == str(listing.pk) for e in found)
    assert all(e.actor_id == someone.pk or "clerk-zhang" in e.object_repr for e in found)


@pytest.mark.parametrize(
    ("group", "allowed"), [("Finance", True), ("Risk", True), ("Support", False)]
)
def test_who_reads_the_audit_trail(client, group, allowed):
    staff_client(client, group)
    assert client.get("/admin/auditlog/logentry/").status_code == (200 if allowed else 403)
