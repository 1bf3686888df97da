/* Admin: patients, dispensers, schedules (7-day preview, DST days marked), absences, teams and
   nurses, rosters, escalation policies, all through /api/v1. Notification privacy (teams page)
   and the integrations page (webhooks, SCAIP) are in admin_integrations.js, training mode in
   admin_training.js. */
"use strict";
(() => {
  const { t, api, el, when } = DW;
  const root = document.getElementById("admin");
  const field = (name, label, attrs = {}) => el("label", {}, label, el("input", { name, ...attrs }));
  const table = (heads, rows) => el("table", { class: "grid" }, el("thead", {}, el("tr", {}, heads.map((h) => el("th", {}, h)))), el("tbody", {}, rows));
  const formData = (form) => Object.fromEntries(new FormData(form).entries());
  const iso = (local) => (local ? new Date(local).toISOString() : null);
  function onSubmit(form, handler) {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try { await handler(formData(form)); DW.flash(t("saved"), "ok"); render(); } catch (e) { DW.flash(e.message, "error"); }
    });
    return form;
  }
  // Broker credentials: generated on the server, shown here exactly once.
  function credentialsButton(dispenserId) {
    const out = el("output", { class: "secret" });
    const path = `/api/v1/dispensers/${encodeURIComponent(dispenserId)}/broker-credentials`;
    const show = (c) => { out.textContent = `${c.username} / ${c.password}  (${t("password_once")})`; };
    const button = el("button", { type: "button", onclick: async () => {
      try { show(await api("POST", path, { replace: false })); } catch (e) {
        if (e.status === 409 && window.confirm(t("replace_password_q"))) {
          try { show(await api("POST", path, { replace: true })); } catch (e2) { DW.flash(e2.message, "error"); }
        } else if (e.status !== 409) { DW.flash(e.message, "error"); }
      }
    } }, t("create_password"));
    return el("span", {}, button, " ", out);
  }

  async function picker(kind, id) {
    const rows = kind === "team" ? await api("GET", "/api/v1/teams") : await api("GET", "/api/v1/console/dispensers");
    const sel = el("select", { id }, rows.map((r) => el("option", { value: r.id }, kind === "team" ? r.name : `${r.id} – ${r.patient_name}`)));
    const wanted = new URLSearchParams(location.search).get(kind);
    if (wanted) sel.value = wanted;
    sel.addEventListener("change", () => { const q = new URLSearchParams(location.search); q.set(kind, sel.value); history.replaceState(null, "", "?" + q); render(); });
    return sel;
  }

  const sections = {
    async patients() {
      const rows = await api("GET", "/api/v1/console/patients");
      const teams = await api("GET", "/api/v1/teams");
      const teamSelect = (p) => {
        const s = el("select", { "aria-label": t("team") }, el("option", { value: "" }, "–"), teams.map((tm) => el("option", { value: tm.id, selected: tm.id === p.team_id }, tm.name)));
        s.addEventListener("change", () => api("PUT", `/api/v1/patients/${p.id}/team`, { team_id: s.value ? Number(s.value) : null }).then(() => DW.flash(t("saved"), "ok"), (e) => DW.flash(e.message, "error")));
        return s;
      };
      const district = (p) => {
        const i = el("input", { value: p.district || "", size: 10, "aria-label": t("district") });
        i.addEventListener("change", () => api("PUT", `/api/v1/console/patients/${p.id}/district`, { district: i.value }).then(() => DW.flash(t("saved"), "ok"), (e) => DW.flash(e.message, "error")));
        return i;
      };
      return [
        onSubmit(el("form", { class: "inline" }, field("name", t("name"), { required: true }), field("phone", t("phone"), { required: true }),
          field("address", t("address")), field("note", t("notes")), el("button", { class: "primary" }, t("create_patient"))),
        (d) => api("POST", "/api/v1/patients", { name: d.name, phone: d.phone, address: d.address || null, note: d.note || null })),
        table([t("name"), t("phone"), t("address"), t("team"), t("district"), t("dispenser")], rows.map((p) => el("tr", {},
          el("td", {}, el("a", { href: `/patients/${p.id}` }, p.name)), el("td", {}, p.phone), el("td", {}, p.address || "–"),
          el("td", {}, teamSelect(p)), el("td", {}, district(p)), el("td", {}, p.dispensers.join(", ") || "–")))),
      ];
    },
    async dispensers() {
      const rows = await api("GET", "/api/v1/console/dispensers");
      const patients = await api("GET", "/api/v1/console/patients");
      return [
        onSubmit(el("form", { class: "inline" }, field("id", t("dispenser_id"), { required: true, pattern: "[A-Za-z0-9_-]{3,64}" }),
          el("label", {}, t("patient_id"), el("select", { name: "patient_id" }, patients.map((p) => el("option", { value: p.id }, p.name)))),
          el("button", { class: "primary" }, t("create_dispenser"))),
        (d) => api("POST", "/api/v1/dispensers", { id: d.id, patient_id: Number(d.patient_id) })),
        el("p", { class: "calm" }, t("provision_hint")),
        table([t("dispenser"), t("patient"), t("connection"), t("last_seen"), t("doses_left"), t("schedule_version"), t("broker_password")], rows.map((d) => el("tr", {},
          el("td", {}, el("a", { href: `/admin/schedules?dispenser=${encodeURIComponent(d.id)}` }, d.id)), el("td", {}, d.patient_name),
          el("td", {}, d.online === false ? "✗ " + t("offline") : d.online ? "✓ " + t("online") : t("unknown")),
          el("td", {}, when(d.last_seen_at)), el("td", { class: "num" }, d.doses_left ?? "–"), el("td", {}, d.schedule_version ?? "–"),
          el("td", {}, credentialsButton(d.id))))),
      ];
    },
    async schedules() {
      const sel = await picker("dispenser", "dispenser");
      if (!sel.value) return [sel];
      const id = encodeURIComponent(sel.value);
      let current = null;
      try { current = await api("GET", `/api/v1/dispensers/${id}/schedule`); } catch (e) { if (e.status !== 404) throw e; }
      const doses = el("tbody", {});
      const addDose = (d = { time: "08:00", window_min: 45 }) => doses.append(el("tr", {},
        el("td", {}, el("input", { type: "time", value: d.time, class: "d-time", required: true, "aria-label": t("dose_time") })),
        el("td", {}, el("input", { type: "number", min: 1, max: 240, value: d.window_min, class: "d-window", "aria-label": t("window_min") })),
        el("td", {}, el("input", { value: d.label || "", class: "d-label", "aria-label": t("label") })),
        el("td", {}, el("input", { type: "checkbox", class: "d-critical", checked: !!d.time_critical, "aria-label": t("time_critical") })),
        el("td", {}, el("button", { type: "button", onclick: (ev) => ev.target.closest("tr").remove() }, t("remove")))));
      (current ? current.doses : [{ time: "08:00", window_min: 45 }, { time: "20:00", window_min: 45 }]).forEach(addDose);
      const previewBox = el("div", { id: "preview" });
      const form = el("form", { id: "schedule-form" },
        el("div", { class: "inline" }, field("timezone", t("timezone"), { value: current ? current.timezone : DW.page.timezone }),
          field("valid_from", t("valid_from"), { type: "date", value: current ? current.valid_from : new Date().toISOString().slice(0, 10) })),
        table([t("dose_time"), t("window_min"), t("label"), t("time_critical"), ""], []).appendChild(doses).parentNode,
        el("div", { class: "actions" }, el("button", { type: "button", onclick: () => addDose() }, t("add_dose")), el("button", { class: "primary" }, t("save"))));
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        const d = formData(form);
        const body = { timezone: d.timezone, valid_from: d.valid_from, doses: [...doses.children].map((tr) => {
          const dose = { time: tr.querySelector(".d-time").value, window_min: Number(tr.querySelector(".d-window").value) };
          const label = tr.querySelector(".d-label").value.trim();
          if (label) dose.label = label;
          if (tr.querySelector(".d-critical").checked) dose.time_critical = true;
          return dose;
        }) };
        try { const saved = await api("PUT", `/api/v1/dispensers/${id}/schedule`, body); DW.flash(t("saved"), "ok"); showPreview(saved.preview); } catch (e) { DW.flash(e.message, "error"); }
      });
      function showPreview(slots) {
        const byDay = new Map();
        for (const s of slots) { if (!byDay.has(s.local_date)) byDay.set(s.local_date, []); byDay.get(s.local_date).push(s); }
        previewBox.replaceChildren(el("h2", {}, t("preview_7_days")), table([t("day"), t("dose_time")], [...byDay].map(([day, ss]) => {
          const dst = ss.some((s) => s.dst_change_day);
          return el("tr", { class: dst ? "dst-day" : null, dataset: { day, dst: String(dst) } },
            el("td", {}, when(ss[0].due_at, "day"), dst ? el("div", { class: "dst" }, "⚠ ", t("dst_day")) : null),
            el("td", {}, ss.map((s) => el("span", { class: "slot slot-" + s.state }, s.local_time.slice(0, 5), s.label ? ` ${s.label}` : "", s.time_critical ? " ‼" : "", s.state === "suspended" ? ` (${t("suspended_absence")})` : ""))));
        })));
      }
      const start = new URLSearchParams(location.search).get("from"); // e.g. 2027-03-25: a DST week
      const now = start ? new Date(start + "T00:00:00Z") : new Date();
      const to = new Date(now.getTime() + 7 * 86400000);
      const preview = await api("GET", `/api/v1/dispensers/${id}/schedule/preview?from=${encodeURIComponent(now.toISOString())}&to=${encodeURIComponent(to.toISOString())}`);
      showPreview(preview);
      return [el("label", {}, t("choose_dispenser"), " ", sel), current ? null : el("p", { class: "calm" }, t("no_schedule")), form, previewBox];
    },
    async absences() {
      const sel = await picker("dispenser", "dispenser");
      if (!sel.value) return [sel];
      const id = encodeURIComponent(sel.value);
      const rows = await api("GET", `/api/v1/dispensers/${id}/absences`);
      return [el("label", {}, t("choose_dispenser"), " ", sel),
        onSubmit(el("form", { class: "inline" }, field("starts_at", t("starts_at"), { type: "datetime-local", required: true }), field("ends_at", t("ends_at"), { type: "datetime-local", required: true }),
          field("reason", t("reason"), { required: true }), el("button", { class: "primary" }, t("add"))),
        (d) => api("POST", `/api/v1/dispensers/${id}/absences`, { starts_at: iso(d.starts_at), ends_at: iso(d.ends_at), reason: d.reason })),
        table([t("starts_at"), t("ends_at"), t("reason"), ""], rows.map((a) => el("tr", {}, el("td", {}, when(a.starts_at)), el("td", {}, when(a.effective_end)), el("td", {}, a.reason),
          el("td", {}, a.ended_at ? t("ended") : el("button", { type: "button", onclick: () => api("POST", `/api/v1/absences/${a.id}/end`, {}).then(render, (e) => DW.flash(e.message, "error")) }, t("end_now"))))))];
    },
    async teams() {
      const teams = await api("GET", "/api/v1/teams");
      const nurses = await api("GET", "/api/v1/nurses");
      const name = Object.fromEntries(teams.map((tm) => [tm.id, tm.name]));
      return [
        onSubmit(el("form", { class: "inline" }, field("name", t("name"), { required: true }), el("button", { class: "primary" }, t("add"))), (d) => api("POST", "/api/v1/teams", { name: d.name })),
        table([t("team"), t("admin_policies")], teams.map((tm) => el("tr", {}, el("td", {}, tm.name, tm.training ? [" ", el("a", { class: "training-badge", href: "/admin/training" }, t("training_badge"))] : null), el("td", {}, tm.policy_version ?? "–")))),
        await DWIntegrations.privacy(teams),
        el("h2", {}, t("nurses")),
        onSubmit(el("form", { class: "inline" }, el("label", {}, t("team"), el("select", { name: "team_id" }, teams.map((tm) => el("option", { value: tm.id }, tm.name)))),
          field("name", t("name"), { required: true }), field("phone", t("phone"), { required: true, placeholder: "+46…" }),
          el("label", {}, t("language"), el("select", { name: "language" }, el("option", { value: "sv" }, "svenska"), el("option", { value: "en" }, "English"))), el("button", { class: "primary" }, t("add"))),
        (d) => api("POST", "/api/v1/nurses", { team_id: Number(d.team_id), name: d.name, phone: d.phone, language: d.language })),
        table([t("name"), t("team"), t("phone"), t("language"), t("active")], nurses.map((n) => el("tr", {}, el("td", {}, n.name), el("td", {}, name[n.team_id] || n.team_id), el("td", {}, n.phone), el("td", {}, n.language), el("td", {}, n.active ? "✓" : "✗")))),
      ];
    },
    async rosters() {
      const sel = await picker("team", "team");
      if (!sel.value) return [sel];
      const team = sel.value;
      const from = new Date(), to = new Date(from.getTime() + 7 * 86400000);
      const q = `from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
      const [shifts, gaps, nurses] = await Promise.all([api("GET", `/api/v1/teams/${team}/shifts?${q}`), api("GET", `/api/v1/teams/${team}/roster-gaps?${q}`), api("GET", `/api/v1/nurses?team_id=${team}`)]);
      return [el("label", {}, t("choose_team"), " ", sel),
        onSubmit(el("form", { class: "inline" }, el("label", {}, t("nurse"), el("select", { name: "nurse_id" }, nurses.map((n) => el("option", { value: n.id }, n.name)))),
          field("starts_at", t("starts_at"), { type: "datetime-local", required: true }), field("ends_at", t("ends_at"), { type: "datetime-local", required: true }),
          el("label", {}, t("role"), el("select", { name: "role" }, ["primary", "backup", "lead"].map((r) => el("option", { value: r }, t("shift_" + r))))), el("button", { class: "primary" }, t("add"))),
        (d) => api("POST", `/api/v1/teams/${team}/shifts`, { nurse_id: Number(d.nurse_id), starts_at: iso(d.starts_at), ends_at: iso(d.ends_at), role: d.role })),
        el("h2", {}, t("roster_gaps")), gaps.covered ? el("p", { class: "good" }, "✓ ", t("covered")) : el("ul", {}, gaps.gaps.map((g) => el("li", { class: "bad" }, "⚠ ", when(g.starts_at), " – ", when(g.ends_at)))),
        el("h2", {}, t("shifts")), table([t("nurse"), t("role"), t("starts_at"), t("ends_at")], shifts.map((s) => el("tr", {}, el("td", {}, s.nurse_name), el("td", {}, t("shift_" + s.role)), el("td", {}, when(s.starts_at)), el("td", {}, when(s.ends_at)))))];
    },
    async policies() {
      const sel = await picker("team", "team");
      if (!sel.value) return [sel];
      const team = sel.value;
      const cur = await api("GET", `/api/v1/teams/${team}/escalation-policy`);
      const steps = el("tbody", {});
      const targets = ["on_duty", "backup", "lead", "team", "patient_contact"];
      const addStep = (s = { target: "on_duty", channels: ["sms"], wait_min: 10 }) => steps.append(el("tr", {},
        el("td", {}, el("select", { class: "s-target" }, targets.map((x) => el("option", { value: x, selected: x === s.target }, t("target_" + x))))),
        el("td", {}, ["console", "sms", "voice"].map((c) => el("label", {}, el("input", { type: "checkbox", class: "s-ch", value: c, checked: s.channels.includes(c) }), " ", t("channel_" + c), " "))),
        el("td", {}, el("input", { type: "number", class: "s-wait", min: 1, value: s.wait_min })),
        el("td", {}, el("button", { type: "button", onclick: (ev) => ev.target.closest("tr").remove() }, t("remove")))));
      cur.policy.steps.forEach(addStep);
      const p = cur.policy;
      const form = el("form", {},
        cur.is_default ? el("p", { class: "calm" }, t("policy_default")) : null,
        table([t("target"), t("channels"), t("wait_min"), ""], []).appendChild(steps).parentNode,
        el("div", { class: "inline" }, field("repeats", t("repeats"), { type: "number", min: 0, value: p.repeats }),
          field("remind_after_ack_min", t("remind_after_ack_min"), { type: "number", min: 1, value: p.remind_after_ack_min ?? "" }),
          el("label", {}, el("input", { type: "checkbox", name: "reopen", checked: p.reopen_after_reminder }), t("reopen_after_reminder"))),
        el("div", { class: "actions" }, el("button", { type: "button", onclick: () => addStep() }, t("add_step")), el("button", { class: "primary" }, t("save"))));
      onSubmit(form, (d) => api("PUT", `/api/v1/teams/${team}/escalation-policy`, {
        steps: [...steps.children].map((tr) => ({ target: tr.querySelector(".s-target").value, channels: [...tr.querySelectorAll(".s-ch:checked")].map((c) => c.value), wait_min: Number(tr.querySelector(".s-wait").value) })),
        repeats: Number(d.repeats || 0), remind_after_ack_min: d.remind_after_ack_min ? Number(d.remind_after_ack_min) : null, reopen_after_reminder: d.reopen === "on",
      }));
      return [el("label", {}, t("choose_team"), " ", sel), form];
    },
    integrations: () => DWIntegrations.section(),
    training: async () => [await DWTraining.section()],
  };

  async function render() {
    try { root.replaceChildren(...(await sections[root.dataset.section]()).filter(Boolean)); } catch (e) { root.replaceChildren(el("p", { class: "error" }, e.message)); }
  }
  document.addEventListener("DOMContentLoaded", render);
})();
