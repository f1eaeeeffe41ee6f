"""Card code formats: does a code (and PIN) look like one of this brand's cards, and how
sellers hand codes over in bulk (one per line, or CSV).

Validation is per code and returns human messages; the caller decides how to name the place
(API: the index in the list; uploads: the line number).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field

from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from marketplace.models import Brand
from marketplace.vault import normalise_code, normalise_pin

MAX_CODES_PER_UPLOAD = 10_000
MAX_UPLOAD_BYTES = 2 * 1024 * 1024
_PIN = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class CodeInput:
    """One code as the seller gave it; ``line`` is where it came from (1-based) if a file."""

    code: str = field(repr=False)
    pin: str = field(default="", repr=False)
    line: int | None = None


def luhn_valid(digits: str) -> bool:
    """The mod-10 check used by many card numbers."""
    if not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


@sensitive_variables()
def code_errors(brand: Brand, code: str, pin: str = "") -> list[str]:
    """Why ``code``/``pin`` cannot be one of ``brand``'s cards (empty list: it can).

    Messages never quote the code itself: error pages and logs must not carry secrets."""
    errors: list[str] = []
    code, pin = normalise_code(code), normalise_pin(pin)
    if not code:
        return [_("The code is empty.")]
    if not brand.code_min_length <= len(code) <= brand.code_max_length:
        if brand.code_min_length == brand.code_max_length:
            expected = _("%(brand)s codes have exactly %(min)d") % {
                "brand": brand.name,
                "min": brand.code_min_length,
            }
        else:
            expected = _("%(brand)s codes have %(min)d to %(max)d") % {
                "brand": brand.name,
                "min": brand.code_min_length,
                "max": brand.code_max_length,
            }
        errors.append(
            _("The code has %(n)d characters; %(expected)s.")
            % {"n": len(code), "expected": expected}
        )
    if not re.fullmatch(f"[{brand.code_charset}]+", code):
        errors.append(
            _("The code holds characters %(brand)s codes never use (allowed: %(charset)s).")
            % {"brand": brand.name, "charset": brand.code_charset}
        )
    elif brand.code_checksum == Brand.Checksum.LUHN and not luhn_valid(code):
        errors.append(_("The code's check digit is wrong (Luhn): a typo?"))
    if brand.pin_required and not pin:
        errors.append(_("%(brand)s cards need a PIN.") % {"brand": brand.name})
    if pin:
        if not _PIN.fullmatch(pin):
            errors.append(_("The PIN must be digits only."))
        elif not brand.pin_min_length <= len(pin) <= brand.pin_max_length:
            if brand.pin_min_length == brand.pin_max_length:
                expected = _("%(brand)s PINs have exactly %(min)d") % {
                    "brand": brand.name,
                    "min": brand.pin_min_length,
                }
            else:
                expected = _("%(brand)s PINs have %(min)d to %(max)d") % {
                    "brand": brand.name,
                    "min": brand.pin_min_length,
                    "max": brand.pin_max_length,
                }
            errors.append(
                _("The PIN has %(n)d digits; %(expected)s.") % {"n": len(pin), "expected": expected}
            )
    return errors


class UploadUnreadable(ValueError):
    """The pasted text or file cannot be read at all (encoding, size)."""


def half_width(text: str) -> str:
    """A Chinese keyboard types full-width forms (，；：, the ideographic space, ＡＢ１２):
    card codes and PINs are ASCII, so read them as their ASCII twins."""
    return unicodedata.normalize("NFKC", text)


def _split_line(text: str) -> tuple[str, str]:
    """ "CODE", "CODE,PIN", "CODE;PIN", "CODE:PIN", "CODE<TAB>PIN" or "CODE PIN"."""
    for separator in (",", ";", "\t", ":"):
        if separator in text:
            code, _sep, pin = text.partition(separator)
            return code.strip(), pin.strip()
    parts = text.split()
    if len(parts) == 2 and _PIN.fullmatch(parts[1]) and not _PIN.fullmatch(parts[0]):
        return parts[0], parts[1]
    return text.strip(), ""


_HEADER_WORDS = {"code", "codes", "card", "card code", "卡号", "卡密", "card number"}


@sensitive_variables()
def parse_paste(text: str) -> list[CodeInput]:
    """One code per line, optionally followed by its PIN; blank lines are skipped but still
    counted so error messages name the line the seller sees in their editor."""
    entries: list[CodeInput] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = half_width(raw).strip().lstrip("\ufeff")
        if not line:
            continue
        code, pin = _split_line(line)
        if number == 1 and code.lower() in _HEADER_WORDS:
            continue
        entries.append(CodeInput(code=code, pin=pin, line=number))
    if len(entries) > MAX_CODES_PER_UPLOAD:
        raise UploadUnreadable(
            _("%(n)d codes at once is too many: upload at most %(max)d per batch.")
            % {"n": len(entries), "max": MAX_CODES_PER_UPLOAD}
        )
    return entries


@sensitive_variables()
def parse_csv(data: bytes) -> list[CodeInput]:
    """A CSV file with the code in the first column and the PIN (if any) in the second; a
    first row naming the columns is skipped."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadUnreadable(_("The file is larger than 2 MB."))
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise UploadUnreadable(_("The file is neither UTF-8 nor GB18030 text."))
    entries: list[CodeInput] = []
    # strict: a stray or unterminated quote is an error, not a field that swallows the
    # following lines (which would merge two codes into one).
    reader = csv.reader(io.StringIO(text), strict=True)
    row_start = 1
    try:
        for row in reader:
            number = row_start
            row_start = reader.line_num + 1
            if any("\n" in cell or "\r" in cell for cell in row):
                raise UploadUnreadable(
                    _(
                        "Line %(line)d of the file opens a quote that runs over several lines: "
                        "a code or PIN cannot contain a line break."
                    )
                    % {"line": number}
                )
            cells = [half_width(cell).strip() for cell in row]
            if not any(cells):
                continue
            code = cells[0]
            pin = cells[1] if len(cells) > 1 else ""
            if not entries and code.lower() in _HEADER_WORDS:
                continue
            entries.append(CodeInput(code=code, pin=pin, line=number))
            if len(entries) > MAX_CODES_PER_UPLOAD:
                raise UploadUnreadable(
                    _("The file holds more than %(max)d codes: split it into batches.")
                    % {"max": MAX_CODES_PER_UPLOAD}
                )
    except csv.Error as exc:
        raise UploadUnreadable(
            _("Line %(line)d of the file is not valid CSV (%(error)s).")
            % {"line": row_start, "error": exc}
        )
    return entries
