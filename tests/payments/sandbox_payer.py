"""A payer in a browser on a channel's sandbox pages, for tests driven by Django's test client:
follows the payment's action (redirect, QR page, form post), finds the form holding the
``sandbox-approve`` / ``sandbox-decline`` button and submits it, through any extra step the
channel puts in between (3-D Secure), until it is back at the merchant."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit


class _Forms(HTMLParser):
    """The forms of a page with their inputs and submit buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self._open: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self._open = {
                "action": attrs.get("action") or "",
                "method": (attrs.get("method") or "get").lower(),
                "inputs": [],
                "buttons": [],
            }
            self.forms.append(self._open)
        elif self._open is not None and tag in ("input", "button"):
            self._open["buttons" if tag == "button" else "inputs"].append(attrs)

    def handle_endtag(self, tag):
        if tag == "form":
            self._open = None


def _local(url: str) -> str:
    parts = urlsplit(url)
    assert parts.netloc in ("", "testserver"), f"the payer left the test server: {url}"
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _is_sandbox(url: str) -> bool:
    return urlsplit(url).path.startswith("/sandbox/")


class Payer:
    """A person in a browser on the channel's pages (cookies kept by the test client)."""

    def __init__(self, client):
        self.client = client
        self.pages: list[str] = []

    def open(self, action: dict):
        """GET the action URL (or post a "form" action's fields) and follow redirects."""
        if action["type"] == "form":
            url, response = (
                action["url"],
                self.client.post(_local(action["url"]), dict(action["fields"])),
            )
        else:
            url = action["url"]
            response = self.client.get(_local(url))
        return self._follow(url, response)

    def _follow(self, url, response):
        for _ in range(5):
            if response.status_code not in (301, 302, 303):
                break
            url = urljoin(url, response["Location"])
            if not _is_sandbox(url):
                return url, response  # back at the merchant: the return page is the shop's
            response = self.client.get(_local(url))
        self.pages.append(urlsplit(url).path)
        return url, response

    def submit(self, url, response, decision: str, reason: str = ""):
        """Submit the form holding the ``sandbox-<decision>`` button, as a browser would."""
        testid = f"sandbox-{decision}"
        parser = _Forms()
        parser.feed(response.content.decode())
        matches = [
            f for f in parser.forms if any(b.get("data-testid") == testid for b in f["buttons"])
        ]
        assert len(matches) == 1, f"no single form with {testid} on {url}"
        form = matches[0]
        data: dict[str, str] = {}
        for field in form["inputs"]:
            name = field.get("name")
            if not name or field.get("type") in ("submit", "button"):
                continue
            if field.get("type") in ("radio", "checkbox"):
                if "checked" in field:
                    data.setdefault(name, field.get("value", "on"))
            else:
                data[name] = field.get("value", "")
        if reason:
            choices = {f.get("value") for f in form["inputs"] if f.get("name") == "reason"}
            assert reason in choices, f"{url} offers no decline reason {reason!r}: {choices}"
            data["reason"] = reason
        button = next(b for b in form["buttons"] if b.get("data-testid") == testid)
        if button.get("name"):
            data[button["name"]] = button.get("value", "")
        target = urljoin(url, form["action"]) if form["action"] else url
        assert form["method"] == "post"
        return self._follow(target, self.client.post(_local(target), data))

    def decide(self, action: dict, decision: str = "approve", reason: str = "") -> list[str]:
        """From the action to the merchant's return page (or the channel's final page),
        passing every step the channel puts in between (e.g. 3-D Secure)."""
        url, response = self.open(action)
        assert response.status_code == 200, response.content[:300]
        for _ in range(4):
            url, response = self.submit(url, response, decision, reason)
            if not _is_sandbox(url) or b'data-testid="sandbox-approve"' not in response.content:
                return self.pages
            # another step of the channel (the issuer's 3-D Secure challenge)
        raise AssertionError(f"the sandbox never let go: {self.pages}")
