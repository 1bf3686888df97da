"""The monthly PDF's building blocks: fonts, the reader's number formats, styles and tables.

Text is set in the Bitstream Vera fonts that ship inside the reportlab wheel, embedded, so
Swedish letters print and extract the same on every machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import reportlab
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, Table, TableStyle

from dashboards import reports_pdf_charts as charts
from dashboards.pages import catalogue

Json = dict[str, Any]
FONT, BOLD = charts.FONT, charts.BOLD
FONTS_DIR = Path(reportlab.__file__).parent / "fonts"
WIDTH = A4[0] - 36 * mm
INK, MUTED, LINE, HEAD_BG = (
    colors.HexColor("#17212f"),
    charts.MUTED,
    colors.HexColor("#d5dce6"),
    colors.HexColor("#eef2f7"),
)
MONTHS_SV = (
    "januari",
    "februari",
    "mars",
    "april",
    "maj",
    "juni",
    "juli",
    "augusti",
    "september",
    "oktober",
    "november",
    "december",
)
MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def register_fonts() -> None:
    if FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(FONT, str(FONTS_DIR / "Vera.ttf")))
        pdfmetrics.registerFont(TTFont(BOLD, str(FONTS_DIR / "VeraBd.ttf")))


class Format:
    """Numbers, percentages, durations and dates as the reader's language writes them."""

    def __init__(self, language: str) -> None:
        self.texts = catalogue(language)
        self.fallback = catalogue("en")
        self.sv = language == "sv"

    def t(self, key: str, **kw: Any) -> str:
        text = self.texts.get(key) or self.fallback.get(key) or key
        return text.format(**kw) if kw else text

    def _dec(self, text: str) -> str:
        return text.replace(",", " ").replace(".", ",") if self.sv else text

    def num(self, v: float | None) -> str:
        return "–" if v is None else self._dec(f"{v:,.0f}")

    def pct(self, v: float | None) -> str:
        return "–" if v is None else self._dec(f"{v:,.1f}") + " %"

    def sek(self, v: float | None) -> str:
        return "–" if v is None else self.num(v) + " kr"

    def seconds(self, s: float | None) -> str:
        return "–" if s is None else self.t("rep_seconds", n=self.num(s))

    def duration(self, s: float | None) -> str:
        if s is None:
            return "–"
        if s < 60:
            return self.t("rep_seconds", n=round(s))
        minutes = round(s / 60)
        if minutes < 60:
            return self.t("rep_minutes", n=minutes)
        return self.t("rep_hours_minutes", h=minutes // 60, m=minutes % 60)

    def month(self, d: date) -> str:
        return f"{(MONTHS_SV if self.sv else MONTHS_EN)[d.month - 1]} {d.year}"


BODY = ParagraphStyle("body", fontName=FONT, fontSize=8.5, leading=11, textColor=INK)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=7, leading=9, textColor=MUTED)
H1 = ParagraphStyle("h1", parent=BODY, fontName=BOLD, fontSize=17, leading=21)
H2 = ParagraphStyle(
    "h2", parent=BODY, fontName=BOLD, fontSize=11, leading=14, spaceBefore=8, spaceAfter=3
)
KPI_VALUE = ParagraphStyle("kv", parent=BODY, fontName=BOLD, fontSize=15, leading=18)
KPI_LABEL = ParagraphStyle("kl", parent=SMALL, fontSize=6.5, leading=8)
HEAD = ParagraphStyle("th", parent=SMALL, fontName=BOLD, fontSize=6.5, leading=7.5)
HEAD_R = ParagraphStyle("thr", parent=HEAD, alignment=2)


def para(text: str, style: ParagraphStyle = BODY) -> Paragraph:
    return Paragraph(escape(text), style)


def table(
    head: Sequence[str],
    rows: Sequence[Sequence[str]],
    widths: Sequence[float] | None = None,
    numeric_from: int = 1,
    total: bool = False,
) -> Table:
    heads = [
        Paragraph(escape(h), HEAD_R if i >= numeric_from else HEAD) for i, h in enumerate(head)
    ]
    data = [heads, *[list(r) for r in rows]]
    table = Table(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    style = [
        ("FONT", (0, 0), (-1, -1), FONT, 7.5),
        ("VALIGN", (0, 0), (-1, 0), "BOTTOM"),
        ("BACKGROUND", (0, 0), (-1, 0), HEAD_BG),
        ("LINEBELOW", (0, 0), (-1, -1), 0.4, LINE),
        ("ALIGN", (numeric_from, 0), (-1, -1), "RIGHT"),
        ("TOPPADDING", (0, 0), (-1, -1), 2.5),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.5),
    ]
    if total:
        style += [
            ("FONT", (0, -1), (-1, -1), BOLD, 7.5),
            ("LINEABOVE", (0, -1), (-1, -1), 0.8, INK),
        ]
    table.setStyle(TableStyle(style))
    return table


_FIGHEAD = (
    "rep_col_expected",
    "rep_col_taking",
    "rep_col_timing",
    "rep_col_cdd",
    "rep_col_late",
    "rep_col_missed",
    "rep_col_unknown",
    "rep_col_suspended",
)


def fig_cells(f: Json, fmt: Format) -> list[str]:
    return [
        fmt.num(f["expected"]),
        fmt.pct(f["taking_adherence_pct"]),
        fmt.pct(f["timing_adherence_pct"]),
        fmt.pct(f["correct_dosing_days_pct"]),
        fmt.num(f["taken_late"]),
        fmt.num(f["missed"]),
        fmt.num(f["unknown"]),
        fmt.num(f["suspended"]),
    ]


def figures_table(
    fmt: Format,
    head: Sequence[str],
    rows: Sequence[tuple[Sequence[str], Json]],
    total: tuple[Sequence[str], Json] | None,
    first: float,
) -> Table:
    lead = len(head)
    rest = (WIDTH - first - 16 * mm * (lead - 1)) / len(_FIGHEAD)
    widths = [first, *[16 * mm] * (lead - 1), *[rest] * len(_FIGHEAD)]
    body = [[*keys, *fig_cells(f, fmt)] for keys, f in rows]
    if total:
        body.append([*total[0], *fig_cells(total[1], fmt)])
    return table([*head, *[fmt.t(k) for k in _FIGHEAD]], body, widths, lead, total is not None)


def kpis(f: Json, fmt: Format) -> Table:
    cells = [
        (fmt.t("rep_taking"), fmt.pct(f["taking_adherence_pct"])),
        (fmt.t("rep_timing"), fmt.pct(f["timing_adherence_pct"])),
        (fmt.t("rep_cdd"), fmt.pct(f["correct_dosing_days_pct"])),
        (fmt.t("rep_not_taken"), fmt.num(f["missed"] + f["unknown"])),
        (fmt.t("rep_unknown"), fmt.num(f["unknown"])),
        (fmt.t("rep_expected"), fmt.num(f["expected"])),
    ]
    # Labels in one row and values in the next, so the values line up however labels wrap.
    table = Table(
        [[para(label.upper(), KPI_LABEL) for label, _ in cells],
         [para(value, KPI_VALUE) for _, value in cells]],
        colWidths=[WIDTH / len(cells)] * len(cells),
    )  # fmt: skip
    table.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 0.5, LINE),
                ("LINEAFTER", (0, 0), (-2, -1), 0.5, LINE),
                ("LINEABOVE", (0, 0), (-1, 0), 2.5, charts.ACCENT),
                ("VALIGN", (0, 0), (-1, 0), "TOP"),
                ("TOPPADDING", (0, 0), (-1, 0), 5),
                ("BOTTOMPADDING", (0, 0), (-1, 0), 1),
                ("BOTTOMPADDING", (0, 1), (-1, 1), 6),
            ]
        )
    )
    return table


def stats(pairs: Sequence[tuple[str, str]]) -> Table:
    """Key figures two by two: label, value, label, value."""
    rows = [
        [*pairs[i], *(pairs[i + 1] if i + 1 < len(pairs) else ("", ""))]
        for i in range(0, len(pairs), 2)
    ]
    half = WIDTH / 2
    table = Table(rows, colWidths=[half * 0.62, half * 0.38] * 2, hAlign="LEFT")
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), FONT, 8),
                ("FONT", (1, 0), (1, -1), BOLD, 8.5),
                ("FONT", (3, 0), (3, -1), BOLD, 8.5),
                ("TEXTCOLOR", (0, 0), (0, -1), MUTED),
                ("TEXTCOLOR", (2, 0), (2, -1), MUTED),
                ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                ("ALIGN", (3, 0), (3, -1), "RIGHT"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.3, LINE),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return table
