/* Admin: what notifications say about a patient (per team, on the teams page), and the
   integrations page: signed webhooks and SCAIP forwarding to the alarm receiving centre.
   admin.js calls DWIntegrations.privacy(teams) and DWIntegrations.section(). Each part
   re-renders only itself after a change, so a webhook secret shown once is never wiped by a
   reload of the whole page. Texts: i18n/{lang}.admin-integrations.json. */
"use strict";
const DWIntegrations = (() => {
  const { t, el, when } = DW;
  // The API's enums (dosewatch/domain/webhooks.py ALL_EVENTS, domain/scaip.py
  // FORWARDABLE_KINDS); tests/browser/test_admin_integrations.py holds these lists to them.
  const EVENTS = ["alarm.opened", "alarm.escalated", "alarm.acknowledged", "alarm.cleared", "alarm.resolved", "alarm.reopened"];
  const SCAIP_KINDS = ["missed_dose"];
  const STATE_ICON = { sent: "✓", received: "✓", pending: "◷", sending: "↻", failed: "✗" };
  const has = (key) => t(key) !== key;
  const isAdmin = () => (DW.page.user || {}).role === "admin";
  const table = (cls, heads, rows) => el("table", { class: "grid " + cls }, el("thead", {}, el("tr", {}, heads.map((h) => el("th", {}, h)))), el("tbody", {}, rows));

  /* DW.api, keeping the error body: this app answers a 422 with {"detail": "a; b", "errors":
     [{loc, msg, type}]} (dashboards/app.py), plain FastAPI with {"detail": [{loc, msg, type}]},
     any other 4xx with {"detail": "sentence"}. The list lets each field be named in the
     user's language; DW.api keeps only the sentence. */
  class Problem extends DW.ApiError {
    constructor(status, detail, errors) { super(status, detail); this.errors = errors; }
  }
  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRF-Token"] = DW.cookie("dw_csrf");
    let res;
    try { res = await fetch(path, { method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body) }); } catch (_) { throw new Problem(0, t("err_network"), null); }
    if (res.status === 401) return DW.api(method, path, body); // common.js sends the user to sign-in
    if (res.ok) return res.status === 204 ? null : res.json();
    let j = null;
    try { j = await res.json(); } catch (_) { /* not JSON: a proxy's page */ }
    const detail = j && j.detail, list = j && (Array.isArray(j.errors) ? j.errors : Array.isArray(detail) ? detail : null);
    throw new Problem(res.status, typeof detail === "string" ? detail : res.statusText || String(res.status), list);
  }
  /* An API error as sentences: "Field: what is wrong" per validation entry, else the sentence. */
  function readable(e) {
    if (!(e instanceof DW.ApiError)) return [t("err_network")];
    if (!e.errors || !e.errors.length) return [e.status === 403 ? t("err_forbidden") + " " + e.message : e.message];
    return e.errors.map((item) => {
      const field = (item.loc || []).filter((x) => typeof x === "string" && x !== "body").pop();
      const label = field && has("f_" + field) ? t("f_" + field) : field;
      const specific = `err_${field}_${item.type}`, generic = `err_${item.type}`;
      const what = has(specific) ? t(specific) : has(generic) ? t(generic) : item.msg;
      return label ? `${label}: ${what}` : what;
    });
  }
  function showError(out, e) {
    const lines = readable(e);
    out.replaceChildren(el("div", { class: "form-error", role: "alert" }, el("strong", {}, "⚠ ", t("err_not_saved")), el("ul", {}, lines.map((l) => el("li", {}, l)))));
    DW.flash(lines.join(" · "), "error");
  }
  function guarded(out, work) {
    return async (ev) => {
      if (ev) ev.preventDefault();
      out.replaceChildren();
      try { await work(); } catch (e) { showError(out, e); }
    };
  }
  const badge = (state) => el("span", { class: `dstate dstate-${state}` }, el("span", { "aria-hidden": "true" }, STATE_ICON[state] || "?"), " ", t("dstate_" + state));
  const checks = (name, values, chosen, label) => el("fieldset", { class: "checks" }, el("legend", {}, label),
    values.map((v) => el("label", {}, el("input", { type: "checkbox", name, value: v, checked: chosen.includes(v) }), " ", has("ev_" + v) ? t("ev_" + v) : t("kind_" + v), el("code", { class: "small" }, v))));
  const checked = (form, name) => [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((c) => c.value);

  // --- notification privacy (teams page) ---------------------------------------------------
  const SAMPLE = { origin: location.origin };
  function privacyExplained() {
    const level = (lvl) => el("div", { class: `np-level np-level-${lvl}` }, el("h3", {}, t("np_" + lvl), lvl === "minimal" ? ` (${t("np_default")})` : ""),
      el("p", {}, t(`np_${lvl}_says`)), el("p", { class: "calm small" }, t("np_example")), el("code", { class: "sms", dataset: { level: lvl } }, t(`np_${lvl}_example`, SAMPLE)));
    return [el("p", { class: "calm" }, t("np_why")), el("div", { class: "np-levels" }, level("minimal"), level("full")),
      el("p", { class: "note" }, t("np_never"), " ", el("strong", {}, t("np_audited")))];
  }
  function privacyRow(team, cur) {
    const out = el("div", {});
    const tr = el("tr", { class: cur && cur.detail === "full" ? "np-row-full" : null, dataset: { team: team.id } });
    const levelCell = cur ? el("span", { class: `np-badge np-${cur.detail}` }, cur.detail === "full" ? "⚠ " : "✓ ", t("np_" + cur.detail)) : "–";
    const changed = !cur ? "–" : cur.changed_at ? el("span", {}, when(cur.changed_at), el("br", {}), el("span", { class: "calm small" }, cur.changed_by || "")) : el("span", { class: "calm" }, t("np_never_changed"));
    const select = el("select", { name: "detail", "aria-label": t("np_level") }, ["minimal", "full"].map((lvl) => el("option", { value: lvl, selected: cur && cur.detail !== lvl }, t("np_" + lvl))));
    const reason = el("input", { name: "reason", required: true, maxlength: 500, size: 24, placeholder: t("np_reason_ph"), "aria-label": t("reason") });
    const form = el("form", { class: "inline np-form" }, select, reason, el("button", { class: "primary" }, t("np_change")));
    form.addEventListener("submit", guarded(out, async () => {
      const saved = await api("PUT", `/api/v1/teams/${team.id}/notification-privacy`, { detail: select.value, reason: reason.value.trim() || null });
      DW.flash(t("np_saved", { team: team.name, level: t("np_" + saved.detail) }), "ok");
      tr.replaceWith(privacyRow(team, saved));
    }));
    tr.append(el("td", {}, team.name), el("td", {}, levelCell), el("td", {}, changed), el("td", {}, form, out));
    return tr;
  }
  async function privacy(teams) {
    const rows = await Promise.all(teams.map(async (tm) => {
      try { return privacyRow(tm, await api("GET", `/api/v1/teams/${tm.id}/notification-privacy`)); } catch (e) {
        return el("tr", {}, el("td", {}, tm.name), el("td", { colspan: 3, class: "error" }, readable(e).join(" ")));
      }
    }));
    return el("section", { id: "notification-privacy", class: "panel" }, el("h2", {}, t("np_title")), ...privacyExplained(),
      table("np-table", [t("team"), t("np_level"), t("np_changed"), t("np_change_to")], rows));
  }

  // --- webhooks -----------------------------------------------------------------------------
  function secretOnce(sub) {
    const input = el("input", { id: "webhook-secret", readonly: true, value: sub.secret, size: 52, "aria-label": t("wh_secret") });
    const copy = el("button", { type: "button", class: "primary", id: "copy-secret" }, t("wh_copy"));
    copy.addEventListener("click", async () => {
      input.select();
      try { await navigator.clipboard.writeText(sub.secret); } catch (_) { document.execCommand("copy"); }
      copy.textContent = "✓ " + t("wh_copied");
    });
    const box = el("div", { class: "secret-once", role: "alert" }, el("h3", {}, t("wh_secret_for", { id: sub.id, url: sub.url })),
      el("div", { class: "actions" }, input, copy),
      el("p", {}, el("strong", {}, "⚠ ", t("wh_store_now")), " ", t("wh_store_why")),
      el("button", { type: "button", onclick: () => box.remove() }, t("wh_stored")));
    return box;
  }
  function deliveriesView(sub, rows) {
    const count = (s) => rows.filter((d) => d.state === s).length;
    const answer = (d) => [d.last_status ? `HTTP ${d.last_status}` : null, d.last_error].filter(Boolean).join(" – ") || "–";
    return [el("h3", {}, t("wh_deliveries_of", { id: sub.id }), " ", el("code", {}, sub.url)),
      el("p", { class: "summary-line" }, ["sent", "pending", "sending", "failed"].map((s) => el("span", { class: `dcount dcount-${s}${count(s) && s === "failed" ? " bad" : ""}` }, badge(s), " ", count(s)))),
      rows.length ? table("deliveries", [t("wh_event"), t("dstate"), t("wh_attempts"), t("wh_created"), t("wh_done_or_next"), t("wh_last_answer")], rows.map((d) => el("tr", { class: "drow drow-" + d.state },
        el("td", {}, el("code", {}, d.event_type), el("div", { class: "calm small" }, d.event_id)), el("td", {}, badge(d.state)), el("td", { class: "num" }, d.attempts),
        el("td", {}, when(d.created_at)), el("td", {}, d.delivered_at ? when(d.delivered_at) : d.state === "failed" ? t("wh_given_up") : `${t("wh_next")} ${when(d.next_attempt_at)}`),
        el("td", { class: "answer" }, answer(d))))) : el("p", { class: "calm" }, t("wh_no_deliveries"))];
  }
  async function webhooks(teams) {
    const teamName = Object.fromEntries(teams.map((tm) => [tm.id, tm.name]));
    const out = el("div", {}), secretBox = el("div", { id: "secret-box" }), listBox = el("div", {}), deliveriesBox = el("div", { id: "deliveries", class: "subpanel" });
    const form = el("form", { class: "inline wh-form", id: "webhook-form" },
      el("label", { class: "grow" }, t("f_url"), el("input", { name: "url", type: "url", required: true, size: 40, placeholder: "https://integration.example.se/dosewatch" })),
      el("label", {}, t("team"), el("select", { name: "team_id" }, el("option", { value: "" }, t("wh_all_teams")), teams.map((tm) => el("option", { value: tm.id }, tm.name)))),
      checks("events", EVENTS, EVENTS, t("f_events")), el("button", { class: "primary" }, t("wh_create")));
    async function list() {
      const subs = await api("GET", "/api/v1/webhooks");
      const stop = (s) => guarded(out, async () => {
        if (!window.confirm(t("wh_stop_q", { url: s.url }))) return;
        await api("DELETE", `/api/v1/webhooks/${s.id}`);
        DW.flash(t("wh_stopped_ok"), "ok"); await list();
      });
      const show = (s) => guarded(out, async () => { deliveriesBox.replaceChildren(...deliveriesView(s, await api("GET", `/api/v1/webhooks/${s.id}/deliveries`))); });
      listBox.replaceChildren(subs.length ? table("webhooks", [t("f_url"), t("team"), t("f_events"), t("wh_created"), t("active"), ""], subs.map((s) => el("tr", { class: s.active ? null : "inactive", dataset: { webhook: s.id } },
        el("td", { class: "url" }, el("code", {}, s.url)), el("td", {}, s.team_id === null ? t("wh_all_teams") : teamName[s.team_id] || s.team_id),
        el("td", {}, s.events.length === EVENTS.length ? t("wh_all_events") : s.events.map((e) => el("code", { class: "tag" }, e))),
        el("td", {}, when(s.created_at), el("div", { class: "calm small" }, s.created_by)),
        el("td", {}, s.active ? el("span", { class: "good" }, "● ", t("wh_active")) : el("span", { class: "calm" }, "○ ", t("wh_stopped"))),
        el("td", { class: "row-actions" }, el("button", { type: "button", onclick: show(s) }, t("wh_show_deliveries")), s.active ? el("button", { type: "button", onclick: stop(s) }, t("wh_deactivate")) : null)))) : el("p", { class: "calm" }, t("wh_none")));
    }
    form.addEventListener("submit", guarded(out, async () => {
      const events = checked(form, "events");
      const body = { url: form.url.value.trim(), team_id: form.team_id.value ? Number(form.team_id.value) : null, events };
      const created = await api("POST", "/api/v1/webhooks", body);
      secretBox.replaceChildren(secretOnce(created));
      form.reset(); DW.flash(t("wh_created_ok"), "ok"); await list();
    }));
    await list();
    return el("section", { id: "webhooks", class: "panel" }, el("h2", {}, t("wh_title")), el("p", { class: "calm" }, t("wh_intro")), form, out, secretBox, listBox, deliveriesBox);
  }

  // --- SCAIP --------------------------------------------------------------------------------
  async function scaipSettings(teams) {
    const out = el("div", {}), overview = el("div", {}), formBox = el("div", {});
    const settingsOf = async (id) => { try { return await api("GET", `/api/v1/teams/${id}/scaip`); } catch (e) { if (e.status === 404) return null; throw e; } };
    async function showForm(team) {
      const cur = await settingsOf(team.id);
      const form = el("form", { id: "scaip-form", class: "subpanel", dataset: { team: team.id } },
        el("h3", {}, t("sc_settings_for", { team: team.name }), cur ? null : el("span", { class: "calm" }, " – ", t("sc_not_set"))),
        el("div", { class: "fields" },
          el("label", { class: "grow" }, t("f_centre_uri"), el("input", { name: "centre_uri", required: true, size: 36, value: cur ? cur.centre_uri : "", placeholder: "sip:larm@larmcentral.example.se", pattern: "sips?:\\S+", title: t("err_centre_uri_string_pattern_mismatch") })),
          el("label", {}, t("f_controller_id"), el("input", { name: "controller_id", required: true, maxlength: 64, value: cur ? cur.controller_id : "", placeholder: "UMEA-HHC-1", pattern: "[A-Za-z0-9._\\-]+", title: t("err_controller_id_string_pattern_mismatch") })),
          checks("kinds", SCAIP_KINDS, cur ? cur.kinds : SCAIP_KINDS, t("f_kinds")),
          el("label", { class: "check" }, el("input", { type: "checkbox", name: "active", checked: cur ? cur.active : true }), " ", t("sc_active"))),
        cur ? el("p", { class: "calm small" }, t("sc_updated", { at: when(cur.updated_at), by: cur.updated_by })) : null,
        el("div", { class: "actions" }, el("button", { class: "primary" }, t("save"))));
      form.addEventListener("submit", guarded(out, async () => {
        await api("PUT", `/api/v1/teams/${team.id}/scaip`, { centre_uri: form.centre_uri.value.trim(), controller_id: form.controller_id.value.trim(), kinds: checked(form, "kinds"), active: form.active.checked });
        DW.flash(t("saved"), "ok"); await refresh(team);
      }));
      formBox.replaceChildren(form);
    }
    async function refresh(selected) {
      const all = await Promise.all(teams.map(async (tm) => [tm, await settingsOf(tm.id)]));
      overview.replaceChildren(table("scaip-teams", [t("team"), t("f_centre_uri"), t("f_controller_id"), t("f_kinds"), t("sc_forwarding"), ""], all.map(([tm, s]) => el("tr", { dataset: { team: tm.id } },
        el("td", {}, tm.name), el("td", {}, s ? el("code", {}, s.centre_uri) : el("span", { class: "calm" }, t("sc_not_set"))), el("td", {}, s ? s.controller_id : "–"),
        el("td", {}, s ? s.kinds.map((k) => t("kind_" + k)).join(", ") : "–"), el("td", {}, !s ? "–" : s.active ? el("span", { class: "good" }, "● ", t("sc_on")) : el("span", { class: "calm" }, "○ ", t("sc_off"))),
        el("td", {}, el("button", { type: "button", onclick: guarded(out, () => showForm(tm)) }, t("sc_edit")))))));
      if (selected) await showForm(selected);
    }
    await refresh(teams[0] || null);
    return [overview, out, formBox];
  }
  async function forwards(teams) {
    const teamName = Object.fromEntries(teams.map((tm) => [tm.id, tm.name]));
    const box = el("div", {}), out = el("div", {});
    const filter = el("select", { id: "forward-team", "aria-label": t("team") }, el("option", { value: "" }, t("wh_all_teams")), teams.map((tm) => el("option", { value: tm.id }, tm.name)));
    const load = guarded(out, async () => {
      const rows = await api("GET", "/api/v1/scaip/forwards" + (filter.value ? `?team_id=${filter.value}` : ""));
      box.replaceChildren(rows.length ? table("forwards", [t("sc_alarm"), t("team"), "ref", t("dstate"), t("wh_attempts"), t("wh_created"), t("sc_received_or_next"), t("wh_last_answer")], rows.map((f) => el("tr", { class: "drow drow-" + f.state },
        el("td", {}, el("a", { href: `/console?alarm=${f.alarm_id}` }, `#${f.alarm_id}`)), el("td", {}, teamName[f.team_id] || f.team_id), el("td", {}, el("code", {}, f.ref)),
        el("td", {}, badge(f.state)), el("td", { class: "num" }, f.attempts), el("td", {}, when(f.created_at)),
        el("td", {}, f.received_at ? when(f.received_at) : f.state === "failed" ? t("wh_given_up") : `${t("wh_next")} ${when(f.next_attempt_at)}`),
        el("td", { class: "answer" }, f.last_code ? `SIP ${f.last_code} ${f.last_reason || ""}` : f.last_reason || "–")))) : el("p", { class: "calm" }, t("sc_no_forwards")));
    });
    filter.addEventListener("change", load);
    await load();
    return [el("h3", {}, t("sc_forwards")), el("p", { class: "calm small" }, t("sc_receipt")), el("label", {}, t("team"), " ", filter, " ", el("button", { type: "button", onclick: load }, t("sc_reload"))), out, box];
  }
  async function section() {
    const teams = await api("GET", "/api/v1/teams");
    const adminOnly = (what) => el("p", { class: "calm" }, t("only_admins", { what }));
    const scaip = el("section", { id: "scaip", class: "panel" }, el("h2", {}, t("sc_title")), el("p", { class: "calm" }, t("sc_intro")),
      ...(isAdmin() ? await scaipSettings(teams) : [adminOnly(t("sc_settings"))]), ...(await forwards(teams)));
    return [isAdmin() ? await webhooks(teams) : el("section", { class: "panel" }, el("h2", {}, t("wh_title")), adminOnly(t("wh_title"))), scaip];
  }
  return { privacy, section, readable };
})();
