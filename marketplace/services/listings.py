"""Selling: listings and their codes (validated, de-duplicated, encrypted), price and status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_variables

from marketplace import vault
from marketplace.code_formats import MAX_CODES_PER_UPLOAD, CodeInput, code_errors
from marketplace.errors import CodesInvalid, ListingUnavailable
from marketplace.models import Brand, CardCode, Listing

_LOOKUP_CHUNK = 900  # stays under every backend's bound-parameter limit


@dataclass(frozen=True)
class _SealedCode:
    fingerprint: str
    code_encrypted: bytes
    pin_encrypted: bytes
    hint: str


def _where(entry: CodeInput, index: int) -> str:
    return (
        _("line %(n)d") % {"n": entry.line}
        if entry.line is not None
        else _("code %(n)d") % {"n": index}
    )


def _existing_fingerprints(fingerprints: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(fingerprints), _LOOKUP_CHUNK):
        chunk = fingerprints[start : start + _LOOKUP_CHUNK]
        found.update(
            CardCode.objects.filter(fingerprint__in=chunk).values_list("fingerprint", flat=True)
        )
    return found


@sensitive_variables()
def codes_split(
    *, brand: Brand, codes: Sequence[CodeInput]
) -> tuple[list[CodeInput], dict[int, list[str]]]:
    """The batch's valid codes and, for the others, why each was refused (keyed by position
    in ``codes``): for a seller who chose to list the valid lines and fix the rest later."""
    try:
        codes_check(brand=brand, codes=codes)
    except CodesInvalid as exc:
        if not exc.errors:
            raise
        return [entry for index, entry in enumerate(codes) if index not in exc.errors], exc.errors
    return list(codes), {}


@sensitive_variables()
def codes_check(*, brand: Brand, codes: Sequence[CodeInput]) -> list[str]:
    """Fingerprints of a valid batch; raises :class:`CodesInvalid` naming every bad code
    (format, repeated in the batch, already listed anywhere on Cardex)."""
    if not codes:
        raise CodesInvalid(_("Add at least one code."), errors={})
    if len(codes) > MAX_CODES_PER_UPLOAD:
        raise CodesInvalid(
            _("At most %(max)d codes per batch.") % {"max": MAX_CODES_PER_UPLOAD}, errors={}
        )
    errors: dict[int, list[str]] = {}
    fingerprints: list[str] = []
    first_seen: dict[str, int] = {}
    for index, entry in enumerate(codes):
        problems = code_errors(brand, entry.code, entry.pin)
        fingerprint = vault.fingerprint(entry.code)
        fingerprints.append(fingerprint)
        if not problems and fingerprint in first_seen:
            earlier = first_seen[fingerprint]
            problems.append(
                _("The same code is already in this batch at %(where)s.")
                % {"where": _where(codes[earlier], earlier)}
            )
        first_seen.setdefault(fingerprint, index)
        if problems:
            errors[index] = problems
    taken = _existing_fingerprints(fingerprints)
    for index, fingerprint in enumerate(fingerprints):
        if fingerprint in taken:
            errors.setdefault(index, []).append(_("This code is already listed on Cardex."))
    if errors:
        raise CodesInvalid(
            ngettext(
                "%(n)d code was refused; nothing was saved.",
                "%(n)d codes were refused; nothing was saved.",
                len(errors),
            )
            % {"n": len(errors)},
            errors=dict(sorted(errors.items())),
        )
    return fingerprints


@sensitive_variables()
def _seal(codes: Sequence[CodeInput], fingerprints: Sequence[str]) -> list[_SealedCode]:
    return [
        _SealedCode(
            fingerprint=fingerprint,
            code_encrypted=vault.encrypt(vault.normalise_code(entry.code)),
            hint=vault.hint(entry.code),
            pin_encrypted=vault.encrypt(vault.normalise_pin(entry.pin)),
        )
        for entry, fingerprint in zip(codes, fingerprints, strict=True)
    ]


def _store(
    *, listing: Listing, brand: Brand, codes: Sequence[CodeInput], sealed: Sequence[_SealedCode]
) -> int:
    try:
        with transaction.atomic():
            CardCode.objects.bulk_create(
                [
                    CardCode(
                        listing=listing,
                        code_encrypted=item.code_encrypted,
                        pin_encrypted=item.pin_encrypted,
                        fingerprint=item.fingerprint,
                        hint=item.hint,
                    )
                    for item in sealed
                ],
                batch_size=1000,
            )
    except IntegrityError:
        # Someone listed one of these codes between our check and our insert: say which.
        codes_check(brand=brand, codes=codes)
        raise
    return len(sealed)


@sensitive_variables()
def listing_create(
    *,
    seller,
    brand: Brand,
    face_value: Decimal,
    price: Decimal,
    codes: Sequence[CodeInput],
    currency: str = "CNY",
    screen: bool = True,
) -> Listing:
    """A new listing with its codes, all or nothing. Raises ``ValidationError`` for the
    listing's fields and :class:`CodesInvalid` for the codes. Risk screens the upload
    (``screen``; only trusted data loads skip it): the listing may come back paused for an
    analyst or withdrawn."""
    if not brand.active:
        raise ListingUnavailable(
            _("%(brand)s is not accepting new listings.") % {"brand": brand.name}
        )
    listing = Listing(
        seller=seller, brand=brand, face_value=face_value, price=price, currency=currency
    )
    listing.full_clean()
    fingerprints = codes_check(brand=brand, codes=codes)
    sealed = _seal(codes, fingerprints)
    with transaction.atomic():
        listing.save()
        _store(listing=listing, brand=brand, codes=codes, sealed=sealed)
        if screen:
            _upload_screen(listing=listing, codes=len(sealed))
    return listing


@sensitive_variables()
def listing_codes_add(
    *, listing: Listing, seller, codes: Sequence[CodeInput], screen: bool = True
) -> int:
    """Add codes to one of the seller's listings (all or nothing); returns how many. Screened
    by risk like a new listing (``listing.status`` then tells what it decided)."""
    _check_owner(listing, seller)
    if listing.status == Listing.Status.WITHDRAWN:
        raise ListingUnavailable(_("This listing was withdrawn; create a new one."))
    fingerprints = codes_check(brand=listing.brand, codes=codes)
    sealed = _seal(codes, fingerprints)
    with transaction.atomic():
        added = _store(listing=listing, brand=listing.brand, codes=codes, sealed=sealed)
        Listing.objects.filter(pk=listing.pk).update(updated_at=timezone.now())
        if screen:
            _upload_screen(listing=listing, codes=added)
    return added


def _upload_screen(*, listing: Listing, codes: int) -> str:
    """Risk judges the upload inside its transaction, so a held listing is never on sale,
    even for a moment. A seller on the block list has the upload withdrawn; any other
    review or block decision holds the listing "under review" until an analyst releases or
    withdraws it
    (a score alone never destroys a seller's listing); allow and challenge leave it on sale."""
    from marketplace.selectors import seller_upload_facts
    from risk.engine import assess_seller

    result = assess_seller(seller_upload_facts(listing=listing, codes=codes))
    if any(reason.startswith("blocklist_") for reason in result.reasons):
        listing.status = Listing.Status.WITHDRAWN
        listing.save(update_fields=["status", "updated_at"])
        listing.codes.filter(status=CardCode.Status.AVAILABLE).update(
            status=CardCode.Status.WITHDRAWN
        )
    elif result.decision in {"review", "block"} and listing.status == Listing.Status.ACTIVE:
        listing.status = Listing.Status.UNDER_REVIEW
        listing.save(update_fields=["status", "updated_at"])
    return result.decision


def _check_owner(listing: Listing, seller) -> None:
    if listing.seller_id != getattr(seller, "pk", None):
        raise ListingUnavailable(_("This listing is not yours."))


def listing_update(
    *, listing: Listing, seller, price: Decimal | None = None, status: str | None = None
) -> Listing:
    """Reprice, pause, resume or withdraw. Withdrawing takes every unsold, unreserved code off
    sale for good; codes held by an order stay with it (and are withdrawn if it lapses)."""
    _check_owner(listing, seller)
    return _listing_change(listing=listing, price=price, status=status, by_seller=True)


def listing_moderate(*, listing: Listing, staff, status: str) -> Listing:
    """Staff (Risk) pause or withdraw a listing, e.g. a new seller dumping suspicious codes,
    or release one that was paused (an upload held for review) back to sale."""
    if status not in {
        Listing.Status.ACTIVE,
        Listing.Status.PAUSED,
        Listing.Status.WITHDRAWN,
        Listing.Status.UNDER_REVIEW,
    }:
        raise ListingUnavailable(_("Staff may only pause, hold, release or withdraw a listing."))
    return _listing_change(listing=listing, price=None, status=status)


def _listing_change(
    *, listing: Listing, price: Decimal | None, status: str | None, by_seller: bool = False
) -> Listing:
    """A seller can neither lift nor set a risk hold: while a listing is under review, the
    seller may only withdraw it (take the codes off Cardex); price and sale wait for Risk."""
    with transaction.atomic():
        listing = (
            Listing.objects.select_for_update(of=("self",))
            .select_related("brand")
            .get(pk=listing.pk)
        )
        if listing.status == Listing.Status.WITHDRAWN:
            raise ListingUnavailable(_("This listing was withdrawn and cannot change any more."))
        if by_seller and status == Listing.Status.UNDER_REVIEW:
            raise ListingUnavailable(_("Only our risk team puts a listing under review."))
        if (
            by_seller
            and listing.status == Listing.Status.UNDER_REVIEW
            and (price is not None or status != Listing.Status.WITHDRAWN)
        ):
            raise ListingUnavailable(
                _(
                    "This listing is under review by our risk team; it goes on sale once they "
                    "release it."
                )
            )
        if price is not None:
            listing.price = price
        if status is not None:
            if status not in Listing.Status.values:
                raise ListingUnavailable(_("Unknown listing status."))
            listing.status = status
        listing.full_clean()
        listing.save()
        if listing.status == Listing.Status.WITHDRAWN:
            listing.codes.filter(status=CardCode.Status.AVAILABLE).update(
                status=CardCode.Status.WITHDRAWN
            )
    return listing


def card_code_withdraw(*, code: CardCode, seller) -> CardCode:
    """Take one unsold code off sale (e.g. the seller used the card after all)."""
    _check_owner(code.listing, seller)
    updated = CardCode.objects.filter(pk=code.pk, status=CardCode.Status.AVAILABLE).update(
        status=CardCode.Status.WITHDRAWN
    )
    if not updated:
        raise ListingUnavailable(
            _("Only available codes can be withdrawn; this one is reserved or sold.")
        )
    code.refresh_from_db()
    return code
