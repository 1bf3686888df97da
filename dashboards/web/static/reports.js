/* What the report pages share: the period in the URL (handed unchanged to /api/v1/reports and to
   every drill-down link), number formats in the user's language, KPI cards, tables of Figures
   and the charts (Chart.js, vendored under /static/vendor). Every figure shown comes from the
   API; nothing is computed here but formatting and shares of a whole for a chart. */
"use strict";
const R = (() => {
  const { t, el } = DW;
  const locale = DW.page.lang === "sv" ? "sv-SE" : "en-GB";
  const PERIOD_KEYS = ["month", "week", "from", "to", "threshold"];
  const css = getComputedStyle(document.body);
  const colour = (name) => css.getPropertyValue("--" + name).trim();
  const STATES = ["taken", "taken_late", "missed", "unknown", "suspended"];
  const STATE_COLOUR = { taken: "taken", taken_late: "late", missed: "missed", unknown: "unknown", suspended: "suspended", pending: "suspended" };

  /* ---- the period ---- */
  const here = new URLSearchParams(location.search);
  function periodParams(extra) {
    const q = new URLSearchParams();
    for (const k of PERIOD_KEYS) if (here.get(k)) q.set(k, here.get(k));
    for (const [k, v] of Object.entries(extra || {})) {
      if (v === null) q.delete(k);
      else if (v !== undefined && v !== "") q.set(k, v);
    }
    const s = q.toString();
    return s ? "?" + s : "";
  }
  const link = (path, extra) => path + periodParams(extra);

  function setUpPicker() {
    const form = document.getElementById("period");
    const kind = document.getElementById("period-kind");
    const byId = (id) => document.getElementById(id);
    const thisMonth = document.getElementById("report").dataset.today.slice(0, 7);
    kind.value = here.get("week") ? "week" : here.get("from") ? "custom" : "month";
    byId("period-month").value = here.get("month") || thisMonth;
    if (here.get("week")) byId("period-week").value = here.get("week");
    if (here.get("from")) byId("period-from").value = here.get("from");
    if (here.get("to")) byId("period-to").value = here.get("to");
    const threshold = byId("period-threshold");
    if (threshold && here.get("threshold")) threshold.value = here.get("threshold");
    const show = () => form.querySelectorAll("[data-kind]").forEach((l) => { l.hidden = l.dataset.kind !== kind.value; });
    kind.addEventListener("change", show);
    show();
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const q = new URLSearchParams();
      for (const [k, v] of new URLSearchParams(location.search)) if (!PERIOD_KEYS.includes(k)) q.set(k, v);
      if (kind.value === "month" && byId("period-month").value) q.set("month", byId("period-month").value);
      if (kind.value === "week" && byId("period-week").value) q.set("week", byId("period-week").value);
      if (kind.value === "custom") { q.set("from", byId("period-from").value); q.set("to", byId("period-to").value); }
      if (threshold && threshold.value && Number(threshold.value) !== 95) q.set("threshold", threshold.value);
      location.search = q.toString();
    });
  }

  /* ---- formats ---- */
  const nf0 = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
  const nf1 = new Intl.NumberFormat(locale, { minimumFractionDigits: 1, maximumFractionDigits: 1 });
  const pct = (v) => (v === null || v === undefined ? "–" : nf1.format(v) + " %");
  const num = (v) => (v === null || v === undefined ? "–" : nf0.format(v));
  const sek = (v) => (v === null || v === undefined ? "–" : nf0.format(v) + " kr");
  const dayFmt = new Intl.DateTimeFormat(locale, { day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
  const shortDay = new Intl.DateTimeFormat(locale, { day: "numeric", month: "short", timeZone: "UTC" });
  const date = (iso, short) => (short ? shortDay : dayFmt).format(new Date(iso + "T00:00:00Z"));
  function duration(s) {
    if (s === null || s === undefined) return "–";
    if (s < 60) return t("rep_seconds", { n: Math.round(s) });
    const min = Math.round(s / 60);
    return min < 60 ? t("rep_minutes", { n: min }) : t("rep_hours_minutes", { h: Math.floor(min / 60), m: min % 60 });
  }
  const periodText = (p) => t("rep_period_text", { from: date(p.from), to: date(p.to), days: p.days });

  /* ---- page frame ---- */
  function crumbs(items) {
    const nav = document.getElementById("crumbs");
    const parts = [];
    items.forEach(([label, href], i) => {
      if (i) parts.push(el("span", { class: "sep", "aria-hidden": "true" }, "›"));
      parts.push(href ? el("a", { href }, label) : el("span", { "aria-current": "page" }, label));
    });
    nav.replaceChildren(...parts);
  }
  function heading(title, sub) {
    document.getElementById("report-title").textContent = title;
    document.getElementById("report-sub").textContent = sub || "";
    document.title = `${title} · dosewatch`;
  }
  function downloads(items) {
    document.getElementById("downloads").replaceChildren(...items.map(([kind, label, href]) =>
      el("a", { href, download: "" }, el("span", { class: "kind" }, kind), label)));
  }
  function fail(e) {
    const msg = e.status === 404 ? t("rep_not_found") : e.status === 403 ? t("rep_forbidden") : e.message;
    document.getElementById("report-body").replaceChildren(el("div", { class: "report-error", role: "alert" }, el("strong", {}, msg)));
  }

  /* ---- building blocks ---- */
  function kpi(label, value, hint, tone) {
    return el("div", { class: "kpi " + (tone || "") }, el("div", { class: "label" }, label), el("div", { class: "value" }, value), hint ? el("div", { class: "hint" }, hint) : null);
  }
  const tone = (v, threshold) => (v === null || v === undefined ? "neutral" : v >= threshold ? "ok" : v >= threshold - 5 ? "warn" : "bad");
  function figureKpis(f, threshold, onePatient) {
    const notTaken = f.missed + f.unknown;
    return el("div", { class: "kpis" },
      kpi(t("rep_taking"), pct(f.taking_adherence_pct), t("rep_taking_hint", { n: num(f.taken + f.taken_late), of: num(f.expected) }), tone(f.taking_adherence_pct, threshold)),
      kpi(t("rep_timing"), pct(f.timing_adherence_pct), t("rep_timing_hint", { n: num(f.taken) }), tone(f.timing_adherence_pct, threshold)),
      kpi(t("rep_cdd"), pct(f.correct_dosing_days_pct), t("rep_cdd_hint", { n: num(f.correct_dosing_days), of: num(f.monitored_days) }), tone(f.correct_dosing_days_pct, threshold)),
      kpi(t("rep_not_taken"), num(notTaken), t("rep_not_taken_hint", { missed: num(f.missed), unknown: num(f.unknown), late: num(f.taken_late) }), notTaken ? "bad" : "ok"),
      kpi(t("rep_unknown"), num(f.unknown), t("rep_unknown_hint"), f.unknown ? "device" : "neutral"),
      kpi(t("rep_expected"), num(f.expected), onePatient ? t("rep_expected_hint_one", { suspended: num(f.suspended) }) : t("rep_expected_hint", { patients: num(f.patients), suspended: num(f.suspended) }), "neutral"));
  }
  function pctCell(v, threshold) {
    const under = v !== null && v !== undefined && v < threshold;
    return el("td", { class: "n" }, el("span", { class: under ? "under-mark" : "" }, pct(v)),
      el("span", { class: "pct-bar" + (under ? " under" : ""), "aria-hidden": "true" }, el("span", { style: `width:${Math.max(0, Math.min(100, v || 0))}%` })));
  }
  const FIG_HEAD = ["rep_col_expected", "rep_col_taking", "rep_col_timing", "rep_col_cdd", "rep_col_late", "rep_col_missed", "rep_col_unknown", "rep_col_suspended"];
  function figureCells(f, threshold) {
    const n = (v, extra) => el("td", { class: "n " + (v ? extra || "" : "zero") }, num(v));
    return [n(f.expected), pctCell(f.taking_adherence_pct, threshold), el("td", { class: "n" }, pct(f.timing_adherence_pct)),
      el("td", { class: "n" }, pct(f.correct_dosing_days_pct)), n(f.taken_late), n(f.missed), n(f.unknown, "device-note"), n(f.suspended)];
  }
  /* rows: [{cells: [td...], figures}], head: leading column labels */
  function figuresTable(head, rows, threshold, total) {
    return el("div", { class: "table-wrap" }, el("table", { class: "figures" },
      el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)), FIG_HEAD.map((k) => el("th", { class: "n" }, t(k))))),
      el("tbody", {}, rows.map((r) => el("tr", {}, r.cells, figureCells(r.figures, threshold))),
        total ? el("tr", { class: "total" }, total.cells, figureCells(total.figures, threshold)) : null)));
  }
  /* Patients under the threshold, compact: who, where, taking adherence and what was not taken. */
  function underTable(rows, threshold, href, extra, extraHead) {
    return el("div", { class: "table-wrap" }, el("table", { class: "figures" },
      el("thead", {}, el("tr", {}, el("th", {}, t("rep_patient")), extraHead.map((h) => el("th", {}, h)),
        ["rep_col_taking", "rep_col_missed", "rep_col_unknown", "rep_col_late"].map((k) => el("th", { class: "n" }, t(k))))),
      el("tbody", {}, rows.map((p) => el("tr", {},
        el("td", { class: "name" }, el("a", { href: href(p.patient_id) }, p.name)), extra(p).map((v) => el("td", {}, v)),
        pctCell(p.figures.taking_adherence_pct, threshold),
        el("td", { class: "n" }, num(p.figures.missed)), el("td", { class: "n " + (p.figures.unknown ? "device-note" : "zero") }, num(p.figures.unknown)),
        el("td", { class: "n" }, num(p.figures.taken_late)))))));
  }
  function panel(title, explain, ...body) {
    return el("section", { class: "panel" }, el("h2", {}, title), explain ? el("p", { class: "explain" }, explain) : null, ...body);
  }
  const empty = (key) => el("p", { class: "empty" }, t(key || "rep_none"));
  function legend(keys) {
    return el("div", { class: "legend" }, keys.map((k) => el("span", { style: `--c: ${colour(STATE_COLOUR[k])}` }, t("rep_state_" + k))));
  }

  /* ---- charts ---- */
  Chart.defaults.font.family = css.fontFamily;
  Chart.defaults.font.size = 12;
  Chart.defaults.color = colour("muted");
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  function chartBox(summary, cls) {
    const canvas = el("canvas", { role: "img", "aria-label": summary });
    return { box: el("div", { class: "chart-box " + (cls || "") }, canvas), canvas };
  }
  const pctAxis = (min) => ({ min, max: 100, ticks: { stepSize: 100 - min > 40 ? 10 : 100 - min > 8 ? 5 : 2, callback: (v) => v + " %" }, grid: { color: "#e6ebf2" } });
  const pctTip = { callbacks: { label: (c) => `${c.dataset.label}: ${pct(c.parsed.y ?? c.parsed.x)}` } };

  /* Weekly trend of taking and timing adherence with the threshold as a dashed line. */
  function trendChart(weekly, threshold, summary) {
    const { box, canvas } = chartBox(summary);
    const values = weekly.flatMap((w) => [w.figures.taking_adherence_pct, w.figures.timing_adherence_pct]).filter((v) => v !== null);
    const low = Math.max(0, Math.floor((Math.min(threshold, ...values) - 5) / 5) * 5);
    requestAnimationFrame(() => new Chart(canvas, {
      type: "line",
      data: {
        labels: weekly.map((w) => `${t("rep_week_short")} ${w.week.slice(-2)}`),
        datasets: [
          { label: t("rep_taking"), data: weekly.map((w) => w.figures.taking_adherence_pct), borderColor: colour("accent"), backgroundColor: colour("accent"), borderWidth: 3, tension: 0, spanGaps: true },
          { label: t("rep_timing"), data: weekly.map((w) => w.figures.timing_adherence_pct), borderColor: colour("late"), backgroundColor: colour("late"), borderWidth: 2, tension: 0, spanGaps: true },
          { label: t("rep_threshold_line", { n: nf1.format(threshold) }), data: weekly.map(() => threshold), borderColor: colour("missed"), borderDash: [6, 4], borderWidth: 1.5, pointRadius: 0 },
        ],
      },
      options: { scales: { y: pctAxis(low), x: { grid: { display: false } } }, plugins: { tooltip: pctTip, legend: { position: "bottom", labels: { boxWidth: 14 } } } },
    }));
    return box;
  }

  /* One horizontal bar per row (team, district, patient), coloured by the threshold. */
  function barChart(rows, threshold, summary, onClick) {
    const { box, canvas } = chartBox(summary, rows.length > 8 ? "tall" : "short");
    const values = rows.map((r) => r.value);
    const low = Math.max(0, Math.floor((Math.min(threshold, ...values.filter((v) => v !== null)) - 5) / 5) * 5);
    requestAnimationFrame(() => new Chart(canvas, {
      type: "bar",
      data: { labels: rows.map((r) => r.label), datasets: [{ label: t("rep_taking"), data: values, backgroundColor: values.map((v) => colour(v !== null && v < threshold ? "missed" : "taken")), borderRadius: 4, maxBarThickness: 26 }] },
      options: {
        indexAxis: "y", scales: { x: pctAxis(low), y: { grid: { display: false } } },
        plugins: { legend: { display: false }, tooltip: pctTip },
        onClick: onClick ? (_e, items) => { if (items.length) onClick(rows[items[0].index]); } : undefined,
        onHover: onClick ? (e, items) => { e.native.target.style.cursor = items.length ? "pointer" : "default"; } : undefined,
      },
    }));
    return box;
  }

  /* Doses by state per day (or per week): stacked bars, so a device problem (unknown) and an
     absence (suspended) are seen apart from a missed dose. */
  function stateChart(labels, counts, summary) {
    const { box, canvas } = chartBox(summary, "tall");
    requestAnimationFrame(() => new Chart(canvas, {
      type: "bar",
      data: { labels, datasets: STATES.map((s) => ({ label: t("rep_state_" + s), data: counts.map((c) => c[s]), backgroundColor: colour(STATE_COLOUR[s]), stack: "doses" })) },
      options: { scales: { x: { stacked: true, grid: { display: false } }, y: { stacked: true, ticks: { precision: 0 }, grid: { color: "#e6ebf2" } } }, plugins: { legend: { position: "bottom", labels: { boxWidth: 14 } } } },
    }));
    return box;
  }

  /* Counts per category (alarms by shift, by kind): vertical bars. */
  function countChart(labels, values, label, summary) {
    const { box, canvas } = chartBox(summary, "short");
    requestAnimationFrame(() => new Chart(canvas, {
      type: "bar",
      data: { labels, datasets: [{ label, data: values, backgroundColor: colour("accent"), borderRadius: 4, maxBarThickness: 48 }] },
      options: { scales: { y: { ticks: { precision: 0 }, grid: { color: "#e6ebf2" } }, x: { grid: { display: false } } }, plugins: { legend: { display: false } } },
    }));
    return box;
  }

  document.addEventListener("DOMContentLoaded", setUpPicker);

  return {
    link, periodParams, pct, num, sek, date, duration, periodText, crumbs, heading, downloads, fail,
    kpi, tone, figureKpis, figuresTable, underTable, panel, empty, legend, trendChart, barChart, stateChart, countChart,
    STATES, here,
  };
})();
