/* The shift handover: what happened, what is still open, what the next shift must follow up. */
"use strict";
(() => {
  const { t, api, el, when } = DW;
  const box = document.getElementById("handover");
  // A practice alarm (training mode) says so first, as in the console.
  const alarmLine = (a) => el("li", {}, a.training ? [el("span", { class: "training-badge" }, t("training_badge")), " "] : null, DW.priorityBadge(a.priority), " ", el("strong", {}, a.patient_name), " – ",
    t("kind_" + a.kind), " – ", when(a.opened_at), a.outcome ? [" → ", t("outcome_" + a.outcome)] : null,
    a.note ? el("div", { class: "note" }, "“", a.note, "”") : null);
  const listOf = (rows) => (rows.length ? el("ul", { class: "plain lines" }, rows.map(alarmLine)) : el("p", { class: "calm" }, t("none")));

  async function load() {
    const hours = document.getElementById("hours").value;
    const h = await api("GET", `/api/v1/console/handover?hours=${hours}`);
    box.replaceChildren(
      el("p", { class: "period" }, t("handover_period", { from: when(h.since), to: when(h.until) })),
      el("section", { class: "block" }, el("h2", {}, t("handover_happened", { n: h.opened_total })),
        h.opened.length ? el("ul", { class: "plain" }, h.opened.map((o) => el("li", {}, DW.priorityBadge(o.priority), " ", t("kind_" + o.kind), ": ", el("strong", {}, o.n)))) : el("p", { class: "calm" }, t("none"))),
      el("section", { class: "block attention" }, el("h2", {}, "⚠ ", t("handover_follow_up"), ` (${h.follow_up.length})`), listOf(h.follow_up)),
      el("section", { class: "block" }, el("h2", {}, t("handover_still_open"), ` (${h.still_active.length})`), listOf(h.still_active)),
      el("section", { class: "block" }, el("h2", {}, t("handover_resolved"), ` (${h.resolved.length})`), listOf(h.resolved)));
  }
  document.addEventListener("DOMContentLoaded", () => {
    document.getElementById("hours").addEventListener("change", load);
    load().catch((e) => box.replaceChildren(el("p", { class: "error" }, e.message)));
  });
})();
