import pytest

from marketplace.code_formats import (
    MAX_CODES_PER_UPLOAD,
    UploadUnreadable,
    code_errors,
    luhn_valid,
    parse_csv,
    parse_paste,
)
from marketplace.models import Brand


def brand(**fields) -> Brand:
    defaults = {
        "name": "Test Card",
        "code_min_length": 10,
        "code_max_length": 32,
        "code_charset": "A-Za-z0-9",
    }
    return Brand(**{**defaults, **fields})


def test_luhn_accepts_a_valid_number_and_refuses_a_typo():
    assert luhn_valid("4539578763621486")
    assert not luhn_valid("4539578763621487")
    assert not luhn_valid("45395787636214AB")


def test_a_well_formed_code_has_no_errors():
    assert code_errors(brand(), "ABCDEF123456", "1234") == []


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("SHORT1", "has 6 characters"),
        ("A" * 33, "has 33 characters"),
        ("ABCDEF12345!", "characters"),
        ("", "empty"),
    ],
)
def test_malformed_codes_are_refused_with_the_reason(code, expected):
    errors = code_errors(brand(), code)
    assert errors and expected in " ".join(errors)


def test_luhn_brand_refuses_a_wrong_check_digit():
    luhn = brand(code_charset="0-9", code_min_length=16, code_max_length=16, code_checksum="luhn")
    assert code_errors(luhn, "4539578763621486") == []
    assert "check digit" in " ".join(code_errors(luhn, "4539578763621487"))


def test_pin_rules_required_digits_and_length():
    with_pin = brand(pin_required=True, pin_min_length=6, pin_max_length=6)
    assert "need a PIN" in " ".join(code_errors(with_pin, "ABCDEF123456", ""))
    assert "digits only" in " ".join(code_errors(with_pin, "ABCDEF123456", "12ab56"))
    assert "has 4 digits" in " ".join(code_errors(with_pin, "ABCDEF123456", "1234"))
    assert code_errors(with_pin, "ABCDEF123456", "123456") == []


def test_errors_never_quote_the_code():
    secret = "SECRET!CODE#1"
    assert all(secret not in message for message in code_errors(brand(), secret))


def test_paste_keeps_line_numbers_skips_blanks_and_reads_pins():
    entries = parse_paste("code\nAAAA111122\n\nBBBB222233,1234\nCCCC3333 5678\nDDDD-4444-55\n")
    assert [(e.code, e.pin, e.line) for e in entries] == [
        ("AAAA111122", "", 2),
        ("BBBB222233", "1234", 4),
        ("CCCC3333", "5678", 5),
        ("DDDD-4444-55", "", 6),
    ]


def test_paste_of_too_many_lines_is_refused():
    with pytest.raises(UploadUnreadable):
        parse_paste("\n".join(f"CODE{i:08d}" for i in range(MAX_CODES_PER_UPLOAD + 1)))


def test_csv_with_header_and_gb18030_encoding():
    data = "卡号,PIN\nAAAA111122,1234\n\nBBBB222233\n".encode("gb18030")
    entries = parse_csv(data)
    assert [(e.code, e.pin, e.line) for e in entries] == [
        ("AAAA111122", "1234", 2),
        ("BBBB222233", "", 4),
    ]


def test_a_binary_file_is_unreadable():
    with pytest.raises(UploadUnreadable):
        parse_csv(b"\xff\xfe\x00\x81\x00garbage\x9d")


def test_csv_with_an_unterminated_quote_is_refused_naming_the_line_it_opens():
    data = b'code,pin\nABCD1234EFGH,1234\n"WXYZ5678IJKL,5678\nQRST9012MNOP,9012\n'
    with pytest.raises(UploadUnreadable) as err:
        parse_csv(data)
    assert "Line 3" in str(err.value)


def test_csv_with_a_quoted_field_spanning_lines_is_refused_rather_than_merged():
    data = b'ABCD1234EFGH,1234\n"WXYZ5678IJKL\nQRST9012MNOP",9012\n'
    with pytest.raises(UploadUnreadable) as err:
        parse_csv(data)
    assert "Line 2" in str(err.value)


def test_csv_with_a_stray_quote_inside_a_field_is_refused_naming_the_line():
    data = b'ABCD1234EFGH,1234\nWX"YZ"5678,5678\n'
    # A quote inside an unquoted field is read literally by CSV; a quote right after a
    # closing quote is the malformed case.
    with pytest.raises(UploadUnreadable) as err:
        parse_csv(b'ABCD1234EFGH,1234\n"WXYZ"5678,5678\n')
    assert "Line 2" in str(err.value)
    assert [entry.code for entry in parse_csv(data)] == ["ABCD1234EFGH", 'WX"YZ"5678']


def test_paste_reads_the_full_width_separators_a_chinese_keyboard_types():
    entries = parse_paste(
        "AAAA111122，1234\nBBBB222233；5678\nCCCC333344：9012\nDDDD444455\u30003456\n"
        "ＥＥＥＥ５５５５６６\n"
    )
    assert [(e.code, e.pin) for e in entries] == [
        ("AAAA111122", "1234"),
        ("BBBB222233", "5678"),
        ("CCCC333344", "9012"),
        ("DDDD444455", "3456"),
        ("EEEE555566", ""),
    ]


def test_paste_reads_an_ascii_colon_between_code_and_pin():
    assert [(e.code, e.pin) for e in parse_paste("AAAA111122:1234")] == [("AAAA111122", "1234")]


def test_csv_cells_typed_in_full_width_are_read_as_ascii():
    entries = parse_csv("ＡＡＡＡ１１１１２２,１２３４\n".encode())
    assert [(e.code, e.pin) for e in entries] == [("AAAA111122", "1234")]
