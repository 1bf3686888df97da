/* Admin: training mode. Which teams are training teams (switched here, with a reason, audited;
   only an empty team can switch), and the trigger: a practice alarm of a chosen kind on a
   training team's dispenser, opened exactly as the real cause would open it.
   admin.js calls DWTraining.section(). Texts: i18n/{lang}.training.json. */
"use strict";
const DWTraining = (() => {
  const { t, api, el } = DW;
  // dosewatch/domain/training_trigger.py TriggerKind; tests/browser/test_training.py holds them.
  const KINDS = ["missed_dose", "status_unknown", "help_button", "jam", "offline"];
  const table = (heads, rows) => el("table", { class: "grid" }, el("thead", {}, el("tr", {}, heads.map((h) => el("th", {}, h)))), el("tbody", {}, rows));

  function flagButton(team, rerender) {
    const wanted = !team.training;
    return el("button", { type: "button", dataset: { team: team.id }, onclick: async () => {
      const reason = window.prompt(t(wanted ? "training_make_q" : "training_unmake_q", { team: team.name }));
      if (reason === null) return;
      try {
        await api("PUT", `/api/v1/teams/${team.id}/training`, { training: wanted, reason: reason.trim() || null });
        DW.flash(t("saved"), "ok");
        rerender();
      } catch (e) { DW.flash(e.message, "error"); }
    } }, t(wanted ? "training_make" : "training_unmake"));
  }

  async function section() {
    const box = el("div", { id: "training" });
    async function render() {
      const [teams, dispensers] = await Promise.all([api("GET", "/api/v1/teams"), api("GET", "/api/v1/console/dispensers")]);
      const practice = new Set(teams.filter((tm) => tm.training).map((tm) => tm.id));
      const names = Object.fromEntries(teams.map((tm) => [tm.id, tm.name]));
      const usable = dispensers.filter((d) => practice.has(d.team_id));
      const out = el("output", { id: "training-result", class: "calm" });
      const form = el("form", { id: "training-trigger", class: "inline" },
        el("label", {}, t("dispenser"), el("select", { name: "dispenser_id", required: true },
          usable.map((d) => el("option", { value: d.id }, `${d.id} – ${d.patient_name} (${names[d.team_id]})`)))),
        el("label", {}, t("training_kind"), el("select", { name: "kind" }, KINDS.map((k) => el("option", { value: k }, t("training_kind_" + k))))),
        el("button", { class: "primary", disabled: !usable.length }, t("training_trigger")));
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const d = Object.fromEntries(new FormData(form).entries());
        try {
          const a = await api("POST", "/api/v1/training/alarms", { dispenser_id: d.dispenser_id, kind: d.kind });
          out.replaceChildren(el("span", { class: "training-badge" }, t("training_badge")), " ",
            t("training_opened", { id: a.id }), " ", el("a", { href: `/console?alarm=${a.id}` }, t("training_open_console")));
          DW.flash(t("training_opened", { id: a.id }), "ok");
        } catch (e) {
          out.replaceChildren(el("span", { class: "error", role: "alert" }, "⚠ ", e.message));
          DW.flash(e.message, "error");
        }
      });
      box.replaceChildren(
        el("div", { class: "training-explain" }, el("p", {}, el("span", { class: "training-badge" }, t("training_badge")), " ", t("training_explain")),
          el("ul", {}, ["training_rule_marked", "training_rule_numbers", "training_rule_reports", "training_rule_scaip", "training_rule_empty"].map((k) => el("li", {}, t(k))))),
        table([t("team"), t("training_column"), ""], teams.map((tm) => el("tr", { dataset: { team: tm.id } }, el("td", {}, tm.name),
          el("td", {}, tm.training ? el("span", { class: "training-badge" }, t("training_badge")) : "–"), el("td", {}, flagButton(tm, render))))),
        el("h2", {}, t("training_trigger_title")),
        el("p", { class: "calm" }, usable.length ? t("training_trigger_hint") : t("training_no_dispensers")),
        form, out);
    }
    await render();
    return box;
  }
  return { section, KINDS };
})();
