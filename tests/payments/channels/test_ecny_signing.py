"""SM2/SM3 signing of the e-CNY acquirer protocol (docs/channels/ecny.md): Tongsuo under the
hood, cross-checked against OpenSSL's independent SM2 and SM3 (no PyPI SDK exists)."""

import base64
import inspect
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes

from payments.channels.ecny import wire
from payments.sandbox.ecny import bank
from payments.sandbox.ecny import protocol as bank_protocol

MESSAGE = (
    b'appId=&bizContent={"orderId":"A1"}&merId=ECNYTEST001&nonce=ab'
    b"&reqTime=20261125101500&version=1.0"
)


@pytest.fixture(scope="module")
def pair():
    return wire.sm2_keypair()


def _openssl_has_sm2() -> bool:
    if shutil.which("openssl") is None:
        return False
    out = subprocess.run(
        ["openssl", "ecparam", "-list_curves"], capture_output=True, text=True
    ).stdout
    return "SM2" in out


needs_openssl_sm2 = pytest.mark.skipif(not _openssl_has_sm2(), reason="openssl without SM2")
SM2_ALGORITHM = bytes.fromhex(
    "301306072a8648ce3d020106082a811ccf5501822d"
)  # id-ecPublicKey + sm2p256v1


def _spki(public_hex: str) -> bytes:
    point = bytes.fromhex(public_hex)
    body = SM2_ALGORITHM + b"\x03" + bytes([len(point) + 1]) + b"\x00" + point
    return b"\x30" + bytes([len(body)]) + body


def _sec1(private_hex: str, public_hex: str) -> bytes:
    inner = (
        b"\x02\x01\x01\x04\x20"
        + bytes.fromhex(private_hex)
        + b"\xa0\x0a\x06\x08\x2a\x81\x1c\xcf\x55\x01\x82\x2d"
        + b"\xa1\x44\x03\x42\x00"
        + bytes.fromhex(public_hex)
    )
    return b"\x30" + bytes([len(inner)]) + inner


def test_keypair_public_key_is_on_the_curve(pair):
    private, public = pair
    assert len(private) == 64 and public.startswith("04") and len(public) == 130
    assert wire.sm2_public_of(private) == public
    assert (
        wire.Credentials.from_mapping(
            {"merchant_private_key": private, "bank_public_key": public}
        ).public_key
        == public
    )


def test_sign_and_verify_round_trip(pair):
    private, public = pair
    signature = wire.sm2_sign(private, public, MESSAGE)
    assert wire.sm2_verify(public, MESSAGE, signature)
    assert not wire.sm2_verify(public, MESSAGE + b"x", signature)
    other_private, other_public = wire.sm2_keypair()
    assert not wire.sm2_verify(other_public, MESSAGE, signature)


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "not base64!",
        base64.b64encode(b"\x30\x00").decode(),
        base64.b64encode(b"garbage").decode(),
    ],
)
def test_malformed_signatures_do_not_verify(pair, signature):
    assert not wire.sm2_verify(pair[1], MESSAGE, signature)


def test_off_curve_public_key_is_refused():
    with pytest.raises(ValueError, match="curve"):
        wire.public_point("04" + "1" * 128)


def test_keys_whose_x_starts_with_0_or_4_still_work():
    # Leading 0 or 4 hex digits in x must survive the '04' prefix handling.
    for _ in range(200):
        private, public = wire.sm2_keypair()
        if public[2] in "04":
            break
    else:
        pytest.skip("no such key drawn")
    signature = wire.sm2_sign(private, public, MESSAGE)
    assert wire.sm2_verify(public, MESSAGE, signature)


def test_sm3_matches_an_independent_implementation():
    digest = hashes.Hash(hashes.SM3())
    digest.update(MESSAGE)
    assert wire.sm3_hex(MESSAGE) == digest.finalize().hex()
    # GB/T 32905 example 1: SM3("abc")
    assert (
        wire.sm3_hex(b"abc") == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )


@needs_openssl_sm2
def test_openssl_verifies_our_signature(pair, tmp_path):
    private, public = pair
    (tmp_path / "pub.der").write_bytes(_spki(public))
    (tmp_path / "msg").write_bytes(MESSAGE)
    (tmp_path / "sig").write_bytes(base64.b64decode(wire.sm2_sign(private, public, MESSAGE)))
    result = subprocess.run(
        [
            "openssl",
            "pkeyutl",
            "-verify",
            "-pubin",
            "-keyform",
            "DER",
            "-inkey",
            str(tmp_path / "pub.der"),
            "-rawin",
            "-digest",
            "sm3",
            "-pkeyopt",
            "distid:1234567812345678",
            "-in",
            str(tmp_path / "msg"),
            "-sigfile",
            str(tmp_path / "sig"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


@needs_openssl_sm2
def test_we_verify_an_openssl_signature(pair, tmp_path):
    private, public = pair
    (tmp_path / "key.der").write_bytes(_sec1(private, public))
    (tmp_path / "msg").write_bytes(MESSAGE)
    subprocess.run(
        [
            "openssl",
            "pkeyutl",
            "-sign",
            "-keyform",
            "DER",
            "-inkey",
            str(tmp_path / "key.der"),
            "-rawin",
            "-digest",
            "sm3",
            "-pkeyopt",
            "distid:1234567812345678",
            "-in",
            str(tmp_path / "msg"),
            "-out",
            str(tmp_path / "sig"),
        ],
        check=True,
        capture_output=True,
    )
    signature = base64.b64encode((tmp_path / "sig").read_bytes()).decode()
    assert wire.sm2_verify(public, MESSAGE, signature)


def test_envelope_string_to_sign_skips_sign_and_empty_members(pair):
    envelope = {
        "version": "1.0",
        "merId": "M1",
        "appId": "",
        "bizContent": '{"a":1}',
        "reqTime": "20261125101500",
        "sign": "zzz",
    }
    assert (
        wire.sign_string(envelope)
        == 'bizContent={"a":1}&merId=M1&reqTime=20261125101500&version=1.0'
    )
    signed = wire.sign_envelope(envelope, *pair)
    assert wire.verify_envelope(signed, pair[1])
    assert not wire.verify_envelope({**signed, "bizContent": '{"a":2}'}, pair[1])
    assert not wire.verify_envelope({**signed, "sign": None}, pair[1])


# ---------------------------------------------------------------------------------------------
# The simulated bank signs with its own SM2 (integer arithmetic), checked against OpenSSL too


def test_simulator_and_backend_verify_each_others_signatures(pair):
    private, public = pair
    assert wire.sm2_verify(public, MESSAGE, bank_protocol.sign(private, public, MESSAGE))
    assert bank_protocol.verify(public, MESSAGE, wire.sm2_sign(private, public, MESSAGE))
    assert not bank_protocol.verify(public, MESSAGE + b"x", wire.sm2_sign(private, public, MESSAGE))


def test_simulator_keypair_and_sm3_follow_the_standard():
    private, public = bank_protocol.keypair()
    assert wire.sm2_public_of(private) == public
    # GB/T 32905 example 1: SM3("abc")
    assert (
        bank_protocol.sm3_hex(b"abc")
        == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )


def test_simulator_envelope_string_skips_sign_and_empty_members():
    envelope = {"version": "1.0", "merId": "M1", "appId": "", "bizContent": '{"a":1}', "sign": "z"}
    assert bank_protocol.string_to_sign(envelope) == 'bizContent={"a":1}&merId=M1&version=1.0'


@needs_openssl_sm2
def test_openssl_verifies_the_simulators_signature(pair, tmp_path):
    private, public = pair
    (tmp_path / "pub.der").write_bytes(_spki(public))
    (tmp_path / "msg").write_bytes(MESSAGE)
    signature = bank_protocol.sign(private, public, MESSAGE)
    (tmp_path / "sig").write_bytes(base64.b64decode(signature))
    result = subprocess.run(
        ["openssl", "pkeyutl", "-verify", "-pubin", "-keyform", "DER",
         "-inkey", str(tmp_path / "pub.der"), "-rawin", "-digest", "sm3",
         "-pkeyopt", "distid:1234567812345678", "-in", str(tmp_path / "msg"),
         "-sigfile", str(tmp_path / "sig")],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


@needs_openssl_sm2
def test_simulator_verifies_an_openssl_signature(pair, tmp_path):
    private, public = pair
    (tmp_path / "key.der").write_bytes(_sec1(private, public))
    (tmp_path / "msg").write_bytes(MESSAGE)
    subprocess.run(
        ["openssl", "pkeyutl", "-sign", "-keyform", "DER", "-inkey", str(tmp_path / "key.der"),
         "-rawin", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678",
         "-in", str(tmp_path / "msg"), "-out", str(tmp_path / "sig")],
        check=True,
        capture_output=True,
    )  # fmt: skip
    signature = base64.b64encode((tmp_path / "sig").read_bytes()).decode()
    assert bank_protocol.verify(public, MESSAGE, signature)


def test_simulator_does_not_borrow_the_backends_signing():
    for module in (bank, bank_protocol):
        assert "payments.channels.ecny import wire" not in inspect.getsource(module)
