"""The Simplified Chinese catalogue: the default language really is Chinese, English is one
switch away, and the catalogue itself stays complete and well-formed (no empty or fuzzy
entry, placeholders and HTML tags intact, the compiled .mo in step with the .po)."""

import ast
import gettext
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

LC_MESSAGES = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"
PO_FILE = LC_MESSAGES / "django.po"
MO_FILE = LC_MESSAGES / "django.mo"


# --- the site ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_catalogue_is_in_simplified_chinese_by_default(client):
    html = client.get("/").content.decode()
    assert '<html lang="zh-hans">' in html
    assert "低于面值的礼品卡" in html  # the catalogue's heading
    assert "商品目录" in html and "我要卖" in html  # the navigation
    assert "Gift cards below face value" not in html


@pytest.mark.django_db
def test_the_language_switch_turns_the_site_to_english_and_back(client):
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "en"
    html = client.get("/").content.decode()
    assert '<html lang="en">' in html
    assert "Gift cards below face value" in html and "Catalogue" in html
    assert "低于面值的礼品卡" not in html

    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert "低于面值的礼品卡" in client.get("/").content.decode()


@pytest.mark.django_db
def test_a_browser_asking_for_english_gets_english(client):
    html = client.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Gift cards below face value" in html


# --- the catalogue file ------------------------------------------------------------------------


@dataclass
class Entry:
    line: int
    flags: set[str] = field(default_factory=set)
    msgctxt: str | None = None
    msgid: str = ""
    msgid_plural: str | None = None
    msgstr: str = ""
    msgstr_plural: dict[int, str] = field(default_factory=dict)
    obsolete: bool = False

    @property
    def translations(self) -> list[str]:
        return (
            [self.msgstr_plural[k] for k in sorted(self.msgstr_plural)]
            if self.msgid_plural
            else [self.msgstr]
        )

    def __str__(self):
        return f"django.po:{self.line} {self.msgid!r}"


def _unquote(text: str) -> str:
    text = text.strip()
    assert text.startswith('"') and text.endswith('"'), text
    return ast.literal_eval(text)  # PO strings use C escapes, a subset of Python's


def parse_po(path: Path) -> list[Entry]:
    """A small .po reader (no third-party parser needed): header included as the first entry."""
    entries: list[Entry] = []
    entry: Entry | None = None
    target: tuple[str, int | None] | None = None

    def start(line_no: int) -> Entry:
        nonlocal entry
        if entry is None:
            entry = Entry(line=line_no)
        return entry

    def finish():
        nonlocal entry, target
        if entry is not None:
            entries.append(entry)
        entry, target = None, None

    def append(value: str):
        name, index = target
        if name == "msgstr_plural":
            entry.msgstr_plural[index] += value
        else:
            setattr(entry, name, getattr(entry, name) + value)

    for line_no, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            finish()
            continue
        if line.startswith("#~"):
            start(line_no).obsolete = True
            continue
        if line.startswith("#,"):
            if entry is not None and entry.msgid:
                finish()
            start(line_no).flags |= {flag.strip() for flag in line[2:].split(",") if flag.strip()}
            continue
        if line.startswith("#"):
            if entry is not None and (entry.msgid or entry.msgstr or entry.msgstr_plural):
                finish()
            start(line_no)
            continue
        if line.startswith('"'):
            assert target is not None, f"django.po:{line_no}: continuation line without a keyword"
            append(_unquote(line))
            continue
        keyword, _, rest = line.partition(" ")
        current = start(line_no)
        if keyword == "msgctxt":
            current.msgctxt, target = _unquote(rest), ("msgctxt", None)
        elif keyword == "msgid":
            current.msgid, target = _unquote(rest), ("msgid", None)
        elif keyword == "msgid_plural":
            current.msgid_plural, target = _unquote(rest), ("msgid_plural", None)
        elif keyword == "msgstr":
            current.msgstr, target = _unquote(rest), ("msgstr", None)
        elif match := re.fullmatch(r"msgstr\[(\d+)\]", keyword):
            index = int(match.group(1))
            current.msgstr_plural[index], target = _unquote(rest), ("msgstr_plural", index)
        else:
            raise AssertionError(f"django.po:{line_no}: unexpected line {raw!r}")
    finish()
    return entries


@pytest.fixture(scope="module")
def po_entries() -> list[Entry]:
    assert PO_FILE.exists(), "run makemessages -l zh_Hans"
    return parse_po(PO_FILE)


@pytest.fixture(scope="module")
def messages(po_entries) -> list[Entry]:
    return [e for e in po_entries if e.msgid and not e.obsolete]


def test_the_header_declares_simplified_chinese_utf8_and_one_plural_form(po_entries):
    header = po_entries[0]
    assert header.msgid == "" and "fuzzy" not in header.flags
    fields = dict(line.split(": ", 1) for line in header.msgstr.splitlines() if ": " in line)
    assert fields["Language"] == "zh_Hans"
    assert fields["Content-Type"] == "text/plain; charset=UTF-8"
    assert fields["Plural-Forms"] == "nplurals=1; plural=0;"


def test_the_catalogue_parser_sees_every_message(po_entries, messages):
    text = PO_FILE.read_text(encoding="utf-8")
    live_msgids = len(re.findall(r"^msgid ", text, flags=re.M))
    # The header plus every message (obsolete "#~" entries are no messages).
    assert len([e for e in po_entries if not e.obsolete]) == live_msgids
    assert len(messages) > 500


def test_every_message_is_translated_and_none_is_fuzzy(messages):
    untranslated = [str(e) for e in messages if not all(t.strip() for t in e.translations)]
    fuzzy = [str(e) for e in messages if "fuzzy" in e.flags]
    assert not untranslated and not fuzzy, (
        f"untranslated: {untranslated}; fuzzy (check the translation, then drop the flag): {fuzzy}"
    )


def test_plural_messages_have_exactly_the_one_chinese_form(messages):
    wrong = [str(e) for e in messages if e.msgid_plural and sorted(e.msgstr_plural) != [0]]
    assert not wrong


_PRINTF = re.compile(r"%%|%(\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[diouxXeEfFgGcrsa]")
_BRACE = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}")
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*\b[^<>]*>")


def placeholders(text: str) -> tuple[Counter, list[str], Counter]:
    """(named %(x)s, positional %s/%d in order, {x} fields); "%%" is a literal percent."""
    named: Counter = Counter()
    positional: list[str] = []
    for match in _PRINTF.finditer(text):
        token = match.group(0)
        if token == "%%":
            continue
        if match.group(1):
            named[token] += 1
        else:
            positional.append(token)
    return named, positional, Counter(_BRACE.findall(text))


def test_the_placeholder_checker_catches_broken_placeholders():
    assert placeholders("%(n)d codes, 50%% off, %s and {name}") == (
        Counter({"%(n)d": 1}),
        ["%s"],
        Counter({"{name}": 1}),
    )
    assert placeholders("%(n)d 个") != placeholders("%(n)s 个")
    assert placeholders("%(name)s") != placeholders("%(name)")
    assert placeholders("% (name)s")[0] == Counter()
    assert placeholders("{name}") != placeholders("{nmae}")


def test_every_translation_keeps_the_placeholders_of_its_source(messages):
    broken = []
    for e in messages:
        if "no-python-format" in e.flags:  # a literal "%" that only looks like a directive
            continue
        # Chinese has one form: it serves every count, so it follows the plural source.
        source = e.msgid_plural if e.msgid_plural is not None else e.msgid
        expected = placeholders(source)
        allowed = set(placeholders(e.msgid)[0]) | set(expected[0])
        for translation in e.translations:
            named, positional, brace = placeholders(translation)
            if (named, positional, brace) != expected or not set(named) <= allowed:
                broken.append(f"{e}: {translation!r}")
    assert not broken, "placeholders differ:\n" + "\n".join(broken)


def test_every_translation_keeps_the_html_tags_of_its_source(messages):
    broken = [
        f"{e}: {t!r}"
        for e in messages
        for t in e.translations
        if Counter(_TAG.findall(t)) != Counter(_TAG.findall(e.msgid_plural or e.msgid))
    ]
    assert not broken, "HTML tags differ:\n" + "\n".join(broken)


def test_the_compiled_catalogue_matches_the_po_file(messages):
    """Catches a .po edited without running compilemessages."""
    assert MO_FILE.exists(), "run compilemessages"
    with MO_FILE.open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = []
    for e in messages:
        if e.msgid_plural:
            got = [
                compiled.npgettext(e.msgctxt, e.msgid, e.msgid_plural, n)
                if e.msgctxt
                else compiled.ngettext(e.msgid, e.msgid_plural, n)
                for n in (1, 2, 5)
            ]
            if set(got) != {e.msgstr_plural[0]}:
                stale.append(str(e))
        else:
            got = compiled.pgettext(e.msgctxt, e.msgid) if e.msgctxt else compiled.gettext(e.msgid)
            if got != e.msgstr:
                stale.append(str(e))
    assert not stale, f"django.mo is out of date for: {stale}"
