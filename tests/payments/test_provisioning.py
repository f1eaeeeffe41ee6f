"""The simulators' provisioning of the demo channel accounts seed_demo relies on: idempotent,
provisioned at the sandbox, pointed where the simulators are served, and with a bank
aggregator account as the second provider for Alipay and WeChat Pay."""

from decimal import Decimal

import pytest
from cryptography.fernet import Fernet

from payments.accounts import backend_for
from payments.models import ChannelAccount, ErrorCode
from payments.sandbox.models import SandboxMerchant
from payments.sandbox.provisioning import DEMO_ACCOUNTS, demo_channels_ensure, demo_sandbox_url

pytestmark = pytest.mark.django_db


def snapshot():
    return {
        a.code: (a.pk, a.backend, a.merchant_id, a.base_url, a.credentials)
        for a in ChannelAccount.objects.all()
    }


def test_running_twice_gives_the_same_accounts_and_readable_credentials():
    first = demo_channels_ensure()
    before = snapshot()
    second = demo_channels_ensure()
    assert [a.pk for a in first] == [a.pk for a in second]
    assert snapshot() == before
    assert set(before) == {row[0] for row in DEMO_ACCOUNTS}
    for account in ChannelAccount.objects.exclude(backend="balance"):
        assert account.credentials, account.code  # decrypts, and is not empty
        assert account.base_url == f"http://testserver/sandbox/{account.backend}/"


def test_one_sandbox_merchant_per_account():
    demo_channels_ensure()
    demo_channels_ensure()
    accounts = ChannelAccount.objects.exclude(backend="balance")
    assert SandboxMerchant.objects.count() == accounts.count()
    for account in accounts:
        assert (
            SandboxMerchant.objects.filter(
                channel=account.backend, merchant_id=account.merchant_id
            ).count()
            == 1
        ), account.code


def test_the_bank_aggregator_account_is_a_cheaper_weighted_second_provider():
    demo_channels_ensure()
    bank = ChannelAccount.objects.get(code="bank-polypay")
    assert (bank.backend, bank.name) == ("ecny", "Bank aggregated QR (Alipay/WeChat)")
    assert sorted(bank.methods) == ["alipay", "wechatpay"]
    assert bank.fee_percent == Decimal("0.800") and bank.enabled
    ecny = ChannelAccount.objects.get(code="ecny")
    assert bank.merchant_id and bank.merchant_id != ecny.merchant_id
    assert bank.credentials != ecny.credentials
    for direct in ChannelAccount.objects.filter(code__in=["alipay", "wechatpay"]):
        assert bank.weight < direct.weight
    assert bank.notify_url() == "http://testserver/payments/notify/bank-polypay/"
    # its credentials work at the bank: an unknown order is answered, signed and verified
    answer = backend_for(bank).query(out_trade_no="20261125NEVERSENT0000001")
    assert (answer.outcome, answer.error_code) == ("failed", "ORDER_NOT_EXIST")
    assert ErrorCode.objects.filter(backend="ecny", code="PAY_METHOD_NOT_OPEN").exists()


def test_staff_edits_survive_a_second_run():
    demo_channels_ensure()
    ChannelAccount.objects.filter(code="bank-polypay").update(
        weight=Decimal("0.20"), enabled=False, name="Bank QR (off)"
    )
    demo_channels_ensure()
    bank = ChannelAccount.objects.get(code="bank-polypay")
    assert (bank.weight, bank.enabled, bank.name) == (Decimal("0.20"), False, "Bank QR (off)")


def test_credentials_sealed_with_a_retired_key_are_provisioned_again():
    demo_channels_ensure()
    account = ChannelAccount.objects.get(code="bank-polypay")
    original = account.credentials
    stranger = Fernet(Fernet.generate_key()).encrypt(b'{"merchant_private_key": "00"}')
    ChannelAccount.objects.filter(pk=account.pk).update(credentials_encrypted=stranger)
    demo_channels_ensure()
    account.refresh_from_db()
    assert account.credentials == original


def test_an_account_pointed_at_a_real_provider_is_left_alone():
    demo_channels_ensure()
    ChannelAccount.objects.filter(code="alipay").update(
        base_url="https://openapi.alipay.com/gateway.do", credentials_encrypted=b""
    )
    demo_channels_ensure()
    account = ChannelAccount.objects.get(code="alipay")
    assert account.base_url == "https://openapi.alipay.com/gateway.do"
    assert account.credentials == {}


def test_serving_on_another_port_reissues_sandbox_credentials_that_carry_urls(settings):
    settings.SITE_URL = "http://127.0.0.1:8000"
    demo_channels_ensure()
    settings.SITE_URL = "http://127.0.0.1:8123"
    demo_channels_ensure()
    card = ChannelAccount.objects.get(code="card")
    assert card.base_url == "http://127.0.0.1:8123/sandbox/card/"
    assert card.credentials["hosted_page_url"].startswith("http://127.0.0.1:8123/")


def test_simulators_served_apart_get_the_accounts_and_their_links(settings):
    settings.SANDBOX_URL = "http://127.0.0.1:9001"
    demo_channels_ensure()
    card = ChannelAccount.objects.get(code="card")
    assert card.base_url == "http://127.0.0.1:9001/sandbox/card/"
    assert card.credentials["hosted_page_url"].startswith("http://127.0.0.1:9001/sandbox/card/")
    # notifications still go to the site, not to the simulators' process
    assert card.notify_url() == "http://testserver/payments/notify/card/"


def test_an_explicit_address_wins_over_the_settings():
    demo_channels_ensure(sandbox_url="http://127.0.0.1:9555/")
    card = ChannelAccount.objects.get(code="card")
    assert card.base_url == "http://127.0.0.1:9555/sandbox/card/"
    assert card.credentials["hosted_page_url"].startswith("http://127.0.0.1:9555/")


def test_the_demo_address_is_the_one_given_else_where_the_accounts_already_are(settings):
    settings.SITE_URL_CONFIGURED = False
    assert demo_sandbox_url() == "http://testserver"  # fresh database: this site
    demo_channels_ensure(sandbox_url="http://127.0.0.1:8123")
    assert demo_sandbox_url() == "http://127.0.0.1:8123"  # nobody said otherwise: stay
    settings.SITE_URL_CONFIGURED = True
    assert demo_sandbox_url() == "http://testserver"
    settings.SANDBOX_URL = "http://127.0.0.1:9001"
    assert demo_sandbox_url() == "http://127.0.0.1:9001"
