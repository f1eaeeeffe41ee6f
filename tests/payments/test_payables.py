"""What the shop hands the platform: a typed reference that owns the ``<kind>:<key>`` form,
and frozen facts for risk."""

import dataclasses

import pytest

from payments import ledger
from payments.payables import PayableFacts, PayableRef, order_number_of


def test_an_order_reference_is_stored_as_order_colon_number():
    ref = PayableRef.order("C3F9A")
    assert str(ref) == "order:C3F9A" and ref.order_number == "C3F9A"
    assert PayableRef.prefix(PayableRef.ORDER) == "order:"


def test_a_stored_reference_parses_back_to_the_same_ref():
    assert PayableRef.parse("order:C3F9A") == PayableRef.order("C3F9A")
    assert PayableRef.parse("topup:ab12") == PayableRef.topup("ab12")


@pytest.mark.parametrize("reference", ["", None, "order:", ":x", "no-colon"])
def test_a_reference_of_no_known_form_names_nothing(reference):
    assert PayableRef.parse(reference) is None
    assert order_number_of(reference) is None


def test_only_order_references_name_an_order():
    assert order_number_of("order:C3F9A") == "C3F9A"
    assert order_number_of("topup:C3F9A") is None
    assert order_number_of("test:1") is None


@pytest.mark.parametrize(("kind", "key"), [("", "x"), ("order", ""), ("a:b", "x")])
def test_a_malformed_ref_is_refused(kind, key):
    with pytest.raises(ValueError, match="not a payable reference"):
        PayableRef(kind, key)


def test_refs_and_facts_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PayableRef.order("X").key = "Y"
    with pytest.raises(dataclasses.FrozenInstanceError):
        PayableFacts().disputes = 3


def test_the_platform_knows_only_its_own_party_and_the_shop_adds_sellers():
    from marketplace import postings

    assert ledger.buyer_wallet(7) == "buyer:7:wallet"
    assert postings.seller_pending(7) == "seller:7:pending"
    assert ledger._kind_of(postings.seller_paid_out(7)) == ledger.Kind.ASSET
    assert ledger._kind_of(postings.seller_available(7)) == ledger.Kind.LIABILITY
    assert ledger._owner_of(postings.seller_pending(7)) == 7
    assert not hasattr(ledger, "seller_pending")
