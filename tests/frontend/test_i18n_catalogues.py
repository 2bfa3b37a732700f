"""The Hindi and Spanish catalogues: complete, well-formed, compiled, and covering every text the
pages show. Checked with Babel, so neither CI nor a developer running the tests needs GNU gettext
(``make messages`` does, to regenerate the catalogues after changing texts)."""

from __future__ import annotations

import gettext
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.checkers import python_format
from babel.messages.extract import extract_python
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from django.conf import settings
from django.template.base import Lexer, TokenType
from django.utils.translation.template import templatize

BASE = Path(settings.BASE_DIR)
LANGUAGES = ["hi", "es"]
# The project's own apps (not Django's nor third parties'), and the demo, which is English only.
APPS = [path for path in sorted(BASE.iterdir())
        if (path / "apps.py").exists() and path.name != "demo"] + [BASE / "gridcoin"]
TEMPLATE_DIRS = [app / "templates" for app in APPS if (app / "templates").is_dir()]
PYTHON_DIRS = APPS
KEYWORDS = {
    "_": None, "gettext": None, "gettext_lazy": None, "gettext_noop": None,
    "ngettext": (1, 2), "ngettext_lazy": (1, 2),
    "pgettext": ((1, "c"), 2), "pgettext_lazy": ((1, "c"), 2),
    "npgettext": ((1, "c"), 2, 3), "npgettext_lazy": ((1, "c"), 2, 3),
}


def catalogue(language: str):
    with open(BASE / "locale" / language / "LC_MESSAGES" / "django.po", "rb") as fh:
        return read_po(fh, locale=language)


def key(message) -> str:
    return message.id[0] if isinstance(message.id, tuple) else message.id


# --- the catalogues themselves --------------------------------------------------------------------

@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_is_translated_and_none_is_fuzzy(language):
    cat = catalogue(language)
    assert not cat.fuzzy, "the header is marked fuzzy"
    assert cat.plural_forms == "nplurals=2; plural=(n != 1);"
    untranslated, fuzzy = [], []
    for message in cat:
        if not message.id:
            continue
        if message.fuzzy:
            fuzzy.append(key(message))
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wrong_count = isinstance(message.id, tuple) and len(strings) != cat.num_plurals
        if wrong_count or not all(s.strip() for s in strings):
            untranslated.append(key(message))
    assert not untranslated, f"{language}: untranslated: {untranslated}"
    assert not fuzzy, f"{language}: fuzzy: {fuzzy}"
    assert not cat.obsolete, f"{language}: obsolete entries left: {list(cat.obsolete)}"


@pytest.mark.parametrize("language", LANGUAGES)
def test_placeholders_and_markup_survive_translation(language):
    problems = []
    for message in catalogue(language):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.python_format:
            try:
                python_format(None, message)
            except Exception as exc:  # babel's TranslationError
                problems.append(f"{ids[0]!r}: {exc}")
        for tag in ("<strong>", "</strong>", "<code>", "</code>"):
            if tag in ids[0] and not all(tag in s for s in strings):
                problems.append(f"{ids[0]!r}: lost {tag}")
        # {name} placeholders (format_lazy, and the pages' scripts fill them in)
        if any(sorted(re.findall(r"\{\w+\}", s)) != sorted(re.findall(r"\{\w+\}", ids[0])) for s in strings):
            problems.append(f"{ids[0]!r}: the {{placeholders}} differ")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("language", LANGUAGES)
def test_committed_mo_files_are_the_compiled_po_files(language):
    """The .mo files are committed so that nothing compiles at deploy time; they must say what
    the .po files say (compile after every change: ``make messages``)."""
    cat = catalogue(language)
    compiled = io.BytesIO()
    write_mo(compiled, cat)
    compiled.seek(0)
    expected = gettext.GNUTranslations(compiled)._catalog  # type: ignore[attr-defined]
    mo_path = BASE / "locale" / language / "LC_MESSAGES" / "django.mo"
    with open(mo_path, "rb") as fh:
        committed = gettext.GNUTranslations(fh)._catalog  # type: ignore[attr-defined]

    def texts(table):  # the header entry differs between compilers (dates, Generated-By)
        return {k: v for k, v in table.items() if k not in ("", ("", 0))}

    assert texts(committed) == texts(expected), f"{mo_path} is stale: run make messages"


# --- every marked text of the source is in the catalogues -------------------------------------------

def _template_messages():
    for directory in TEMPLATE_DIRS:
        for path in sorted(directory.rglob("*.html")):
            python = templatize(path.read_text(encoding="utf-8"), origin=str(path))
            # templatize blanks the markup out with letters, keeping the indentation, which
            # Python's tokenizer (unlike xgettext) rejects; each call is on one line.
            python = "\n".join(line.lstrip() for line in python.splitlines())
            for _lineno, func, message, _comments in extract_python(io.BytesIO(python.encode()), KEYWORDS,
                                                                     [], {}):
                yield path, _msgid(func, message)


def _python_messages():
    for directory in PYTHON_DIRS:
        for path in sorted(directory.rglob("*.py")):
            if "migrations" in path.parts:
                continue
            with open(path, "rb") as fh:
                for _lineno, func, message, _comments in extract_python(fh, KEYWORDS, [], {}):
                    yield path, _msgid(func, message)


def _msgid(func: str, message) -> str | None:
    """The catalogue key of a call: its singular text (after the context for pgettext)."""
    if not isinstance(message, tuple):
        return message
    return message[1] if "pgettext" in func else message[0]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_marked_text_is_in_the_catalogue(language):
    known = {key(m) for m in catalogue(language) if m.id}
    missing = sorted({f"{path.relative_to(BASE)}: {msgid!r}"
                      for path, msgid in [*_template_messages(), *_python_messages()]
                      if msgid and msgid not in known})
    assert not missing, "texts not in the catalogue (run make messages and translate):\n" + "\n".join(missing)


# --- no English left outside the translation tags ---------------------------------------------------

# Words that are the same in every language: the brand, units, currency signs, standards.
ALLOWED_WORDS = {"GridCoin", "kWh", "Wh", "SL", "INR", "USD", "QR", "UTC", "CSV", "N"}
VISIBLE_ATTRIBUTES = {"alt", "title", "aria-label", "placeholder", "label"}
HOLE = "\x00"  # where a variable or a tag writing text was: that text is not the template's
# Tags that write no text of their own (they may stand inside an HTML tag: <li{% if %} class=..>).
SILENT_TAGS = {"if", "elif", "else", "endif", "for", "empty", "endfor", "with", "endwith", "load", "extends",
               "block", "endblock", "spaceless", "endspaceless", "localize", "endlocalize", "csrf_token"}


class _VisibleText(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if value and (name in VISIBLE_ATTRIBUTES or (tag == "meta" and name == "content"
                                                           and ("name", "description") in attrs)):
                self.texts.append(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.texts.append(data)


def untranslated_words(source: str) -> list[str]:
    """Words of visible text that a template writes literally, outside {% translate %} and
    {% blocktranslate %} (variables and tags count as holes, not text)."""
    kept: list[str] = []
    skip_until = None
    for token in Lexer(source).tokenize():
        if skip_until:
            if token.token_type == TokenType.BLOCK and token.contents.split()[0] == skip_until:
                skip_until = None
            continue
        if token.token_type == TokenType.TEXT:
            kept.append(token.contents)
            continue
        if token.token_type == TokenType.BLOCK:
            name = token.contents.split()[0]
            if name in ("blocktranslate", "blocktrans", "comment", "verbatim"):
                skip_until = "end" + name
            if name in SILENT_TAGS:
                continue
        kept.append(HOLE)
    parser = _VisibleText()
    parser.feed("".join(kept))
    parser.close()
    words = []
    for text in parser.texts:
        for piece in text.split(HOLE):
            for word in re.findall(r"[A-Za-z][A-Za-z’']*(?:-[A-Za-z]+)*", piece):
                if len(word) > 1 and word not in ALLOWED_WORDS:
                    words.append(word)
    return words


def _templates():
    return [path for directory in TEMPLATE_DIRS for path in sorted(directory.rglob("*.html"))]


@pytest.mark.parametrize("path", _templates(), ids=lambda p: str(p.relative_to(BASE)))
def test_templates_show_no_english_outside_translation_tags(path):
    words = untranslated_words(path.read_text(encoding="utf-8"))
    assert not words, f"{path.relative_to(BASE)} shows untranslated text: {words}"


def test_the_scan_sees_text_attributes_and_ignores_tags_variables_and_scripts():
    assert untranslated_words('<p class="lead">Hello {{ name }}</p>') == ["Hello"]
    assert untranslated_words('<img alt="QR code" src="{{ x }}">') == ["code"]
    assert untranslated_words('{% load i18n %}<p>{% translate "Hi there" %} {{ user.name }}</p>') == []
    assert untranslated_words("{% blocktranslate %}Signed in as {{ n }}{% endblocktranslate %}") == []
    assert untranslated_words("<style>.x { color: red }</style><script>let a = 1;</script>") == []
    assert untranslated_words('<button aria-label="Close" class="x">⚡ GridCoin 12 kWh</button>') == ["Close"]
