"""ACP 5.1.0 signMethod 01 (CHANNELS.md §3.2): sha256 hex of the sorted k=v string, then
SHA256withRSA over the hex bytes. No PyPI SDK exists, so the construction is checked against
independent implementations of the same steps (hashlib + pycryptodomex, and the openssl CLI)."""

import base64
import datetime as dt
import hashlib
import inspect
import shutil
import subprocess

import pytest
from Cryptodome.Hash import SHA256
from Cryptodome.PublicKey import RSA
from Cryptodome.Signature import pkcs1_15
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from payments.channels.unionpay import wire as acp
from payments.sandbox.unionpay import certificates, gateway, identifiers
from payments.sandbox.unionpay import protocol as sandbox_protocol
from payments.sandbox.unionpay import settlement as sandbox_settlement

FIELDS = {
    "version": "5.1.0",
    "encoding": "UTF-8",
    "txnType": "01",
    "txnSubType": "01",
    "bizType": "000201",
    "signMethod": "01",
    "channelType": "07",
    "accessType": "0",
    "merId": "802310048993424",
    "orderId": "20261125ABCDEF0123456789",
    "txnTime": "20261125101500",
    "txnAmt": "12345",
    "currencyCode": "156",
    "backUrl": "http://testserver/payments/notify/unionpay/",
    "frontUrl": "",
}
EXPECTED_STRING = (
    "accessType=0&backUrl=http://testserver/payments/notify/unionpay/&bizType=000201&certId=69042905377&channelType=07"
    "&currencyCode=156&encoding=UTF-8&merId=802310048993424&orderId=20261125ABCDEF0123456789&signMethod=01"
    "&txnAmt=12345&txnSubType=01&txnTime=20261125101500&txnType=01&version=5.1.0"
)


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_string_to_sign_is_sorted_without_signature_and_blank_values(key):
    signed = acp.sign(FIELDS, key, "69042905377")
    assert "frontUrl" not in signed  # filterBlank before signing
    assert acp.sign_string(signed) == EXPECTED_STRING


def test_signature_matches_an_independent_computation(key):
    signed = acp.sign(FIELDS, key, "69042905377")
    hex_digest = hashlib.sha256(EXPECTED_STRING.encode("utf-8")).hexdigest()
    assert hex_digest == hex_digest.lower() and len(hex_digest) == 64
    independent = pkcs1_15.new(RSA.import_key(_pem(key))).sign(
        SHA256.new(hex_digest.encode("ascii"))
    )
    assert base64.b64decode(signed["signature"]) == independent


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")
def test_signature_matches_openssl_dgst(key, tmp_path):
    signed = acp.sign(FIELDS, key, "69042905377")
    (tmp_path / "key.pem").write_bytes(_pem(key))
    (tmp_path / "digest.txt").write_bytes(
        hashlib.sha256(EXPECTED_STRING.encode()).hexdigest().encode()
    )
    out = subprocess.run(
        [
            "openssl",
            "dgst",
            "-sha256",
            "-sign",
            str(tmp_path / "key.pem"),
            str(tmp_path / "digest.txt"),
        ],
        check=True,
        capture_output=True,
    ).stdout
    assert base64.b64decode(signed["signature"]) == out


def test_verify_accepts_the_message_and_rejects_any_change(key):
    signed = acp.sign(FIELDS, key, "69042905377")
    assert acp.verify(signed, key.public_key())
    assert not acp.verify({**signed, "txnAmt": "12346"}, key.public_key())
    assert not acp.verify({**signed, "extra": "1"}, key.public_key())
    assert not acp.verify({**signed, "signature": "not base64!"}, key.public_key())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert not acp.verify(signed, other.public_key())


def test_verify_drops_blank_fields_as_the_official_demo_does(key):
    """The official demo (BackRcvResponse, getAllRequestParam) removes every field whose value
    is empty before AcpService.validate: a message carrying ``reqReserved=`` verifies against
    the signature over its other fields."""
    signed = acp.sign(FIELDS, key, "69042905377")
    assert acp.verify({**signed, "reqReserved": "", "reserved": ""}, key.public_key())
    assert not acp.verify({**signed, "reqReserved": "x"}, key.public_key())


def test_simulator_signs_with_its_own_code_to_the_same_bytes(key):
    """The simulator implements signMethod 01 itself: its signature over the documented string
    equals an independent computation, the backend accepts it, and it accepts the backend's."""
    signed = sandbox_protocol.sign_message(FIELDS, key, "69042905377")
    hex_digest = hashlib.sha256(EXPECTED_STRING.encode("utf-8")).hexdigest()
    independent = pkcs1_15.new(RSA.import_key(_pem(key))).sign(
        SHA256.new(hex_digest.encode("ascii"))
    )
    assert base64.b64decode(signed["signature"]) == independent
    assert acp.verify(signed, key.public_key())
    assert sandbox_protocol.verify_message(acp.sign(FIELDS, key, "69042905377"), key.public_key())
    assert not sandbox_protocol.verify_message({**signed, "txnAmt": "1"}, key.public_key())


def test_simulator_does_not_borrow_the_backends_protocol_code():
    for module in (certificates, gateway, identifiers, sandbox_settlement, sandbox_protocol):
        assert "payments.channels.unionpay" not in inspect.getsource(module)


def test_raw_response_parsing_keeps_braced_values_and_pem_whole():
    text = (
        "respCode=00&reserved={a=1&b=2}&signPubKeyCert=-----BEGIN CERTIFICATE-----\r\n"
        "MII+/=\r\n-----END CERTIFICATE-----&x="
    )
    parsed = acp.parse_response(text)
    assert parsed == {
        "respCode": "00",
        "reserved": "{a=1&b=2}",
        "signPubKeyCert": "-----BEGIN CERTIFICATE-----\r\nMII+/=\r\n-----END CERTIFICATE-----",
        "x": "",
    }
    assert acp.parse_response(acp.render_response(parsed)) == parsed


# ---------------------------------------------------------------------------------------------
# signPubKeyCert validation (official SDK CertUtil.verifyCertificate)


def _chain():
    mat = certificates.material()
    return mat, mat.root_pem + mat.middle_pem


def test_sandbox_signing_cert_chains_to_its_root_and_names_unionpay():
    mat, trusted = _chain()
    cert = acp.verify_signing_cert(mat.sign_cert_pem, trusted)
    assert acp.owner_of(cert) == "中国银联股份有限公司"


def test_cert_from_another_ca_is_refused():
    mat, _ = _chain()
    rogue_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rogue_root = certificates.issue_certificate(
        subject=certificates.ROOT_CN,
        public_key=rogue_key.public_key(),
        issuer=certificates.ROOT_CN,
        issuer_key=rogue_key,
        ca=True,
    )
    with pytest.raises(ValueError, match="does not chain"):
        acp.verify_signing_cert(mat.sign_cert_pem, rogue_root)


def test_cert_signed_by_a_lookalike_middle_ca_is_refused():
    _, trusted = _chain()
    fake_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = certificates.issue_certificate(
        subject=certificates.SIGN_CN,
        public_key=fake_key.public_key(),
        issuer=certificates.MIDDLE_CN,
        issuer_key=fake_key,
        ca=False,
    )
    with pytest.raises(ValueError, match="does not chain"):
        acp.verify_signing_cert(forged, trusted)


def test_cert_owned_by_someone_else_is_refused():
    mat, trusted = _chain()
    merchant = certificates.issue_certificate(
        subject="041@Z12@802310048993424@00000001",
        public_key=mat.sign_key.public_key(),
        issuer=certificates.MIDDLE_CN,
        issuer_key=mat.middle_key,
        ca=False,
    )
    with pytest.raises(ValueError, match="not 中国银联股份有限公司"):
        acp.verify_signing_cert(merchant, trusted)


def test_expired_cert_is_refused():
    mat, trusted = _chain()
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2000)  # signing cert lives 1825 days
    with pytest.raises(ValueError, match="validity"):
        acp.verify_signing_cert(mat.sign_cert_pem, trusted, now=later)


def test_leaf_cert_cannot_act_as_middle_ca():
    mat, _ = _chain()
    leaf_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = certificates.issue_certificate(
        subject="Not a CA",
        public_key=leaf_key.public_key(),
        issuer=certificates.ROOT_CN,
        issuer_key=leaf_key,
        ca=False,
    )
    child = certificates.issue_certificate(
        subject=certificates.SIGN_CN,
        public_key=leaf_key.public_key(),
        issuer="Not a CA",
        issuer_key=leaf_key,
        ca=False,
    )
    with pytest.raises(ValueError):
        acp.verify_signing_cert(child, mat.root_pem + leaf)
