/* One patient's figures (the API audits every opening): day by day, by dose time and by week,
   with the dose calendar one click away. */
"use strict";
(() => {
  const { t, api, el } = DW;
  const { link, periodParams, num, pct, panel, empty } = R;
  const id = document.getElementById("report").dataset.patientId;
  const oversees = ["manager", "admin"].includes(DW.page.user?.role);

  async function load() {
    const r = await api("GET", `/api/v1/reports/patients/${id}` + periodParams());
    const p = r.patient;
    const th = Number(R.here.get("threshold") || 95);
    R.crumbs([...(oversees ? [[t("rep_municipality"), link("/reports")]] : []),
      ...(p.team_id ? [[p.team_name, link(`/reports/teams/${p.team_id}`)]] : []), [p.name]]);
    R.heading(p.name, [p.team_name || t("rep_no_team"), p.district, p.dispensers.join(", "), R.periodText(r.period)].filter(Boolean).join(" · "));
    const calendarHref = link(`/reports/patients/${id}/calendar`);
    R.downloads([
      ["CSV", t("rep_dl_daily"), `/api/v1/reports/patients/${id}.csv` + periodParams({ table: "daily" })],
      ["CSV", t("rep_dl_doses"), `/api/v1/reports/patients/${id}.csv` + periodParams({ table: "doses" })],
      ["CSV", t("rep_dl_calendar"), `/api/v1/reports/patients/${id}.csv` + periodParams({ table: "calendar" })],
    ]);

    const days = r.daily;
    const doseRows = r.doses.map((d) => ({ cells: [el("td", {}, d.local_time), el("td", {}, d.label || "–")], figures: d.figures }));
    DW.fill(document.getElementById("report-body"),
      R.figureKpis(r.figures, th, true),
      r.figures.taking_adherence_pct !== null && r.figures.taking_adherence_pct < th
        ? el("p", { class: "report-note under-mark" }, t("rep_patient_under", { v: pct(r.figures.taking_adherence_pct), n: pct(th) })) : null,
      r.figures.unknown ? el("p", { class: "report-note device-note" }, t("rep_unknown_note", { n: num(r.figures.unknown) })) : null,
      el("p", { class: "actions-row" },
        el("a", { class: "button-link primary", href: calendarHref }, "▦ ", t("rep_open_calendar")), " ",
        el("a", { class: "button-link", href: `/patients/${id}` }, t("rep_open_record"))),
      panel(t("rep_daily"), t("rep_daily_explain"),
        days.length ? R.stateChart(days.map((d) => R.date(d.date, true)), days, t("rep_daily")) : empty(),
        el("p", { class: "explain" }, t("rep_days_summary", {
          ok: num(days.filter((d) => d.correct === true).length),
          bad: num(days.filter((d) => d.correct === false).length),
          none: num(days.filter((d) => d.correct === null).length),
        }))),
      panel(t("rep_by_dose_time"), t("rep_by_dose_time_explain"), doseRows.length
        ? R.figuresTable([t("rep_dose_time"), t("rep_label")], doseRows, th) : empty()),
      panel(t("rep_trend"), t("rep_trend_explain"), r.weekly.length ? R.trendChart(r.weekly, th, t("rep_trend")) : empty()));
  }

  document.addEventListener("DOMContentLoaded", () => load().catch(R.fail));
})();
