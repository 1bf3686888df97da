/* A patient's dose calendar: one row per local day, one column per dose time, every slot with
   its state and, when taken, the time the server received it (in the patient's time zone). The
   API limits the calendar to 62 days; a longer period shows its last month. */
"use strict";
(() => {
  const { t, api, el } = DW;
  const { link, periodParams, num } = R;
  const id = document.getElementById("report").dataset.patientId;
  const oversees = ["manager", "admin"].includes(DW.page.user?.role);
  const locale = DW.page.lang === "sv" ? "sv-SE" : "en-GB";
  const weekday = new Intl.DateTimeFormat(locale, { weekday: "short", day: "numeric", month: "short", timeZone: "UTC" });

  const calendarQuery = (period, extra) => (period.days <= 62 ? periodParams(extra)
    : periodParams({ ...extra, month: period.to.slice(0, 7), from: null, to: null, week: null }));

  async function load() {
    const r = await api("GET", `/api/v1/reports/patients/${id}` + periodParams());
    const cal = await api("GET", `/api/v1/reports/patients/${id}/calendar` + calendarQuery(r.period));
    const p = r.patient;
    const takenAt = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit", timeZone: p.timezone });
    const patientHref = link(`/reports/patients/${id}`);
    R.crumbs([...(oversees ? [[t("rep_municipality"), link("/reports")]] : []),
      ...(p.team_id ? [[p.team_name, link(`/reports/teams/${p.team_id}`)]] : []), [p.name, patientHref], [t("rep_calendar_title")]]);
    R.heading(`${p.name} · ${t("rep_calendar_title")}`, R.periodText(cal.period) + " · " + t("rep_tz", { tz: p.timezone }));
    R.downloads([["CSV", t("rep_dl_calendar"), `/api/v1/reports/patients/${id}.csv` + calendarQuery(r.period, { table: "calendar" })]]);

    const columns = [...new Set(cal.slots.map((s) => s.local_time))].sort();
    const labelOf = Object.fromEntries(cal.slots.map((s) => [s.local_time, s.label]));
    const byDay = new Map();
    for (const s of cal.slots) {
      const key = s.date + " " + s.local_time;
      byDay.set(key, [...(byDay.get(key) || []), s]);
    }
    const correct = Object.fromEntries(r.daily.map((d) => [d.date, d.correct]));
    const dates = [];
    for (let d = new Date(cal.period.from + "T00:00:00Z"); d <= new Date(cal.period.to + "T00:00:00Z"); d.setUTCDate(d.getUTCDate() + 1)) dates.push(d.toISOString().slice(0, 10));

    const cell = (slots) => (slots ? el("td", { class: "cell st-" + slots[0].state },
      slots.map((s) => el("div", { title: s.dispenser_id },
        el("span", { class: "st" }, t("rep_state_" + s.state)),
        s.taken_received_at ? el("span", { class: "at" }, takenAt.format(new Date(s.taken_received_at))) : null)))
      : el("td", { class: "none" }));
    const dayMark = (v) => (v === true ? el("span", { class: "day-ok", title: t("rep_day_correct") }, "✓")
      : v === false ? el("span", { class: "day-bad", title: t("rep_day_not_correct") }, "✗") : el("span", { class: "zero" }, "–"));
    const counted = cal.slots.filter((s) => s.counts).length;
    // A day whose UTC offset differs from the day before's: the clocks changed that night.
    const offset = new Intl.DateTimeFormat("en", { timeZone: p.timezone, timeZoneName: "longOffset" });
    const offsetAt = (d) => offset.formatToParts(new Date(d + "T12:00:00Z")).find((x) => x.type === "timeZoneName").value;
    const dayBefore = (d) => { const x = new Date(d + "T00:00:00Z"); x.setUTCDate(x.getUTCDate() - 1); return x.toISOString().slice(0, 10); };
    const dst = (d) => offsetAt(d) !== offsetAt(dayBefore(d));

    DW.fill(document.getElementById("report-body"),
      el("section", { class: "panel" },
        R.legend(["taken", "taken_late", "missed", "unknown", "suspended"]),
        el("p", { class: "explain" }, t("rep_calendar_explain", { n: num(cal.slots.length), counted: num(counted) })),
        cal.slots.length ? el("div", { class: "table-wrap" }, el("table", { class: "calendar" },
          el("thead", {}, el("tr", {}, el("th", {}, t("rep_day")), el("th", {}, t("rep_day_ok")),
            columns.map((c) => el("th", {}, c, labelOf[c] ? el("span", { class: "tag" }, labelOf[c]) : null)))),
          el("tbody", {}, dates.map((d) => {
            const dow = new Date(d + "T00:00:00Z").getUTCDay();
            return el("tr", { class: dow === 0 || dow === 6 ? "weekend" : "" },
              el("th", {}, weekday.format(new Date(d + "T00:00:00Z")), dst(d) ? el("span", { class: "tag dst-tag", title: t("rep_dst_title") }, t("rep_dst")) : null),
              el("td", {}, dayMark(correct[d])),
              columns.map((c) => cell(byDay.get(d + " " + c))));
          })))) : R.empty()));
  }

  document.addEventListener("DOMContentLoaded", () => load().catch(R.fail));
})();
