/* One patient's record (through the team-scoped API: another team's patient is a 404). */
"use strict";
(() => {
  const { t, api, el, when } = DW;
  const box = document.getElementById("patient");
  document.addEventListener("DOMContentLoaded", async () => {
    const id = box.dataset.patientId;
    try {
      const p = await api("GET", `/api/v1/patients/${id}`);
      const extra = await api("GET", `/api/v1/console/patients/${id}`);
      box.replaceChildren(
        el("h1", {}, p.name),
        el("p", {}, el("a", { class: "tel big", href: "tel:" + p.phone.replace(/[^+0-9]/g, "") }, "☎ ", p.phone)),
        el("p", {}, p.address || t("no_address")),
        el("p", { class: "note" }, el("strong", {}, t("notes"), ": "), p.note || "–"),
        el("h2", {}, t("last_7_days")),
        el("ul", { class: "plain" }, extra.doses.map((s) => el("li", {}, when(s.due_at), " – ", t("slot_" + s.state)))));
    } catch (e) {
      box.replaceChildren(el("h1", { id: "not-found" }, e.status === 404 ? t("patient_not_found") : e.message));
    }
  });
})();
