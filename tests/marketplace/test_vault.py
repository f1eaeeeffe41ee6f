import os
import subprocess
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from marketplace import vault
from marketplace.code_formats import CodeInput
from marketplace.models import CardCode
from marketplace.services import RevealedCode, listing_create
from tests.marketplace.factories import CardCodeFactory

PLAIN = "SECRETCODE4242XYZ"
PIN = "91827364"


def test_encrypt_then_decrypt_gives_the_secret_back():
    token = vault.encrypt(PLAIN)
    assert PLAIN.encode() not in token
    assert vault.decrypt(token) == PLAIN


def test_empty_pin_stays_empty():
    assert vault.encrypt("") == b""
    assert vault.decrypt(b"") == ""


def test_older_keys_still_decrypt_and_the_newest_encrypts(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CARD_VAULT_KEYS = [old]
    token = vault.encrypt(PLAIN)
    settings.CARD_VAULT_KEYS = [new, old]
    assert vault.decrypt(token) == PLAIN
    assert not vault.is_current(token)
    assert Fernet(new.encode()).decrypt(vault.encrypt(PLAIN)) == PLAIN.encode()


def test_a_token_no_configured_key_opens_is_a_vault_error(settings):
    token = vault.encrypt(PLAIN)
    settings.CARD_VAULT_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(vault.VaultError) as caught:
        vault.decrypt(token)
    assert PLAIN not in str(caught.value)


def test_fingerprint_is_keyed_and_ignores_separators_and_case(settings):
    assert vault.fingerprint("abcd-1234 5678") == vault.fingerprint("ABCD12345678")
    first = vault.fingerprint(PLAIN)
    settings.CARD_VAULT_FINGERPRINT_KEY = "another-key"
    assert vault.fingerprint(PLAIN) != first
    assert PLAIN.lower() not in first


@pytest.mark.django_db
def test_card_code_rows_hold_no_plaintext(seller, brand):
    listing_create(
        seller=seller,
        brand=brand,
        face_value=Decimal("100"),
        price=Decimal("90"),
        codes=[CodeInput(code=PLAIN, pin=PIN)],
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM marketplace_cardcode")
        rows = cursor.fetchall()
    assert rows
    dumped = repr(rows).encode() + b"".join(
        bytes(v) for row in rows for v in row if isinstance(v, bytes | memoryview)
    )
    assert PLAIN.encode() not in dumped and PIN.encode() not in dumped
    code = CardCode.objects.get()
    assert vault.decrypt(code.code_encrypted) == PLAIN and vault.decrypt(code.pin_encrypted) == PIN


@pytest.mark.django_db
def test_str_and_repr_never_show_the_secret():
    code = CardCodeFactory(plain=PLAIN, pin=PIN)
    revealed = RevealedCode(id=code.pk, code=PLAIN, pin=PIN)
    for text in (str(code), repr(code), repr(revealed), repr(CodeInput(code=PLAIN, pin=PIN))):
        assert PLAIN not in text and PIN not in text


@pytest.mark.django_db
def test_rotate_card_keys_re_encrypts_with_the_newest_key_in_resumable_batches(settings, capsys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.CARD_VAULT_KEYS = [old]
    codes = [CardCodeFactory(plain=f"ROTATE{i:06d}", pin="1234") for i in range(5)]
    settings.CARD_VAULT_KEYS = [new, old]

    call_command("rotate_card_keys", "--after-id", str(codes[1].pk), "--batch-size", "2")
    out = capsys.readouterr().out
    assert "3 re-encrypted" in out and f"last id {codes[-1].pk}" in out
    still_old = CardCode.objects.get(pk=codes[0].pk)
    assert not vault.is_current(still_old.code_encrypted)

    call_command("rotate_card_keys", "--batch-size", "2")
    assert "done: 2 of 5" in capsys.readouterr().out
    settings.CARD_VAULT_KEYS = [new]  # the old key can go now
    for code in CardCode.objects.order_by("pk"):
        assert vault.decrypt(code.code_encrypted).startswith("ROTATE")
        assert vault.decrypt(code.pin_encrypted) == "1234"


@pytest.mark.django_db
def test_rotating_again_changes_nothing(capsys):
    CardCodeFactory.create_batch(3)
    before = list(CardCode.objects.order_by("pk").values_list("code_encrypted", flat=True))
    call_command("rotate_card_keys")
    assert "done: 0 of 3" in capsys.readouterr().out
    after = list(CardCode.objects.order_by("pk").values_list("code_encrypted", flat=True))
    assert [bytes(t) for t in before] == [bytes(t) for t in after]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_postgres_dump_holds_no_plaintext_code(seller, brand):
    listing_create(
        seller=seller,
        brand=brand,
        face_value=Decimal("100"),
        price=Decimal("90"),
        codes=[CodeInput(code=PLAIN, pin=PIN), CodeInput(code="ANOTHERSECRET99", pin="55667788")],
    )
    db = connection.settings_dict
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    dump = subprocess.run(
        [
            "pg_dump",
            "-h",
            db.get("HOST") or "127.0.0.1",
            "-p",
            str(db.get("PORT") or 5432),
            "-U",
            db.get("USER") or "postgres",
            "--data-only",
            db["NAME"],
        ],
        capture_output=True,
        env=env,
        check=True,
    ).stdout
    assert b"marketplace_cardcode" in dump
    for secret in (PLAIN, PIN, "ANOTHERSECRET99", "55667788"):
        assert secret.encode() not in dump
        assert secret.lower().encode() not in dump
