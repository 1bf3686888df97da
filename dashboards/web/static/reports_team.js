/* One team (or one district of it): its adherence and trend, every patient (a click opens the
   patient), the team's alarm handling and insights; economics for managers and admins. A nurse
   reads only their own team: the API answers 404 for any other. */
"use strict";
(() => {
  const { t, api, el } = DW;
  const { link, periodParams, num, pct, panel, empty } = R;
  const box = document.getElementById("report");
  const teamId = box.dataset.teamId;
  const district = box.dataset.district || null;
  const oversees = ["manager", "admin"].includes(DW.page.user?.role);

  async function load() {
    const base = `/api/v1/reports/teams/${teamId}` + (district ? `/districts/${encodeURIComponent(district)}` : "");
    const q = periodParams();
    const scoped = periodParams({ team_id: teamId });
    const [r, alarms, eco] = await Promise.all([
      api("GET", base + q),
      api("GET", "/api/v1/reports/alarms" + scoped),
      oversees ? api("GET", "/api/v1/reports/economics" + scoped) : Promise.resolve(null),
    ]);
    const asOf = RS.asOf(r.period);
    const ins = await api("GET", `/api/v1/reports/insights?team_id=${teamId}` + (asOf ? `&as_of=${asOf}` : ""));
    const th = r.threshold_pct;
    const teamHref = link(`/reports/teams/${teamId}`);
    const patientHref = (id) => link(`/reports/patients/${id}`);

    R.crumbs([...(oversees ? [[t("rep_municipality"), link("/reports")]] : []),
      district ? [r.team.name, teamHref] : [r.team.name], ...(district ? [[district]] : [])]);
    R.heading(district ? `${r.team.name} · ${district}` : r.team.name, R.periodText(r.period));
    R.downloads([
      ["PDF", t("rep_dl_pdf_month"), `/api/v1/reports/teams/${teamId}.pdf?month=${r.period.from.slice(0, 7)}`],
      ["CSV", t("rep_dl_patients"), `/api/v1/reports/teams/${teamId}.csv` + periodParams({ table: "patients" })],
      ["CSV", t("rep_dl_weekly"), `/api/v1/reports/teams/${teamId}.csv` + periodParams({ table: "weekly" })],
      ["CSV", t("rep_dl_under"), `/api/v1/reports/teams/${teamId}.csv` + periodParams({ table: "under_threshold" })],
      ["CSV", t("rep_dl_alarms"), "/api/v1/reports/alarms.csv" + periodParams({ team_id: teamId, table: "by_kind" })],
    ]);

    const patients = r.patients;
    const bars = patients.filter((p) => p.figures.expected > 0)
      .sort((a, b) => (a.figures.taking_adherence_pct ?? 101) - (b.figures.taking_adherence_pct ?? 101))
      .slice(0, 15).map((p) => ({ label: p.name, value: p.figures.taking_adherence_pct, id: p.patient_id }));
    const patientRows = patients.map((p) => ({
      cells: [el("td", { class: "name" }, el("a", { href: patientHref(p.patient_id) }, p.name)), el("td", {}, p.district || "–")],
      figures: p.figures,
    }));
    const districtRows = r.districts.map((d) => ({
      cells: [el("td", {}, d.district && !district ? el("a", { href: link(`/reports/teams/${teamId}`, { district: d.district }) }, d.district) : d.district || t("rep_no_district")),
        el("td", { class: "n" }, num(d.figures.patients))],
      figures: d.figures,
    }));

    DW.fill(document.getElementById("report-body"),
      R.figureKpis(r.figures, th),
      el("div", { class: "grid-2" },
        panel(t("rep_trend"), t("rep_trend_explain"), r.weekly.length ? R.trendChart(r.weekly, th, t("rep_trend")) : empty()),
        panel(t("rep_lowest_patients"), t("rep_click_patient"), bars.length
          ? R.barChart(bars, th, t("rep_lowest_patients"), (row) => location.assign(patientHref(row.id))) : empty())),
      panel(t("rep_patients_title", { n: num(patients.length) }), t("rep_patients_explain"), patientRows.length
        ? R.figuresTable([t("rep_patient"), t("rep_district")], patientRows, th,
          { cells: [el("td", {}, district || r.team.name), el("td", {}, "")], figures: r.figures })
        : empty()),
      panel(t("rep_under", { n: pct(th) }), t("rep_under_explain"), r.under_threshold.length
        ? R.underTable(r.under_threshold, th, patientHref, (p) => [p.district || "–"], [t("rep_district")])
        : empty("rep_none_under")),
      panel(t("rep_districts"), null, districtRows.length
        ? R.figuresTable([t("rep_district"), t("rep_patients")], districtRows, th) : empty()),
      RS.alarms(alarms),
      eco ? RS.economics(eco) : null,
      el("h2", { class: "section-title" }, t("rep_insights"), " ", el("span", { class: "tag" }, t("rep_as_of", { day: R.date(ins.as_of) }))),
      RS.insights(ins, patientHref));
  }

  document.addEventListener("DOMContentLoaded", () => load().catch(R.fail));
})();
