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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from io import BytesIO
from typing import Any, Literal
from zoneinfo import ZoneInfo

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, PageBreak, SimpleDocTemplate, Spacer, Table, TableStyle
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
    if rep["weekly"]:
        half = WIDTH / 2 - 3 * mm
        pair = Table(
            [
                [
                    charts.trend(rep["weekly"], th, fmt.t, half),
                    charts.states(rep["weekly"], fmt.t, half),
                ]
            ],
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
    out += _alarm_tables(r.alarms, fmt) + _insights(r, fmt)
    out += [Spacer(1, 6 * mm), para(fmt.t("pdf_definitions"), SMALL)]
    return out


def _alarm_tables(a: Json, fmt: Format) -> list[Flowable]:
    head = [""] + [
        fmt.t(k)
        for k in ("rep_alarms", "rep_ack_median", "rep_ack_p90", "rep_res_median", "rep_res_p90")
    ]

    def rows(groups: Sequence[Json], label: Callable[[Json], str]) -> list[list[str]]:
        return [
            [
                label(g),
                fmt.num(g["alarms"]),
                fmt.duration(g["time_to_acknowledge"]["median_s"]),
                fmt.duration(g["time_to_acknowledge"]["p90_s"]),
                fmt.duration(g["time_to_resolve"]["median_s"]),
                fmt.duration(g["time_to_resolve"]["p90_s"]),
            ]
            for g in groups
        ]

    widths = [50 * mm] + [(WIDTH - 50 * mm) / 5] * 5
    out: list[Flowable] = [para(fmt.t("rep_alarm_handling"), H2)]
    shift = rows(a["by_shift"], lambda g: fmt.t("rep_shift_" + g["key"]) + f" ({g['label']})")
    kind = rows(a["by_kind"], lambda g: fmt.t("kind_" + g["key"]))
    if not shift and not kind:
        return [*out, para(fmt.t("rep_none"))]
    out += [
        para(fmt.t("rep_by_shift"), SMALL),
        table(head, shift, widths),
        Spacer(1, 2 * mm),
        para(fmt.t("rep_by_kind"), SMALL),
        table(head, kind, widths),
    ]
    if a["outcomes"]:
        out += [
            Spacer(1, 2 * mm),
            para(fmt.t("rep_outcomes"), SMALL),
            table(
                [fmt.t("rep_outcomes"), fmt.t("rep_alarms")],
                [[fmt.t("outcome_" + o["outcome"]), fmt.num(o["count"])] for o in a["outcomes"]],
                [60 * mm, 25 * mm],
            ),
        ]
    return out


def _insights(r: MonthlyReport, fmt: Format) -> list[Flowable]:
    ins = r.insights
    named = r.scope == "team"  # the municipality's report names no patient

    def who(row: Json) -> str:
        return f"{row['name']}: " if named else ""

    falling = [
        who(f) + fmt.t(
            "rep_falling_evidence", recent=fmt.pct(f["recent_pct"]),
            before=fmt.pct(f["before_pct"]), n=fmt.num(f["recent_expected"]),
            m=fmt.num(f["before_expected"]),
        )
        for f in ins["falling"]
    ]  # fmt: skip
    late = [
        who(h) + fmt.t(
            "rep_late_line", time=h["local_time"], label=h["label"] or "",
            suggested=h["suggested_time"],
        ) + " – " + fmt.t(
            "rep_late_evidence", late=fmt.num(h["late"]), takes=fmt.num(h["takes"]),
            time=h["local_time"], median=h["median_take_time"],
            delay=fmt.num(h["median_delay_min"]),
        )
        for h in ins["habitually_late"]
    ]  # fmt: skip
    devices = [
        f"{d['dispenser_id']}: " + fmt.t(
            "rep_device_evidence", offline=fmt.num(d["offline_periods"]),
            unknown=fmt.num(d["unknown_slots"]), replayed=fmt.num(d["replayed_events"]),
            clock=fmt.seconds(d["clock_offset_s"]),
        )
        for d in ins["devices"]
    ]  # fmt: skip
    out: list[Flowable] = [
        para(fmt.t("rep_insights") + " · " + fmt.t("rep_as_of", day=ins["as_of"]), H2)
    ]
    for title, lines, none in (
        ("rep_falling", falling, "rep_none_falling"),
        ("rep_habitually_late", late, "rep_none_late"),
        ("rep_devices", devices, "rep_none_devices"),
    ):
        block = [para(fmt.t(title), SMALL)]
        block += [para("• " + line) for line in lines] or [para(fmt.t(none))]
        out += [KeepTogether(block), Spacer(1, 2 * mm)]
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
