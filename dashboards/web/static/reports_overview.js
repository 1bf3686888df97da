/* The municipality overview (managers, admins): headline adherence, the weekly trend, every
   team (a click opens the team), economics, alarm handling, patients under the threshold and
   the insights. */
"use strict";
(() => {
  const { t, api, el } = DW;
  const { link, periodParams, num, pct, panel, empty } = R;

  async function load() {
    const q = periodParams();
    const [m, alarms, eco] = await Promise.all([
      api("GET", "/api/v1/reports/municipality" + q),
      api("GET", "/api/v1/reports/alarms" + q),
      api("GET", "/api/v1/reports/economics" + q),
    ]);
    const asOf = RS.asOf(m.period);
    const ins = await api("GET", "/api/v1/reports/insights" + (asOf ? `?as_of=${asOf}` : ""));
    const th = m.threshold_pct;
    const teamHref = (id) => link(`/reports/teams/${id}`);
    const patientHref = (id) => link(`/reports/patients/${id}`);

    R.crumbs([[t("rep_municipality")]]);
    R.heading(t("rep_overview_title"), R.periodText(m.period));
    R.downloads([
      ["PDF", t("rep_dl_pdf_month"), `/api/v1/reports/municipality.pdf?month=${m.period.from.slice(0, 7)}`],
      ["CSV", t("rep_dl_teams"), "/api/v1/reports/municipality.csv" + periodParams({ table: "teams" })],
      ["CSV", t("rep_dl_districts"), "/api/v1/reports/municipality.csv" + periodParams({ table: "districts" })],
      ["CSV", t("rep_dl_weekly"), "/api/v1/reports/municipality.csv" + periodParams({ table: "weekly" })],
      ["CSV", t("rep_dl_under"), "/api/v1/reports/municipality.csv" + periodParams({ table: "under_threshold" })],
      ["CSV", t("rep_dl_alarms"), "/api/v1/reports/alarms.csv" + periodParams({ table: "by_team" })],
    ]);

    const teams = m.teams.filter((r) => r.figures.expected > 0 || r.team_id !== null);
    const teamName = (r) => (r.team_id === null ? t("rep_no_team") : r.name);
    const teamCell = (r) => el("td", { class: "name" }, r.team_id === null ? teamName(r) : el("a", { href: teamHref(r.team_id) }, r.name));
    const bars = teams.filter((r) => r.team_id !== null && r.figures.expected > 0)
      .map((r) => ({ label: r.name, value: r.figures.taking_adherence_pct, id: r.team_id }));
    const teamOf = (id) => m.teams.find((x) => x.team_id === id)?.name || t("rep_no_team");
    const under = R.underTable(m.under_threshold, th, patientHref, (p) => [teamOf(p.team_id), p.district || "–"],
      [t("rep_team"), t("rep_district")]);

    DW.fill(document.getElementById("report-body"),
      R.figureKpis(m.figures, th),
      el("div", { class: "grid-2" },
        panel(t("rep_trend"), t("rep_trend_explain"), m.weekly.length ? R.trendChart(m.weekly, th, t("rep_trend")) : empty()),
        panel(t("rep_by_team_adherence"), t("rep_click_team"), bars.length
          ? R.barChart(bars, th, t("rep_by_team_adherence"), (row) => location.assign(teamHref(row.id))) : empty())),
      panel(t("rep_teams"), t("rep_teams_explain"),
        R.figuresTable([t("rep_team"), t("rep_patients")], teams.map((r) => ({ cells: [teamCell(r), el("td", { class: "n" }, num(r.figures.patients))], figures: r.figures })), th,
          { cells: [el("td", {}, t("rep_municipality")), el("td", { class: "n" }, num(m.figures.patients))], figures: m.figures })),
      el("div", { class: "grid-2" },
        panel(t("rep_under", { n: pct(th) }), t("rep_under_explain"),
          m.under_threshold.length ? under : empty("rep_none_under")),
        RS.economics(eco)),
      RS.alarms(alarms),
      panel(t("rep_districts"), null, m.districts.length
        ? R.figuresTable([t("rep_team"), t("rep_district")], m.districts.map((d) => ({
          cells: [el("td", {}, d.team_name || t("rep_no_team")),
            el("td", {}, d.team_id !== null && d.district ? el("a", { href: link(`/reports/teams/${d.team_id}`, { district: d.district }) }, d.district) : d.district || t("rep_no_district"))],
          figures: d.figures,
        })), th) : empty()),
      el("h2", { class: "section-title" }, t("rep_insights"), " ", el("span", { class: "tag" }, t("rep_as_of", { day: R.date(ins.as_of) }))),
      RS.insights(ins, patientHref));
  }

  document.addEventListener("DOMContentLoaded", () => load().catch(R.fail));
})();
