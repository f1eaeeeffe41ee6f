"""Four eyes on refunds: money leaves only when someone allowed to approve approves it, and
never the person who asked — except Finance's own refunds up to REFUND_SELF_APPROVAL_LIMIT.
Each step records who and when (and why), is in the audit trail, and a decision is final.

"Money leaves" is the channel's refund call (the fake channel records it)."""

from decimal import Decimal

import pytest
from auditlog.models import LogEntry

from payments import services
from payments.models import ChannelAccount, Refund
from tests.accounts.factories import UserFactory
from tests.payments.factories import PaymentFactory
from tests.payments.fakes import FakeBackend

pytestmark = pytest.mark.django_db


def paid_payment(amount="800.00", reference=None):
    account, _ = ChannelAccount.objects.get_or_create(
        code="fa",
        defaults={
            "name": "fa",
            "backend": "fake",
            "methods": ["alipay"],
            "base_url": "https://fake.example/",
        },
    )
    extra = {"reference": reference} if reference else {}
    payment = PaymentFactory(status="succeeded", amount=Decimal(amount), **extra)
    payment.attempts.create(
        account=account, method="alipay", amount=Decimal(amount), status="succeeded"
    )
    return payment


@pytest.fixture(autouse=True)
def _fresh_channel_in_english(settings):
    """A channel with no refunds yet; the service's refusals asserted in English."""
    from django.utils import translation

    FakeBackend.reset()
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def staff(group, name=None):
    kwargs = {"username": name} if name else {}
    return UserFactory(is_staff=True, groups=[group], **kwargs)


def steps(refund) -> list[tuple[str, str]]:
    """The audit trail's refund steps: (event, actor's username or "system")."""
    rows = LogEntry.objects.get_for_object(refund).filter(action=LogEntry.Action.ACCESS)
    return [
        (row.additional_data["event"], row.actor.username if row.actor else "system")
        for row in rows.order_by("pk")
        if row.additional_data.get("event", "").startswith("refund_")
    ]


def ask(by, amount="300.00", payment=None):
    return services.refund_request(
        payment=payment or paid_payment(),
        amount=Decimal(amount),
        reason="code used",
        requested_by=by,
    )


# --- the rule, in the service ---------------------------------------------------------


def test_a_support_request_waits_and_no_money_leaves(django_capture_on_commit_callbacks):
    support = staff("Support", "chen")
    with django_capture_on_commit_callbacks(execute=True):
        refund = ask(support, "30.00")
    assert refund.status == "requested" and refund.requested_by == support
    assert refund.approved_by is None and FakeBackend.refunds == {}
    assert steps(refund) == [("refund_request", "chen")]


def test_finance_approves_what_another_asked_and_only_then_money_leaves(
    django_capture_on_commit_callbacks,
):
    support, finance = staff("Support", "chen"), staff("Finance", "wang")
    refund = ask(support)
    with django_capture_on_commit_callbacks(execute=True):
        refund = services.refund_decide(refund=refund, approve=True, by=finance)
    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.approved_by == finance
    assert refund.decided_at is not None
    assert FakeBackend.refunds == {refund.refund_no: Decimal("300.00")}
    assert steps(refund) == [("refund_request", "chen"), ("refund_approve", "wang")]


def test_the_asker_cannot_approve_their_own_refund(django_capture_on_commit_callbacks):
    finance = staff("Finance", "wang")
    refund = ask(finance, "800.00")  # above the self-approval limit: it waits
    assert refund.status == "requested"
    with (
        pytest.raises(services.PaymentError, match="another member of Finance"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.refund_decide(refund=refund, approve=True, by=finance)
    refund.refresh_from_db()
    assert refund.status == "requested" and refund.approved_by is None
    assert FakeBackend.refunds == {}


def test_finance_refund_within_the_limit_goes_at_once(settings, django_capture_on_commit_callbacks):
    settings.REFUND_SELF_APPROVAL_LIMIT = Decimal("500.00")
    finance = staff("Finance", "wang")
    with django_capture_on_commit_callbacks(execute=True):
        refund = ask(finance, "500.00")
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert (refund.requested_by, refund.approved_by) == (finance, finance)
    assert refund.decision_note and refund.decided_at is not None
    assert FakeBackend.refunds == {refund.refund_no: Decimal("500.00")}
    assert steps(refund) == [("refund_request", "wang"), ("refund_approve", "wang")]


def test_finance_refund_above_the_limit_waits(settings):
    settings.REFUND_SELF_APPROVAL_LIMIT = Decimal("500.00")
    assert ask(staff("Finance"), "500.01").status == "requested"


def test_a_limit_of_zero_makes_every_staff_refund_wait(settings):
    settings.REFUND_SELF_APPROVAL_LIMIT = Decimal("0")
    assert ask(staff("Finance"), "0.01").status == "requested"
    assert FakeBackend.refunds == {}


def test_support_and_risk_may_not_decide(django_capture_on_commit_callbacks):
    refund = ask(staff("Support", "chen"))
    for decider in (staff("Support", "li"), staff("Risk", "zhao")):
        for approve in (True, False):
            with pytest.raises(services.PaymentError, match="Only Finance"):
                services.refund_decide(refund=refund, approve=approve, by=decider, reason="no")
    refund.refresh_from_db()
    assert refund.status == "requested" and FakeBackend.refunds == {}


def test_a_decision_is_final_and_never_overwritten(django_capture_on_commit_callbacks):
    wang, li = staff("Finance", "wang"), staff("Finance", "li")
    refund = ask(staff("Support", "chen"))
    services.refund_decide(refund=refund, approve=False, by=wang, reason="the code works")
    with (
        pytest.raises(services.PaymentError, match="final"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        services.refund_decide(refund=refund, approve=True, by=li)
    refund.refresh_from_db()
    assert (refund.status, refund.declined_by, refund.approved_by) == ("declined", wang, None)
    assert refund.decision_note == "the code works" and FakeBackend.refunds == {}
    assert steps(refund) == [("refund_request", "chen"), ("refund_decline", "wang")]


def test_an_approval_is_final_too():
    wang, li = staff("Finance", "wang"), staff("Finance", "li")
    refund = ask(staff("Support"))
    services.refund_decide(refund=refund, approve=True, by=wang)
    with pytest.raises(services.PaymentError, match="final"):
        services.refund_decide(refund=refund, approve=False, by=li, reason="changed my mind")
    refund.refresh_from_db()
    assert (refund.approved_by, refund.declined_by) == (wang, None)


def test_declining_needs_a_reason_and_changes_nothing_without_one():
    refund = ask(staff("Support"))
    with pytest.raises(services.PaymentError, match="why"):
        services.refund_decide(refund=refund, approve=False, by=staff("Finance"), reason="  ")
    refund.refresh_from_db()
    assert refund.status == "requested" and refund.declined_by is None


def test_a_refund_must_name_who_asks():
    payment = paid_payment()
    with pytest.raises(services.PaymentError, match="who asks"):
        services.refund_request(
            payment=payment, amount=Decimal("10.00"), reason="x", requested_by=None
        )
    assert not Refund.objects.exists()


def test_the_systems_own_refunds_go_at_once_and_say_so(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        refund = ask(services.SYSTEM, "800.00")
    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.requested_by_system
    assert refund.requested_by is None and refund.approved_by is None
    assert steps(refund) == [("refund_request", "system")]


def test_the_undeliverable_orders_refund_is_the_systems_request(monkeypatch):
    """The shop's automatic refund (paid, nothing delivered) names the system as asker."""
    from marketplace.services import delivery

    asked = []
    monkeypatch.setattr(
        delivery.payment_services, "refund_request", lambda **kwargs: asked.append(kwargs)
    )
    payment = paid_payment()
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        delivery._refund_after_commit(payment=payment, reason="no order X")
    assert asked[0]["requested_by"] is services.SYSTEM


# --- every path: the refund form, the bulk action --------------------------------------


def test_refund_form_support_asks_finance_approves_in_the_queue(
    client, django_capture_on_commit_callbacks
):
    payment = paid_payment("80.00")
    client.force_login(staff("Support", "chen"))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            f"/admin/payments/payment/{payment.pk}/refund/", {"amount": "30.00", "reason": "bad"}
        )
    refund = Refund.objects.get()
    assert refund.status == "requested" and FakeBackend.refunds == {}
    client.force_login(staff("Finance", "wang"))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/payments/refund/",
            {"action": "approve_requested", "_selected_action": [refund.pk]},
        )
    refund.refresh_from_db()
    assert refund.status == "succeeded" and refund.approved_by.username == "wang"
    assert steps(refund) == [("refund_request", "chen"), ("refund_approve", "wang")]


def test_refund_form_finance_above_the_limit_cannot_approve_its_own_in_the_queue(
    client, django_capture_on_commit_callbacks
):
    payment = paid_payment("800.00")
    wang = staff("Finance", "wang")
    client.force_login(wang)
    client.post(
        f"/admin/payments/payment/{payment.pk}/refund/", {"amount": "600.00", "reason": "bad"}
    )
    refund = Refund.objects.get()
    assert refund.status == "requested"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/payments/refund/",
            {"action": "approve_requested", "_selected_action": [refund.pk]},
            HTTP_ACCEPT_LANGUAGE="en",
            follow=True,
        )
    refund.refresh_from_db()
    assert refund.status == "requested" and FakeBackend.refunds == {}
    assert "another member of Finance" in response.content.decode()


def test_bulk_refund_in_full_by_support_only_asks(client, django_capture_on_commit_callbacks):
    payments = [paid_payment("80.00"), paid_payment("120.00")]
    client.force_login(staff("Support", "chen"))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/payments/payment/",
            {"action": "refund_in_full", "_selected_action": [p.pk for p in payments]},
        )
    refunds = Refund.objects.order_by("amount")
    assert [(r.amount, r.status) for r in refunds] == [
        (Decimal("80.00"), "requested"),
        (Decimal("120.00"), "requested"),
    ]
    assert FakeBackend.refunds == {}
    assert all(steps(r) == [("refund_request", "chen")] for r in refunds)


def test_bulk_refund_in_full_by_finance_sends_small_ones_and_holds_large_ones(
    client, settings, django_capture_on_commit_callbacks
):
    settings.REFUND_SELF_APPROVAL_LIMIT = Decimal("500.00")
    small, large = paid_payment("80.00"), paid_payment("900.00")
    client.force_login(staff("Finance", "wang"))
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/payments/payment/",
            {"action": "refund_in_full", "_selected_action": [small.pk, large.pk]},
        )
    assert Refund.objects.get(payment=small).status == "succeeded"
    assert Refund.objects.get(payment=large).status == "requested"
    assert list(FakeBackend.refunds.values()) == [Decimal("80.00")]


# --- the queue --------------------------------------------------------------------------


def test_the_queue_opens_on_what_waits_with_order_amount_asker_and_reason(client):
    support = staff("Support", "chen")
    waiting = ask(support, "1234.56", payment=paid_payment("2000.00", "order:CX20261204"))
    declined = ask(support, "10.00")
    services.refund_decide(refund=declined, approve=False, by=staff("Finance"), reason="no")
    client.force_login(staff("Finance", "wang"))
    page = client.get("/admin/payments/refund/").content.decode()
    assert waiting.refund_no in page and declined.refund_no not in page
    assert "¥1,234.56" in page and "CX20261204" in page and "chen" in page
    assert "code used" in page
    everything = client.get("/admin/payments/refund/?status__exact=all").content.decode()
    assert declined.refund_no in everything


def test_the_queue_page_has_a_bounded_number_of_queries(client, django_assert_max_num_queries):
    support, finance = staff("Support"), staff("Finance")
    client.force_login(finance)
    for _n in range(3):
        ask(support, "10.00")
    client.get("/admin/payments/refund/")  # warm caches (content types, permissions)
    with django_assert_max_num_queries(20) as few:
        client.get("/admin/payments/refund/")
    for _n in range(12):
        ask(support, "10.00")
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get("/admin/payments/refund/").status_code == 200


def test_declining_in_the_queue_asks_for_the_reason_first(client):
    refund = ask(staff("Support", "chen"))
    client.force_login(staff("Finance", "wang"))
    form = client.post(
        "/admin/payments/refund/",
        {"action": "decline_requested", "_selected_action": [refund.pk]},
    )
    assert form.status_code == 200 and b'name="reason"' in form.content
    refund.refresh_from_db()
    assert refund.status == "requested"
    client.post(
        "/admin/payments/refund/",
        {
            "action": "decline_requested",
            "_selected_action": [refund.pk],
            "reason": "the code works",
        },
    )
    refund.refresh_from_db()
    assert (refund.status, refund.declined_by.username) == ("declined", "wang")
    assert refund.decision_note == "the code works" and FakeBackend.refunds == {}


def test_support_sees_the_queue_but_has_no_decision_actions(client):
    ask(staff("Support", "chen"))
    client.force_login(staff("Support", "li"))
    page = client.get("/admin/payments/refund/")
    assert page.status_code == 200
    assert b"approve_requested" not in page.content
    assert b"decline_requested" not in page.content
    refund = Refund.objects.get()
    client.post(
        "/admin/payments/refund/",
        {"action": "approve_requested", "_selected_action": [refund.pk]},
    )
    refund.refresh_from_db()
    assert refund.status == "requested"


def test_risk_cannot_open_the_refunds(client):
    client.force_login(staff("Risk"))
    assert client.get("/admin/payments/refund/").status_code == 403


def test_the_dashboards_pending_refunds_number_links_to_the_queue(client):
    ask(staff("Support"))
    client.force_login(staff("Finance"))
    page = client.get("/admin/").content.decode()
    assert "/admin/payments/refund/?status__exact=requested" in page


def test_a_decided_refunds_page_says_who_asked_who_declined_and_why(client):
    refund = ask(staff("Support", "chen"))
    services.refund_decide(
        refund=refund, approve=False, by=staff("Finance", "wang"), reason="the code works"
    )
    client.force_login(staff("Finance", "li"))
    page = client.get(f"/admin/payments/refund/{refund.pk}/change/").content.decode()
    assert "chen" in page and "wang" in page and "the code works" in page
    decided = client.get("/admin/payments/refund/?status__exact=declined").content.decode()
    assert "wang · the code works" in decided


def test_the_refund_form_says_the_rule_and_the_limit_in_yuan(client, settings):
    settings.REFUND_SELF_APPROVAL_LIMIT = Decimal("1500.00")
    payment = paid_payment("2000.00")
    client.force_login(staff("Finance"))
    page = client.get(f"/admin/payments/payment/{payment.pk}/refund/").content.decode()
    assert "¥1,500.00" in page and "¥2,000.00" in page


def test_a_refund_without_a_reason_is_refused_and_nothing_is_recorded():
    with pytest.raises(services.PaymentError, match="why"):
        services.refund_request(
            payment=paid_payment(),
            amount=Decimal("10.00"),
            reason=" ",
            requested_by=staff("Finance"),
        )
    assert (
        not Refund.objects.exists()
        and not LogEntry.objects.filter(action=LogEntry.Action.ACCESS).exists()
    )


def test_the_queue_with_counts_shown_still_renders(client):
    ask(staff("Support"))
    client.force_login(staff("Finance"))
    assert client.get("/admin/payments/refund/?_facets=True").status_code == 200
    assert client.get("/admin/payments/refund/?status__exact=bogus").status_code == 200
