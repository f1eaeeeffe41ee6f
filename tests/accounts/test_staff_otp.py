"""Staff's TOTP second factor in admin, through the admin's own log-in form: staff with a
device type its code before any admin page opens; with STAFF_TOTP_REQUIRED staff without one
enrol first (QR code, then a code to confirm); wrong codes count toward the axes lock-out."""

import pytest
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.accounts.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    return UserFactory(username="fiona-finance", is_staff=True, groups=["Finance"])


def code_of(device: TOTPDevice, *, offset: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = totp.time + offset * device.step
    return f"{totp.token():0{device.digits}d}"


def log_in(client, user):
    response = client.post(
        "/admin/login/?next=/admin/", {"username": user.username, "password": PASSWORD}
    )
    assert response.status_code == 302, response.content[:400]
    return response


def device_for(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="phone", confirmed=True)


def test_without_a_device_and_the_setting_off_staff_enter_admin_with_the_password(client, staff):
    log_in(client, staff)
    assert client.get("/admin/").status_code == 200


def test_staff_with_a_device_pass_its_code_before_any_admin_page(client, staff, settings):
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # no wait after the wrong code below
    device = device_for(staff)
    log_in(client, staff)

    for path in ("/admin/", "/admin/payments/providerdispute/", "/admin/export/x.csv"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith(
            "/admin/otp/verify/?next="
        ), path
    page = client.get("/admin/otp/verify/?next=/admin/payments/providerdispute/")
    assert page.status_code == 200 and b'autocomplete="one-time-code"' in page.content

    wrong = client.post("/admin/otp/verify/", {"token": "000000", "next": "/admin/"})
    assert wrong.status_code == 200 and b"errorlist" in wrong.content
    assert client.get("/admin/").status_code == 302

    right = client.post(
        "/admin/otp/verify/",
        {"token": code_of(device), "next": "/admin/payments/providerdispute/"},
    )
    assert right.status_code == 302
    assert right["Location"] == "/admin/payments/providerdispute/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/payments/providerdispute/").status_code == 200


def test_the_code_does_not_carry_over_to_the_next_log_in(client, staff):
    device = device_for(staff)
    log_in(client, staff)
    client.post("/admin/otp/verify/", {"token": code_of(device), "next": "/admin/"})
    assert client.get("/admin/").status_code == 200
    client.post("/admin/logout/")
    log_in(client, staff)
    assert client.get("/admin/").status_code == 302


def test_with_the_setting_on_staff_without_a_device_enrol_one_first(client, staff, settings):
    settings.STAFF_TOTP_REQUIRED = True
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    log_in(client, staff)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/otp/enroll/?next=")

    page = client.get(response["Location"])
    assert page.status_code == 200 and b"<svg" in page.content
    device = TOTPDevice.objects.get(user=staff)
    assert not device.confirmed
    assert "otpauth://totp/" in device.config_url and "Cardex" in device.config_url

    assert client.post("/admin/otp/enroll/", {"token": "123456"}).status_code == 200
    assert not TOTPDevice.objects.get(pk=device.pk).confirmed
    confirmed = client.post("/admin/otp/enroll/", {"token": code_of(device), "next": "/admin/"})
    assert confirmed.status_code == 302 and confirmed["Location"] == "/admin/"
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/admin/").status_code == 200
    # the next log-in asks for the device's code
    client.post("/admin/logout/")
    log_in(client, staff)
    assert client.get("/admin/")["Location"].startswith("/admin/otp/verify/")


def test_a_password_alone_cannot_enrol_another_device(client, staff):
    device_for(staff)
    log_in(client, staff)
    response = client.get("/admin/otp/enroll/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/otp/verify/")
    assert TOTPDevice.objects.filter(user=staff).count() == 1


def test_wrong_codes_lock_the_account_like_wrong_passwords(client, staff, settings):
    device_for(staff)
    log_in(client, staff)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post("/admin/otp/verify/", {"token": "000000"}).status_code == 200
    locked = client.post("/admin/otp/verify/", {"token": "000000"})
    assert locked.status_code == 429
    # the session is gone and the password is refused until the cool-off ends
    assert client.get("/admin/")["Location"].startswith("/admin/login/")
    again = client.post(
        "/admin/login/?next=/admin/", {"username": staff.username, "password": PASSWORD}
    )
    assert again.status_code == 429


def test_next_may_not_lead_off_site(client, staff):
    device = device_for(staff)
    log_in(client, staff)
    response = client.post(
        "/admin/otp/verify/", {"token": code_of(device), "next": "https://evil.example/"}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"


def test_after_a_wrong_code_the_next_try_waits(client, staff):
    """django-otp's throttle: a right code too soon after a wrong one is refused too."""
    device = device_for(staff)
    log_in(client, staff)
    client.post("/admin/otp/verify/", {"token": "000000"})
    too_soon = client.post("/admin/otp/verify/", {"token": code_of(device)})
    assert too_soon.status_code == 200 and client.get("/admin/").status_code == 302


def test_the_site_outside_admin_is_not_gated(client, staff):
    device_for(staff)
    log_in(client, staff)
    assert client.get("/").status_code == 200
