"""The monthly PDF report, for the municipality or one team, in the reader's language.

Built with reportlab (platypus for the flowing pages, its chart module for vector charts,
:mod:`dashboards.reports_pdf_charts`) from exactly the JSON the report pages show
(:mod:`dosewatch.reports`), so the PDF and the pages cannot disagree. Text is set in the
Bitstream Vera fonts that ship inside the reportlab wheel, embedded, so Swedish letters print
and extract the same on every machine.

The first page is the summary a committee reads: headline figures, the weekly trend, adherence
by team (or the team's lowest patients), economics and alarm handling. Then the tables: every
team and district (or every patient of the team), patients under the threshold (team report
only: the municipality's report names no patient), alarms by shift and kind, and the insights.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from io import BytesIO
from typing import Any, Literal
from zoneinfo import ZoneInfo

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import PageBreak, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import Flowable

from dashboards import reports_pdf_charts as charts
from dashboards.reports_pdf_parts import (
    FONT,
    H1,
    H2,
    MUTED,
    SMALL,
    WIDTH,
    Format,
    figures_table,
    kpis,
    para,
    register_fonts,
    stats,
    table,
)
from dashboards.reports_pdf_sections import alarm_tables, insights

Json = dict[str, Any]


@dataclass(frozen=True)
class MonthlyReport:
    """Everything one monthly PDF shows; each Json is the matching API answer."""

    scope: Literal["municipality", "team"]
    month: date  # the first day of the month
    report: Json  # dosewatch.reports.municipality() or .team()
    alarms: Json
    economics: Json | None
    insights: Json
    generated_at: datetime
    generated_by: str
    timezone: str
    language: str


def _summary(r: MonthlyReport, fmt: Format) -> list[Flowable]:
    rep, th = r.report, r.report["threshold_pct"]
    out: list[Flowable] = [kpis(rep["figures"], fmt), Spacer(1, 4 * mm)]
    # A trend needs two weeks with doses (a line of one point is no line); a quiet month, a
    # new team or a new patient shows the weekly counts alone, or a sentence.
    measured = [w for w in rep["weekly"] if w["figures"]["taking_adherence_pct"] is not None]
    if not measured:
        out.append(para(fmt.t("pdf_no_doses")))
    else:
        half = WIDTH / 2 - 3 * mm
        trend = (charts.trend(rep["weekly"], th, fmt.t, half) if len(measured) >= 2
                 else para(fmt.t("pdf_no_trend")))  # fmt: skip
        pair = Table(
            [[trend, charts.states(rep["weekly"], fmt.t, half)]],
            colWidths=[WIDTH / 2] * 2,
            hAlign="LEFT",
        )
        pair.setStyle(
            TableStyle(
                [("LEFTPADDING", (0, 0), (-1, -1), 0), ("RIGHTPADDING", (0, 0), (-1, -1), 0)]
            )
        )
        out.append(pair)
    if r.scope == "municipality":
        rows = [
            (t["name"], t["figures"]["taking_adherence_pct"])
            for t in rep["teams"]
            if t["team_id"] is not None and t["figures"]["expected"]
        ]
        title = fmt.t("rep_by_team_adherence")
    else:
        people = sorted(
            (p for p in rep["patients"] if p["figures"]["expected"]),
            key=lambda p: (p["figures"]["taking_adherence_pct"], p["name"]),
        )[:12]
        rows = [(p["name"], p["figures"]["taking_adherence_pct"]) for p in people]
        title = fmt.t("rep_lowest_patients")
    if rows:
        out += [Spacer(1, 5 * mm), charts.bars(rows, th, title, WIDTH)]
    if r.economics:
        e = r.economics
        out += [
            para(fmt.t("rep_economics"), H2),
            stats(
                [
                    (fmt.t("rep_net_per_month"), fmt.sek(e["net_sek_per_month"])),
                    (fmt.t("rep_visits_avoided"), fmt.num(e["visits_avoided"])),
                    (fmt.t("rep_hours_freed"), fmt.num(e["staff_hours_freed"])),
                    (fmt.t("rep_doses_dispensed"), fmt.num(e["doses_dispensed"])),
                    (fmt.t("rep_gross"), fmt.sek(e["gross_saving_sek"])),
                    (fmt.t("rep_rent"), fmt.sek(e["rent_sek"])),
                ]
            ),
        ]
    a = r.alarms
    out += [
        para(fmt.t("rep_alarm_handling"), H2),
        stats(
            [
                (fmt.t("rep_alarms"), fmt.num(a["alarms"])),
                (fmt.t("rep_per_100"), fmt.pct(a["alarms_per_100_patient_days"]).replace(" %", "")),
                (fmt.t("rep_ack_median"), fmt.duration(a["time_to_acknowledge"]["median_s"])),
                (fmt.t("rep_ack_p90"), fmt.duration(a["time_to_acknowledge"]["p90_s"])),
                (fmt.t("rep_res_median"), fmt.duration(a["time_to_resolve"]["median_s"])),
                (fmt.t("rep_not_acked_15"), fmt.num(a["not_acknowledged_within_15_min"])),
                (fmt.t("rep_last_step"), fmt.num(a["reached_last_step"])),
                (
                    fmt.t("rep_delivery_failures"),
                    fmt.num(sum(f["count"] for f in a["delivery_failures"])),
                ),
            ]
        ),
    ]
    return out


def _details(r: MonthlyReport, fmt: Format) -> list[Flowable]:
    rep, th = r.report, r.report["threshold_pct"]
    out: list[Flowable] = []
    if r.scope == "municipality":
        teams = [
            ((t["name"] or fmt.t("rep_no_team"), fmt.num(t["figures"]["patients"])), t["figures"])
            for t in rep["teams"]
            if t["team_id"] is not None or t["figures"]["expected"]
        ]
        out += [
            para(fmt.t("rep_teams"), H2),
            figures_table(
                fmt,
                [fmt.t("rep_team"), fmt.t("rep_patients")],
                teams,
                ((fmt.t("rep_municipality"), fmt.num(rep["figures"]["patients"])), rep["figures"]),
                38 * mm,
            ),
        ]
        districts = [
            ((d["team_name"] or fmt.t("rep_no_team"), d["district"] or "–"), d["figures"])
            for d in rep["districts"]
        ]
        if districts:
            out += [
                para(fmt.t("rep_districts"), H2),
                figures_table(
                    fmt, [fmt.t("rep_team"), fmt.t("rep_district")], districts, None, 32 * mm
                ),
            ]
        per_team: dict[int | None, int] = {}
        for p in rep["under_threshold"]:
            per_team[p["team_id"]] = per_team.get(p["team_id"], 0) + 1
        names = {t["team_id"]: t["name"] or fmt.t("rep_no_team") for t in rep["teams"]}
        out += [
            para(fmt.t("rep_under", n=fmt.pct(th)), H2),
            para(fmt.t("pdf_under_municipality", n=fmt.num(len(rep["under_threshold"])))),
        ]
        if per_team:
            out.append(
                table(
                    [fmt.t("rep_team"), fmt.t("rep_patients")],
                    [
                        [names.get(k, "–"), fmt.num(v)]
                        for k, v in sorted(per_team.items(), key=lambda kv: -kv[1])
                    ],
                    [60 * mm, 25 * mm],
                )
            )
    else:
        patients = [((p["name"], p["district"] or "–"), p["figures"]) for p in rep["patients"]]
        out += [
            para(fmt.t("rep_patients_title", n=fmt.num(len(patients))), H2),
            figures_table(
                fmt,
                [fmt.t("rep_patient"), fmt.t("rep_district")],
                patients,
                ((rep["team"]["name"], ""), rep["figures"]),
                40 * mm,
            ),
        ]
        under = [((p["name"], p["district"] or "–"), p["figures"]) for p in rep["under_threshold"]]
        out += [
            para(fmt.t("rep_under", n=fmt.pct(th)), H2),
            figures_table(fmt, [fmt.t("rep_patient"), fmt.t("rep_district")], under, None, 40 * mm)
            if under
            else para(fmt.t("rep_none_under")),
        ]
    out += alarm_tables(r.alarms, fmt) + insights(r.insights, r.scope == "team", fmt)
    out += [Spacer(1, 6 * mm), para(fmt.t("pdf_definitions"), SMALL)]
    return out


def title_of(r: MonthlyReport) -> str:
    fmt = Format(r.language)
    who = fmt.t("rep_municipality") if r.scope == "municipality" else r.report["team"]["name"]
    return f"{fmt.t('pdf_title')} · {who} · {fmt.month(r.month)}"


def render(r: MonthlyReport) -> bytes:
    """The PDF's bytes."""
    register_fonts()
    fmt = Format(r.language)
    title = title_of(r)
    stamp = r.generated_at.astimezone(ZoneInfo(r.timezone)).strftime("%Y-%m-%d %H:%M")
    footer = fmt.t("pdf_footer", when=stamp, who=r.generated_by)

    def decorate(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(FONT, 7)
        canvas.setFillColor(MUTED)
        canvas.drawString(18 * mm, 10 * mm, footer)
        canvas.drawRightString(A4[0] - 18 * mm, 10 * mm, fmt.t("pdf_page", n=doc.page))
        canvas.setStrokeColor(charts.ACCENT)
        canvas.setLineWidth(2)
        canvas.line(18 * mm, A4[1] - 12 * mm, A4[0] - 18 * mm, A4[1] - 12 * mm)
        canvas.restoreState()

    buf = BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=17 * mm,
        bottomMargin=16 * mm,
        title=title,
        author="dosewatch",
        subject=fmt.t("pdf_title"),
        creator="dosewatch",
        lang=r.language,
    )
    period = r.report["period"]
    who = fmt.t("rep_municipality") if r.scope == "municipality" else r.report["team"]["name"]
    story: list[Flowable] = [
        para(f"{fmt.t('pdf_title')} · {fmt.month(r.month)}", SMALL),
        para(who, H1),
        para(
            fmt.t(
                "pdf_period",
                start=period["from"],
                end=period["to"],
                days=period["days"],
                n=fmt.pct(r.report["threshold_pct"]),
            ),
            SMALL,
        ),
        Spacer(1, 4 * mm),
        *_summary(r, fmt),
        PageBreak(),
        *_details(r, fmt),
    ]
    doc.build(story, onFirstPage=decorate, onLaterPages=decorate)
    return buf.getvalue()
