/* The pharmacist's refill worklist: dispensers by predicted empty time; record a refill. */
"use strict";
(() => {
  const { t, api, el, when, ago } = DW;
  const body = document.querySelector("#worklist tbody");
  const dialog = document.getElementById("refill");
  let current = null;

  function urgency(r) {
    if (r.doses_left == null) return ["unknown", "?", t("supply_unknown")];
    if (!r.empty_at) return ["ok", "✓", t("enough")];
    const hours = (new Date(r.empty_at) - Date.now()) / 3600000;
    if (hours <= 24) return ["high", "‼", t("refill_today")];
    if (hours <= 48) return ["medium", "!", t("refill_soon")];
    return ["ok", "✓", t("enough")];
  }

  async function load() {
    const params = new URLSearchParams();
    const team = document.getElementById("team").value;
    const district = document.getElementById("district").value.trim();
    if (team) params.set("team_id", team);
    if (district) params.set("district", district);
    const rows = await api("GET", "/api/v1/console/worklist?" + params);
    body.replaceChildren(...rows.map((r) => {
      const [cls, icon, label] = urgency(r);
      return el("tr", { class: "urg-" + cls, dataset: { dispenser: r.dispenser_id } },
        el("td", {}, el("span", { class: "urg" }, icon, " ", label), el("br"), r.empty_at ? when(r.empty_at) : "–"),
        el("td", { class: "num" }, r.doses_left ?? "?"),
        el("td", {}, r.patient_name, r.team_name ? el("div", { class: "calm small" }, r.team_name, r.district ? " · " + r.district : "") : null),
        el("td", {}, r.address || "–"),
        el("td", {}, r.dispenser_id),
        el("td", {}, r.last_refill_at ? [ago(r.last_refill_at), el("div", { class: "calm small" }, `+${r.last_refill_doses ?? "?"} · ${r.last_refill_by || "–"}`)] : "–"),
        el("td", {}, el("button", { type: "button", class: "primary", onclick: () => open(r) }, t("record_refill"))));
    }));
    if (!rows.length) body.replaceChildren(el("tr", {}, el("td", { colspan: 7, class: "calm" }, t("none"))));
  }

  async function open(r) {
    current = r;
    document.getElementById("refill-title").textContent = `${t("record_refill")}: ${r.patient_name} (${r.dispenser_id})`;
    document.getElementById("doses-loaded").value = "";
    const hist = document.getElementById("refill-history");
    hist.replaceChildren(el("li", { class: "calm" }, t("loading")));
    dialog.showModal();
    const rows = await api("GET", `/api/v1/dispensers/${encodeURIComponent(r.dispenser_id)}/refills`);
    hist.replaceChildren(...(rows.length ? rows.map((x) => el("li", {}, when(x.at), " – +", x.doses_loaded ?? "?", " ", t("doses"), " – ", x.staff_id || "–")) : [el("li", { class: "calm" }, t("none"))]));
  }

  async function save(ev) {
    ev.preventDefault();
    const n = Number(document.getElementById("doses-loaded").value);
    if (!current || !(n >= 1)) return;
    try {
      await api("POST", `/api/v1/dispensers/${encodeURIComponent(current.dispenser_id)}/refills`, { doses_loaded: n });
      dialog.close();
      DW.flash(t("refill_recorded", { n, dispenser: current.dispenser_id }), "ok");
      await load();
    } catch (e) { DW.flash(e.message, "error"); }
  }

  document.addEventListener("DOMContentLoaded", async () => {
    document.getElementById("refill-form").addEventListener("submit", save);
    document.getElementById("refill-cancel").addEventListener("click", () => dialog.close());
    document.getElementById("team").addEventListener("change", load);
    document.getElementById("district").addEventListener("change", load);
    try {
      const teams = await api("GET", "/api/v1/teams");
      document.getElementById("team").append(...teams.map((tm) => el("option", { value: tm.id }, tm.name)));
    } catch (_) { /* the filter stays "all" */ }
    load().catch((e) => DW.flash(e.message, "error"));
  });
})();
