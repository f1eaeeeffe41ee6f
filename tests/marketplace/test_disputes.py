import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from marketplace import postings
from marketplace.errors import DisputeRefused, OrderNotFound
from marketplace.models import CardCode, Dispute, Order
from marketplace.selectors import listing_for_sale, seller_rating
from marketplace.services import (
    dispute_answer,
    dispute_open,
    dispute_refund,
    dispute_reject,
    order_create,
    seller_funds_mature,
)
from payments import ledger
from tests.accounts.factories import UserFactory
from tests.marketplace.conftest import journal_is_balanced

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivered(listing, buyer, pay):
    order = order_create(buyer=buyer, listing=listing, quantity=2)
    pay(order)
    return order


@pytest.fixture
def staff(db):
    return UserFactory(username="support-sue", is_staff=True)


def first_code(order) -> CardCode:
    return order.codes.order_by("id").first()


def open_dispute(order, code=None, **kwargs) -> Dispute:
    code = code or first_code(order)
    return dispute_open(
        order=order,
        buyer=order.buyer,
        code_id=code.pk,
        reason="used",
        note="Issuer says it was used.",
        **kwargs,
    )


def test_buyer_disputes_a_code_within_the_guarantee_window(delivered):
    dispute = open_dispute(delivered)
    delivered.refresh_from_db()
    assert dispute.status == "open" and delivered.status == "disputed"


def test_a_second_dispute_on_the_same_code_is_refused_with_a_clear_error(delivered):
    open_dispute(delivered)
    with pytest.raises(DisputeRefused) as caught:
        open_dispute(delivered)
    assert "already been disputed" in caught.value.message
    assert Dispute.objects.count() == 1


def test_disputes_after_the_guarantee_window_are_refused(delivered):
    Order.objects.filter(pk=delivered.pk).update(
        guarantee_until=timezone.now() - dt.timedelta(seconds=1)
    )
    delivered.refresh_from_db()
    with pytest.raises(DisputeRefused) as caught:
        open_dispute(delivered)
    assert "guarantee window" in caught.value.message
    assert not Dispute.objects.exists()


def test_only_the_buyer_disputes_and_only_codes_of_the_order(delivered, listing):
    with pytest.raises(OrderNotFound):
        dispute_open(
            order=delivered,
            buyer=UserFactory(),
            code_id=first_code(delivered).pk,
            reason="used",
            note="x",
        )
    stranger = listing.codes.filter(order__isnull=True).first()
    with pytest.raises(DisputeRefused):
        open_dispute(delivered, code=stranger)


def test_an_undelivered_order_cannot_be_disputed(listing, buyer):
    order = order_create(buyer=buyer, listing=listing, quantity=1)
    with pytest.raises(DisputeRefused):
        open_dispute(order, code=order.codes.first())


def test_the_seller_answers(delivered, seller):
    dispute = open_dispute(delivered)
    dispute = dispute_answer(dispute=dispute, seller=seller, answer="It was fine when I listed it.")
    assert dispute.status == "answered" and dispute.seller_answered_at
    with pytest.raises(DisputeRefused):
        dispute_answer(dispute=dispute, seller=UserFactory(), answer="not mine")


def test_refund_decision_marks_the_code_bad_reverses_the_seller_and_refunds_its_price(
    delivered, staff, refunds, listing
):
    pending = postings.seller_pending(listing.seller_id)
    dispute = open_dispute(delivered)
    dispute_refund(dispute=dispute, staff=staff, note="Issuer confirmed used")
    dispute.refresh_from_db()
    delivered.refresh_from_db()
    assert (dispute.status, dispute.decided_by, dispute.decision_note) == (
        "refunded",
        staff,
        "Issuer confirmed used",
    )
    assert CardCode.objects.get(pk=dispute.code_id).status == "bad"
    assert delivered.status == "delivered"
    assert ledger.balance(pending, natural=True) == Decimal("87.40")  # one of two codes left
    assert [(c["amount"], c["origin"]) for c in refunds.calls] == [(Decimal("92.00"), "shop")]
    assert journal_is_balanced()
    with pytest.raises(DisputeRefused):
        dispute_refund(dispute=dispute, staff=staff)
    assert len(refunds.calls) == 1


def test_a_refused_refund_changes_nothing(delivered, staff, refunds, listing):
    refunds.fail = True
    dispute = open_dispute(delivered)
    with pytest.raises(DisputeRefused):
        dispute_refund(dispute=dispute, staff=staff)
    dispute.refresh_from_db()
    assert dispute.status == "open"
    assert CardCode.objects.get(pk=dispute.code_id).status == "sold"
    assert ledger.balance(postings.seller_pending(listing.seller_id), natural=True) == Decimal(
        "174.80"
    )


def test_reject_decision_keeps_the_sale(delivered, staff, refunds, listing):
    dispute = open_dispute(delivered)
    dispute_reject(dispute=dispute, staff=staff, note="Seller showed proof")
    delivered.refresh_from_db()
    assert Dispute.objects.get().status == "rejected" and delivered.status == "delivered"
    assert refunds.calls == []
    assert ledger.balance(postings.seller_pending(listing.seller_id), natural=True) == Decimal(
        "174.80"
    )


def test_money_does_not_mature_while_a_dispute_is_open_then_matures_for_good_codes(
    delivered, staff, refunds, listing
):
    dispute = open_dispute(delivered)
    later = delivered.guarantee_until + dt.timedelta(hours=1)
    assert seller_funds_mature(now=later) == 0
    dispute_refund(dispute=dispute, staff=staff)
    assert seller_funds_mature(now=later) == 1
    assert ledger.balance(postings.seller_available(listing.seller_id), natural=True) == Decimal(
        "87.40"
    )
    assert ledger.balance(postings.seller_pending(listing.seller_id)) == 0
    assert journal_is_balanced()


def test_refunded_disputes_lower_the_seller_rating(delivered, staff, refunds, listing):
    assert seller_rating(sold=2, bad=0) == Decimal("100.0")
    dispute_refund(dispute=open_dispute(delivered), staff=staff)
    shown = listing_for_sale(listing_id=listing.pk)
    assert (shown.seller_sold, shown.seller_bad) == (2, 1)
    assert seller_rating(sold=shown.seller_sold, bad=shown.seller_bad) == Decimal("50.0")


def test_dispute_page_opens_a_dispute_and_refuses_a_second(client, delivered):
    client.force_login(delivered.buyer)
    code = first_code(delivered)
    assert client.get(f"/orders/{delivered.number}/dispute/").status_code == 200
    response = client.post(
        f"/orders/{delivered.number}/dispute/",
        {"code": code.pk, "reason": "invalid", "note": "Rejected at the till"},
    )
    assert response.status_code == 302
    again = client.post(
        f"/orders/{delivered.number}/dispute/",
        {"code": code.pk, "reason": "invalid", "note": "again"},
    )
    assert again.status_code == 400
    assert Dispute.objects.count() == 1


def test_dispute_page_is_404_for_others(client, delivered):
    client.force_login(UserFactory())
    assert client.get(f"/orders/{delivered.number}/dispute/").status_code == 404


def test_buyer_and_seller_name_a_disputed_code_by_its_masked_form(client, delivered):
    code = first_code(delivered)
    assert code.masked == "****" + code.hint and len(code.hint) == 4
    client.force_login(delivered.buyer)
    page = client.get(f"/orders/{delivered.number}/dispute/").content.decode()
    assert code.masked in page
    client.post(
        f"/orders/{delivered.number}/dispute/",
        {"code": code.pk, "reason": "invalid", "note": "Rejected"},
    )
    client.force_login(delivered.codes.first().listing.seller)
    dashboard = client.get("/sell/").content.decode()
    assert code.masked in dashboard and f"#{code.pk}" not in dashboard


def _png(size=(40, 20)) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x8825] = {2: (31, 14, 0)}  # a GPS position, as phone cameras write it
    image.save(out, format="PNG", exif=exif)
    return out.getvalue()


@pytest.fixture
def evidence_storage(tmp_path, monkeypatch):
    from django.core.files.storage import FileSystemStorage

    from marketplace.models import DisputeEvidence

    storage = FileSystemStorage(location=tmp_path)
    monkeypatch.setattr(DisputeEvidence._meta.get_field("file"), "storage", storage)
    return tmp_path


def _dispute_with_screenshot(client, order, upload):
    client.force_login(order.buyer)
    return client.post(
        f"/orders/{order.number}/dispute/",
        {
            "code": first_code(order).pk,
            "reason": "invalid",
            "note": "Till says invalid",
            "evidence": [upload],
        },
    )


def test_a_screenshot_is_stored_privately_without_metadata_and_shown_to_buyer_seller_and_staff(
    client, delivered, evidence_storage
):
    from django.contrib.auth.models import Group
    from django.core.files.uploadedfile import SimpleUploadedFile

    response = _dispute_with_screenshot(
        client, delivered, SimpleUploadedFile("till.png", _png(), "image/png")
    )
    assert response.status_code == 302
    item = Dispute.objects.get().evidence.get()
    url = f"/disputes/{item.dispute_id}/evidence/{item.pk}/"
    assert item.content_type == "image/png" and item.original_name == "till.png"
    stored = (evidence_storage / item.file.name).read_bytes()
    assert b"Exif" not in stored and stored.startswith(b"\x89PNG")
    assert url in client.get(f"/orders/{delivered.number}/dispute/").content.decode()
    served = client.get(url)
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"
    seller = delivered.listing.seller
    client.force_login(seller)
    assert url in client.get("/sell/").content.decode()
    assert client.get(url).status_code == 200
    support = UserFactory(is_staff=True)
    support.groups.add(Group.objects.get(name="Support"))
    client.force_login(support)
    assert client.get(url).status_code == 200
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302


@pytest.mark.parametrize(
    ("name", "data", "why"),
    [
        ("till.png", b"<script>alert(1)</script>", "not a readable image"),
        ("till.gif", "gif", "only PNG, JPEG or WebP"),
    ],
)
def test_a_file_that_is_not_a_screenshot_is_refused_and_nothing_is_saved(
    client, delivered, evidence_storage, name, data, why
):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    if data == "gif":
        out = io.BytesIO()
        Image.new("RGB", (4, 4)).save(out, format="GIF")
        data = out.getvalue()
    response = _dispute_with_screenshot(
        client, delivered, SimpleUploadedFile(name, data, "image/png")
    )
    assert response.status_code == 400
    assert why in response.content.decode() and name in response.content.decode()
    assert not Dispute.objects.exists()
    assert not any(evidence_storage.rglob("*.*"))


def test_a_screenshot_over_five_megabytes_is_refused(client, delivered, evidence_storage, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MAX_REQUEST_BYTES = 20 * 1024 * 1024  # past the site's request cap, to the image's own

    big = SimpleUploadedFile("big.png", _png() + b"\0" * (5 * 1024 * 1024), "image/png")
    response = _dispute_with_screenshot(client, delivered, big)
    assert response.status_code == 400 and "larger than 5 MB" in response.content.decode()
    assert not Dispute.objects.exists()
