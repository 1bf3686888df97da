"""The monthly PDF's charts, drawn as vector graphics with reportlab's own chart module.

The same three pictures as the report pages (``web/static/reports.js``), in the same colours
(``web/static/reports.css``): the weekly trend of taking and timing adherence against the
threshold, taking adherence per team (or the team's lowest patients) coloured by the threshold,
and each week's doses by what became of them. Vector drawings stay sharp when printed and keep
their labels as text, so the tests can read them back from the PDF.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from reportlab.graphics.charts.barcharts import HorizontalBarChart, VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.linecharts import HorizontalLineChart
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors

Json = dict[str, Any]

TAKEN = colors.HexColor("#2e8b57")
LATE = colors.HexColor("#e0a526")
MISSED = colors.HexColor("#c8372d")
UNKNOWN = colors.HexColor("#6f5bb5")
SUSPENDED = colors.HexColor("#a7b1c2")
ACCENT = colors.HexColor("#1f5fbf")
MUTED = colors.HexColor("#55627a")
GRID = colors.HexColor("#e6ebf2")
STATES = (
    ("taken", TAKEN),
    ("taken_late", LATE),
    ("missed", MISSED),
    ("unknown", UNKNOWN),
    ("suspended", SUSPENDED),
)

FONT, BOLD = "Vera", "VeraBd"
Text = Callable[[str], str]


def _floor5(values: Sequence[float | None], threshold: float) -> float:
    """The value axis starts 5 points below the lowest figure (or the threshold), on a 5."""
    known = [v for v in values if v is not None]
    return max(0.0, (min([threshold, *known]) - 5) // 5 * 5)


def _axis_style(chart: Any) -> None:
    for axis in (chart.categoryAxis, chart.valueAxis):
        axis.labels.fontName = FONT
        axis.labels.fontSize = 7
        axis.labels.fillColor = MUTED
        axis.strokeColor = MUTED
        axis.strokeWidth = 0.5
    chart.valueAxis.visibleGrid = True
    chart.valueAxis.gridStrokeColor = GRID
    chart.valueAxis.gridStrokeWidth = 0.5


def _legend(x: float, y: float, pairs: Sequence[tuple[colors.Color, str]]) -> Legend:
    legend = Legend()
    legend.x, legend.y = x, y
    legend.alignment = "right"
    legend.fontName = FONT
    legend.fontSize = 7
    legend.boxAnchor = "nw"
    legend.columnMaximum = 2
    legend.deltay = 11
    legend.deltax = 0
    legend.dx = legend.dy = 7
    legend.dxTextSpace = 4
    legend.autoXPadding = 12
    legend.colorNamePairs = list(pairs)
    return legend


def _title(drawing: Drawing, text: str) -> None:
    drawing.add(String(0, drawing.height - 10, text, fontName=BOLD, fontSize=9))


def trend(weekly: Sequence[Json], threshold: float, t: Text, width: float) -> Drawing:
    """Taking and timing adherence per ISO week, the threshold dashed."""
    d = Drawing(width, 180)
    _title(d, t("rep_trend"))
    taking = [w["figures"]["taking_adherence_pct"] for w in weekly]
    timing = [w["figures"]["timing_adherence_pct"] for w in weekly]
    chart = HorizontalLineChart()
    chart.x, chart.y, chart.width, chart.height = 30, 44, width - 40, 114
    chart.data = [
        [v if v is not None else None for v in taking],
        [v if v is not None else None for v in timing],
        [threshold] * len(weekly),
    ]
    chart.categoryAxis.categoryNames = [f"{t('rep_week_short')} {w['week'][-2:]}" for w in weekly]
    chart.valueAxis.valueMin = _floor5(taking + timing, threshold)
    chart.valueAxis.valueMax = 100
    chart.valueAxis.valueStep = 5 if chart.valueAxis.valueMin >= 70 else 10
    chart.valueAxis.labelTextFormat = "%d %%"
    _axis_style(chart)
    for i, (colour, width_pt) in enumerate(((ACCENT, 2.2), (LATE, 1.6), (MISSED, 1.0))):
        chart.lines[i].strokeColor = colour
        chart.lines[i].strokeWidth = width_pt
    chart.lines[2].strokeDashArray = (4, 3)
    chart.joinedLines = 1
    d.add(chart)
    d.add(
        _legend(
            30,
            24,
            [
                (ACCENT, t("rep_taking")),
                (LATE, t("rep_timing")),
                (MISSED, t("rep_threshold_line").format(n=_num1(threshold, t))),
            ],
        )
    )
    return d


def bars(
    rows: Sequence[tuple[str, float | None]], threshold: float, title: str, width: float
) -> Drawing:
    """One horizontal bar per row (a team, a patient), red under the threshold."""
    height = 40 + 16 * max(1, len(rows))
    d = Drawing(width, height)
    _title(d, title)
    chart = HorizontalBarChart()
    label_room = min(150.0, 12 + 5.2 * max([len(name) for name, _ in rows] or [4]))
    chart.x, chart.y = label_room, 18
    chart.width, chart.height = width - label_room - 16, height - 40
    # reportlab draws the first category at the bottom; the list reads top-down.
    ordered = list(reversed(rows))
    chart.data = [[v if v is not None else 0 for _, v in ordered]]
    chart.categoryAxis.categoryNames = [name for name, _ in ordered]
    chart.valueAxis.valueMin = _floor5([v for _, v in rows], threshold)
    chart.valueAxis.valueMax = 100
    chart.valueAxis.labelTextFormat = "%d %%"
    _axis_style(chart)
    chart.categoryAxis.labels.fontSize = 7.5
    chart.categoryAxis.labels.fillColor = colors.black
    chart.bars.strokeColor = None
    chart.barWidth = 9
    for i, (_, v) in enumerate(ordered):
        chart.bars[(0, i)].fillColor = MISSED if v is not None and v < threshold else TAKEN
    d.add(chart)
    return d


def states(weekly: Sequence[Json], t: Text, width: float) -> Drawing:
    """Each week's doses by state, stacked: a device problem (unknown) and an absence
    (suspended) are seen apart from a missed dose."""
    d = Drawing(width, 180)
    _title(d, t("pdf_states_title"))
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 40, 44, width - 50, 114
    chart.data = [[w["figures"][s] for w in weekly] for s, _ in STATES]
    chart.categoryAxis.categoryNames = [f"{t('rep_week_short')} {w['week'][-2:]}" for w in weekly]
    chart.categoryAxis.style = "stacked"
    chart.valueAxis.valueMin = 0
    _axis_style(chart)
    chart.bars.strokeColor = None
    for i, (_, colour) in enumerate(STATES):
        chart.bars[i].fillColor = colour
    d.add(chart)
    d.add(_legend(40, 24, [(c, t("rep_state_" + s)) for s, c in STATES]))
    return d


def _num1(value: float, t: Text) -> str:
    text = f"{value:.1f}"
    return text.replace(".", ",") if t("pdf_decimal") == "," else text
