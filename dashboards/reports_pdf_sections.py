"""The monthly PDF's later sections: alarm handling by shift, kind and outcome, and the insights."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from reportlab.lib.units import mm
from reportlab.platypus import KeepTogether, Spacer
from reportlab.platypus.flowables import Flowable

from dashboards.reports_pdf_parts import H2, SMALL, WIDTH, Format, para, table

Json = dict[str, Any]


def alarm_tables(a: Json, fmt: Format) -> list[Flowable]:
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


def insights(ins: Json, named: bool, fmt: Format) -> list[Flowable]:
    """The insights; ``named`` is false for the municipality's report, which names no patient."""

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
