"""Every text the report pages and the PDF ask for exists in Swedish and in English, with the
same placeholders, so no reader sees a bare key or a half-filled sentence."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "dashboards"
WEB = ROOT / "web"
SOURCES = [
    *sorted((WEB / "static").glob("reports*.js")),
    *sorted((WEB / "templates").glob("reports*.html")),
    *sorted(ROOT.glob("reports_pdf*.py")),
]
# t("rep_x"), t('rep_x'), fmt.t("pdf_x"); a key built at run time ends in "_" and is checked
# against the values it can take below.
_KEY = re.compile(r"""\bt\(\s*["']((?:rep|pdf)_[a-z0-9_]+)["']""")
DYNAMIC = {
    "rep_state_": ("taken", "taken_late", "missed", "unknown", "suspended", "pending"),
    "rep_shift_": ("day", "evening", "night"),
    "rep_reason_": ("offline", "unknown_doses", "replays", "clock"),
}


def _catalogue(lang: str) -> dict[str, str]:
    texts: dict[str, str] = json.loads((WEB / "i18n" / f"{lang}.json").read_text("utf-8"))
    texts.update(json.loads((WEB / "i18n" / f"{lang}.reports.json").read_text("utf-8")))
    return texts


def _used() -> set[str]:
    keys: set[str] = set()
    for path in SOURCES:
        for key in _KEY.findall(path.read_text("utf-8")):
            keys |= {key + v for v in DYNAMIC[key]} if key in DYNAMIC else {key}
    return keys


def _fields(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def test_the_sources_ask_for_texts() -> None:
    assert len(SOURCES) >= 8 and len(_used()) > 100


@pytest.mark.parametrize("lang", ["sv", "en"])
def test_every_report_text_exists(lang: str) -> None:
    texts = _catalogue(lang)
    assert sorted(_used() - texts.keys()) == []


def test_both_languages_have_the_same_report_texts_and_placeholders() -> None:
    sv = json.loads((WEB / "i18n" / "sv.reports.json").read_text("utf-8"))
    en = json.loads((WEB / "i18n" / "en.reports.json").read_text("utf-8"))
    assert sv.keys() == en.keys()
    assert {k: _fields(v) for k, v in sv.items()} == {k: _fields(v) for k, v in en.items()}
    assert [k for k in sv if sv[k] == en[k] and len(sv[k]) > 12] == []  # not left untranslated
