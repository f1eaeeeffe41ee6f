"""PayPal STL reports fetched by SFTP (CHANNELS.md §4.3) from the simulator in
tests/sftp_simulator.py: the account's ``sftp_*`` credentials, the pinned host key, a file not
published yet, bad credentials, and a sandbox day that arrives by SFTP and reconciles."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from decimal import Decimal
from pathlib import Path

import paramiko
import pytest
from django.core.management import call_command
from django.utils import timezone

from payments import services as payment_services
from payments.accounts import backend_for
from payments.channels.base import ChannelError, ClientInfo
from payments.payables import PayableFacts
from payments.sandbox.paypal.settlement import settlement_report
from reconciliation.models import SettlementFile, Statement
from tests.accounts.factories import UserFactory
from tests.payments.factories import sandbox_account
from tests.payments.sandbox_payer import Payer
from tests.sftp_simulator import fingerprint, private_key_text

pytestmark = pytest.mark.django_db

DATA = Path(__file__).resolve().parents[2] / "data" / "paypal"
DERIVED = DATA / "DERIVED_STL-20240820.01.009.CSV"
DAY = dt.date(2024, 8, 20)


@pytest.fixture
def account(db):
    return sandbox_account("paypal", merchant_id="PAYPALTEST001")


def configure(account, sftp_server, **overrides):
    account.credentials = {**account.credentials, **sftp_server.credentials(**overrides)}
    account.save()
    return backend_for(account)


def pull(day: dt.date) -> dict:
    out = io.StringIO()
    call_command(
        "pull_settlements", "--channel", "paypal", "--date", day.isoformat(), "--json", stdout=out
    )
    [entry] = json.loads(out.getvalue())
    return entry


def test_the_days_report_is_fetched_by_sftp_with_a_password(account, sftp_server):
    sftp_server.publish("STL-20240819.01.009.CSV", b"yesterday")
    sftp_server.publish(DERIVED.name.removeprefix("DERIVED_"), DERIVED.read_bytes())
    backend = configure(account, sftp_server)
    assert backend.download_settlement(DAY) == DERIVED.read_bytes()
    assert sftp_server.opened == ["/ppreports/outgoing/STL-20240820.01.009.CSV"]


def test_a_report_larger_than_the_read_ahead_arrives_whole(account, sftp_server):
    big = DERIVED.read_bytes() + b"x" * (5 * 1024 * 1024 + 17)
    sftp_server.publish("STL-20240820.01.009.CSV", big)
    assert configure(account, sftp_server).download_settlement(DAY) == big


def test_a_private_key_logs_in_instead_of_a_password(account, sftp_server):
    sftp_server.publish("STL-20240820.01.009.CSV", DERIVED.read_bytes())
    backend = configure(
        account,
        sftp_server,
        sftp_password="",
        sftp_private_key=private_key_text(sftp_server.client_key),
    )
    assert backend.download_settlement(DAY) == DERIVED.read_bytes()
    assert sftp_server.logins == [("cardex", "publickey")]


def test_an_unknown_host_key_is_refused_before_logging_in(account, sftp_server):
    sftp_server.publish("STL-20240820.01.009.CSV", DERIVED.read_bytes())
    impostor = fingerprint(paramiko.ECDSAKey.generate())
    backend = configure(account, sftp_server, sftp_host_key_fingerprint=impostor)
    with pytest.raises(ChannelError) as err:
        backend.download_settlement(DAY)
    assert err.value.code == "SFTP_HOST_KEY_MISMATCH"
    assert sftp_server.fingerprint in str(err.value) and impostor in str(err.value)
    assert sftp_server.logins == [] and sftp_server.opened == []


def test_a_host_key_must_be_pinned(account, sftp_server):
    backend = configure(account, sftp_server, sftp_host_key_fingerprint="")
    with pytest.raises(ChannelError) as err:
        backend.download_settlement(DAY)
    assert err.value.code == "CONFIGURATION"
    assert "sftp_host_key_fingerprint" in str(err.value)


def test_a_report_not_yet_published_is_the_not_available_error(account, sftp_server):
    sftp_server.publish("STL-20240819.01.009.CSV", b"yesterday")
    backend = configure(account, sftp_server)
    with pytest.raises(ChannelError) as err:
        backend.download_settlement(DAY)
    assert err.value.code == "REPORT_NOT_AVAILABLE"
    assert "STL-20240820" in str(err.value)


def test_a_report_in_several_files_is_refused_by_name(account, sftp_server):
    sftp_server.publish("STL-20240820.01.009.CSV", DERIVED.read_bytes())
    sftp_server.publish("STL-20240820.02.009.CSV", DERIVED.read_bytes())
    with pytest.raises(ChannelError) as err:
        configure(account, sftp_server).download_settlement(DAY)
    assert err.value.code == "REPORT_SPLIT"
    assert "STL-20240820.02.009.CSV" in str(err.value)


def test_bad_credentials_are_a_clear_error(account, sftp_server):
    sftp_server.publish("STL-20240820.01.009.CSV", DERIVED.read_bytes())
    backend = configure(account, sftp_server, sftp_password="wrong")
    with pytest.raises(ChannelError) as err:
        backend.download_settlement(DAY)
    assert err.value.code == "SFTP_AUTH_FAILED"
    assert "cardex" in str(err.value) and "wrong" not in str(err.value)
    assert sftp_server.logins == [("cardex", "password")] and sftp_server.opened == []


def test_an_unreachable_server_is_unavailable(account, sftp_server):
    backend = configure(account, sftp_server)
    sftp_server.close()
    with pytest.raises(ChannelError) as err:
        backend.download_settlement(DAY)
    assert err.value.code == "SFTP_UNAVAILABLE"


# --- pulled and reconciled -----------------------------------------------------------------------


def pay(client, captured, amount: str):
    payment = payment_services.payment_start(
        buyer=UserFactory(),
        reference=f"test:{uuid.uuid4().hex[:16]}",
        amount=Decimal(amount),
        currency="CNY",
        method="paypal",
        subject="Gift card",
        client=ClientInfo(ip="203.0.113.7", device="desktop"),
        return_url="http://testserver/orders/R1/",
        expires_at=timezone.now() + dt.timedelta(minutes=15),
        risk_facts=PayableFacts(account_age_days=400, good_orders=12),
    )
    attempt = payment.attempts.get()
    with captured(execute=True):
        Payer(client).decide(attempt.action, "approve")
    attempt.refresh_from_db()
    assert attempt.status == "succeeded"
    return attempt


def test_a_report_arrives_by_sftp_and_reconciles(
    client, django_capture_on_commit_callbacks, account, sftp_server
):
    for amount in ("88.00", "120.50"):
        pay(client, django_capture_on_commit_callbacks, amount)
    day = timezone.localdate()
    sftp_server.publish(f"STL-{day:%Y%m%d}.01.009.CSV", settlement_report(account.merchant_id, day))
    configure(account, sftp_server)
    entry = pull(day)
    assert entry["status"] == "reconciled", entry
    result = entry["result"]
    assert result["lines"] == result["payments"] == result["matched"] == 2
    assert result["gross"] == "208.50" and not any(result["discrepancies"].values())
    assert Statement.objects.filter(account=account, day=day).exists()


def test_a_pull_before_the_report_is_published_stores_nothing_and_says_so(account, sftp_server):
    configure(account, sftp_server)
    entry = pull(DAY)
    assert entry["status"] == "no_file"
    assert entry["error"].startswith("REPORT_NOT_AVAILABLE")
    assert not SettlementFile.objects.exists()
    # published later: the next pull of the same day takes it
    sftp_server.publish("STL-20240820.01.009.CSV", DERIVED.read_bytes())
    assert pull(DAY)["status"] == "reconciled"


def test_a_pull_with_bad_credentials_stores_nothing(account, sftp_server):
    sftp_server.publish("STL-20240820.01.009.CSV", DERIVED.read_bytes())
    configure(account, sftp_server, sftp_username="nobody")
    entry = pull(DAY)
    assert entry["status"] == "no_file"
    assert entry["error"].startswith("SFTP_AUTH_FAILED") and "nobody" in entry["error"]
    assert not SettlementFile.objects.exists() and not Statement.objects.exists()
