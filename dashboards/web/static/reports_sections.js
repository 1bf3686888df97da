/* Sections the municipality and team pages share: alarm handling, economics and the insights
   (falling adherence, habitually late doses, troubled dispensers). */
"use strict";
const RS = (() => {
  const { t, el } = DW;
  const { num, pct, sek, duration, panel, empty } = R;

  function stats(pairs) {
    return el("dl", { class: "stats" }, pairs.map(([label, value, cls]) => el("div", {}, el("dt", {}, label), el("dd", { class: cls || "" }, value))));
  }

  function alarms(a) {
    const ack = a.time_to_acknowledge, res = a.time_to_resolve;
    const byShift = a.by_shift || [];
    const table = (rows) => el("div", { class: "table-wrap" }, el("table", { class: "figures" },
      el("thead", {}, el("tr", {}, el("th", {}, ""), ["rep_alarms", "rep_ack_median", "rep_ack_p90", "rep_res_median", "rep_res_p90"].map((k) => el("th", { class: "n" }, t(k))))),
      el("tbody", {}, rows.map((r) => el("tr", {}, el("td", {}, r.label),
        el("td", { class: "n" }, num(r.alarms)), el("td", { class: "n" }, duration(r.time_to_acknowledge.median_s)), el("td", { class: "n" }, duration(r.time_to_acknowledge.p90_s)),
        el("td", { class: "n" }, duration(r.time_to_resolve.median_s)), el("td", { class: "n" }, duration(r.time_to_resolve.p90_s)))))));
    const shiftLabel = (r) => t("rep_shift_" + r.key) + (r.label ? ` (${r.label})` : "");
    const failures = (a.delivery_failures || []).reduce((n, f) => n + f.count, 0);
    return panel(t("rep_alarm_handling"), t("rep_alarm_handling_explain"),
      stats([
        [t("rep_alarms"), num(a.alarms)],
        [t("rep_per_100"), a.alarms_per_100_patient_days === null ? "–" : R.pct(a.alarms_per_100_patient_days).replace(" %", "")],
        [t("rep_ack_median"), duration(ack.median_s)],
        [t("rep_ack_p90"), duration(ack.p90_s)],
        [t("rep_res_median"), duration(res.median_s)],
        [t("rep_not_acked_15"), num(a.not_acknowledged_within_15_min), a.not_acknowledged_within_15_min ? "under-mark" : ""],
        [t("rep_last_step"), num(a.reached_last_step)],
        [t("rep_delivery_failures"), num(failures), failures ? "under-mark" : ""],
      ]),
      el("div", { class: "grid-2 even" },
        el("div", {}, el("h3", {}, t("rep_by_shift")), byShift.length ? R.countChart(byShift.map(shiftLabel), byShift.map((r) => r.alarms), t("rep_alarms"), t("rep_by_shift")) : empty()),
        el("div", {}, el("h3", {}, t("rep_outcomes")), (a.outcomes || []).length
          ? el("ul", { class: "insight-list" }, a.outcomes.map((o) => el("li", {}, t("outcome_" + o.outcome), ": ", el("strong", {}, num(o.count)))))
          : empty())),
      el("h3", {}, t("rep_by_kind")), (a.by_kind || []).length ? table(a.by_kind.map((r) => ({ ...r, label: t("kind_" + r.key) }))) : empty(),
      a.by_team && a.by_team.length > 1 ? [el("h3", {}, t("rep_by_team")), table(a.by_team)] : null);
  }

  function economics(e) {
    const s = e.settings;
    return panel(t("rep_economics"), t("rep_economics_explain", {
      share: Math.round(s.visit_anyway_share * 100), min: num(s.minutes_per_visit), cost: sek(s.cost_per_visit_sek), rent: sek(s.dispenser_rent_sek_per_month),
    }),
      stats([
        [t("rep_net_per_month"), sek(e.net_sek_per_month), "big"],
        [t("rep_visits_avoided"), num(e.visits_avoided)],
        [t("rep_hours_freed"), num(e.staff_hours_freed)],
        [t("rep_doses_dispensed"), num(e.doses_dispensed)],
        [t("rep_gross"), sek(e.gross_saving_sek)],
        [t("rep_rent"), sek(e.rent_sek)],
      ]));
  }

  function insights(ins, patientLink) {
    const who = (r) => el("a", { href: patientLink(r.patient_id) }, r.name);
    const falling = ins.falling.length ? el("ul", { class: "insight-list" }, ins.falling.map((r) => el("li", {}, who(r), " ",
      el("strong", { class: "under-mark" }, t("rep_change_pp", { n: R.pct(r.change_pp).replace(" %", "") })),
      el("span", { class: "evidence" }, t("rep_falling_evidence", { recent: pct(r.recent_pct), before: pct(r.before_pct), n: num(r.recent_expected), m: num(r.before_expected) })))))
      : empty("rep_none_falling");
    const late = ins.habitually_late.length ? el("ul", { class: "insight-list" }, ins.habitually_late.map((r) => el("li", {}, who(r), " · ",
      t("rep_late_line", { time: r.local_time, label: r.label || "", suggested: r.suggested_time }),
      el("span", { class: "evidence" }, t("rep_late_evidence", { late: num(r.late), takes: num(r.takes), time: r.local_time, median: r.median_take_time, delay: num(r.median_delay_min) })))))
      : empty("rep_none_late");
    const devices = ins.devices.length ? el("ul", { class: "insight-list" }, ins.devices.map((r) => el("li", {}, el("strong", {}, r.dispenser_id), " · ", who(r),
      r.reasons.map((k) => el("span", { class: "tag device" }, t("rep_reason_" + k))),
      el("span", { class: "evidence" }, t("rep_device_evidence", { offline: num(r.offline_periods), unknown: num(r.unknown_slots), replayed: num(r.replayed_events), clock: r.clock_offset_s === null ? "–" : t("rep_seconds", { n: num(r.clock_offset_s) }) })))))
      : empty("rep_none_devices");
    return el("div", { class: "grid-3" },
      panel(t("rep_falling"), t("rep_falling_explain"), falling),
      panel(t("rep_habitually_late"), t("rep_late_explain"), late),
      panel(t("rep_devices"), t("rep_devices_explain"), devices));
  }

  /* Insights are "as of" a day: the period's last day, or today while the period runs on. */
  function asOf(period) {
    const today = document.getElementById("report").dataset.today;
    return period.to < today ? period.to : null;
  }

  return { alarms, economics, insights, asOf, stats };
})();
