"""The exceptions queue in admin: listed, resolved or written off only with a note."""

import pytest
from django.urls import reverse

from reconciliation.models import Discrepancy, SettlementFile, Statement

pytestmark = pytest.mark.django_db


@pytest.fixture
def items():
    file = SettlementFile.objects.create(channel_code="alipay", name="f", content=b"x", sha256="0" * 64, size=1)
    return [Discrepancy.objects.create(file=file, kind=kind) for kind in ("missing_ours", "missing_channel")]


def act(admin_client, action, ids, note):
    url = reverse("admin:reconciliation_discrepancy_changelist")
    return admin_client.post(url, {"action": action, "_selected_action": ids, "note": note}, follow=True)


def test_the_queue_and_statements_list(admin_client, items):
    for name in ("discrepancy", "statement", "settlementfile"):
        response = admin_client.get(reverse(f"admin:reconciliation_{name}_changelist") + ("?status=open" if name == "discrepancy" else ""))
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
