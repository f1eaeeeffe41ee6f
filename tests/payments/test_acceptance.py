import datetime as dt
import uuid
from decimal import Decimal
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
from django.utils import timezone

from payments import ledger, services
from payments.channels.base import ClientInfo
from payments.models import Notification
from tests.accounts.factories import UserFactory
from tests.payments.factories import sandbox_account

pytestmark = pytest.mark.django_db


class Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms, self._form = [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._form = {"action": a.get("action") or "", "method": (a.get("method") or "get").lower(), "inputs": [], "buttons": []}
            self.forms.append(self._form)
        elif self._form is not None and tag == "input":
            self._form["inputs"].append(a)
        elif self._form is not None and tag == "button":
            self._form["buttons"].append(a)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None


def path_of(url):
    u = urlsplit(url)
    return u.path + ("?" + u.query if u.query else "")


def sandbox_page(client, action):
    if action["type"] == "form":
        r = client.post(urlsplit(action["url"]).path, action["fields"])
        url = action["url"]
    else:
        url = action["url"]
        r = client.get(path_of(url))
    while r.status_code in (301, 302, 303):
        url = urljoin(url, r["Location"])
        r = client.get(path_of(url))
    return url, r


def decide(client, url, response, decision, reason=""):
    testid = f"sandbox-{decision}"
    parser = Forms()
    parser.feed(response.content.decode())
    form = next(f for f in parser.forms if any(b.get("data-testid") == testid for b in f["buttons"]))
    data = {}
    for i in form["inputs"]:
        if i.get("type") == "radio":
            if "checked" in i and i["name"] not in data:
                data[i["name"]] = i.get("value", "")
        elif i.get("name"):
            data[i["name"]] = i.get("value", "")
    if reason:
        data["reason"] = reason
    button = next(b for b in form["buttons"] if b.get("data-testid") == testid)
    data[button["name"]] = button["value"]
    target = urljoin(url, form["action"] or url)
    r = client.post(path_of(target), data)
    return target, r


def pay(client, payment, decision="approve", reason=""):
    attempt = payment.attempts.filter(status="pending").get()
    url, page = sandbox_page(client, attempt.action)
    assert page.status_code == 200, page.content[:500]
    for _ in range(4):
        url, r = decide(client, url, page, decision, reason)
        if r.status_code in (301, 302, 303):
            nxt = urljoin(url, r["Location"])
            if "/sandbox/" not in urlsplit(nxt).path:
                return r
            url, page = nxt, client.get(path_of(nxt))
            continue
        if b"data-testid=\"sandbox-approve\"" in r.content and b"3-D" in r.content:
            page = r
            continue
        return r
    raise AssertionError("too many sandbox pages")


def start(method, amount="88.00", device="desktop"):
    return services.payment_start(
        buyer=UserFactory(), reference=f"test:{uuid.uuid4().hex[:12]}", amount=Decimal(amount), currency="CNY",
        method=method, subject="Gift card", client=ClientInfo(ip="203.0.113.7", device=device),
        return_url="http://testserver/orders/T1/", expires_at=timezone.now() + dt.timedelta(minutes=15),
    )


CASES = [("alipay","alipay"),("wechatpay","wechatpay"),("unionpay","unionpay"),("ecny","ecny"),("paypal","paypal"),("card","card"),("card","card_instalments")]


@pytest.mark.parametrize("code,method", CASES)
@pytest.mark.parametrize("amount", ["88.00", "1200.00"])
def test_pay(client, django_capture_on_commit_callbacks, code, method, amount):
    sandbox_account(code)
    p = start(method, amount)
    with django_capture_on_commit_callbacks(execute=True):
        pay(client, p)
    p.refresh_from_db()
    notes = list(Notification.objects.values_list("outcome", "detail"))
    print(code, method, p.status, list(p.attempts.values_list("status", "error_code")), notes)
    assert p.status == "succeeded"
    assert ledger.journal_total() == 0 and ledger.unbalanced_entries() == 0


@pytest.mark.parametrize("code,method", CASES)
def test_decline(client, django_capture_on_commit_callbacks, code, method):
    sandbox_account(code)
    p = start(method)
    with django_capture_on_commit_callbacks(execute=True):
        pay(client, p, "decline", "insufficient_funds")
    p.refresh_from_db()
    if p.status == "pending":
        from payments import tasks
        from payments.models import Attempt
        Attempt.objects.filter(payment=p).update(next_query_at=timezone.now() - dt.timedelta(seconds=1))
        with django_capture_on_commit_callbacks(execute=True):
            tasks.query_pending_attempts.delay()
        p.refresh_from_db()
    notes = list(Notification.objects.values_list("outcome", "detail"))
    print(code, method, p.status, p.failure_code, p.failure_reason, p.failure_guidance, list(p.attempts.values_list("status", "error_code")), notes)
    assert p.status == "failed"
