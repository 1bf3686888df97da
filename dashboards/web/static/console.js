/* The night nurse's alarm console: live list (Server-Sent Events), detail, sound, keys. */
"use strict";
(() => {
  const { t, api, el, when, ago } = DW;
  const OUTCOMES = ["reached_by_phone", "home_visit", "dose_taken_late", "patient_away", "false_alarm", "other"];
  const PRIO = { high: 0, medium: 1, low: 2 };
  const alarms = new Map();       // id -> summary row
  const rows = new Map();         // id -> <li>
  let selected = null;
  let detail = null;              // the selected alarm's full context
  let resolveMode = false;
  const pending = new Map();      // id -> {at, received} waiting to be fetched
  let flushing = false;
  const latency = (window.__dwLatency = []);
  const list = document.getElementById("alarms");
  const pane = document.getElementById("detail");
  // /console?alarm=17: the link in an SMS. It survives the sign-in redirect (login?next=...)
  // and opens that alarm first, whatever its place in the list (or if it is no longer in it).
  const linked = (() => {
    const v = new URLSearchParams(location.search).get("alarm") || "";
    return /^[1-9][0-9]{0,17}$/.test(v) ? Number(v) : null;
  })();
  let linkShown = false;

  const key = (a) => [a.acknowledged_at ? 1 : 0, a.state === "cleared" ? 1 : 0, PRIO[a.priority] ?? 3, a.opened_at, a.id];
  function before(a, b) {
    const ka = key(a), kb = key(b);
    for (let i = 0; i < ka.length; i++) {
      if (ka[i] < kb[i]) return true;
      if (ka[i] > kb[i]) return false;
    }
    return false;
  }

  function rowFor(a) {
    const li = el("li", {
      class: `alarm prio-row-${a.priority} st-${a.state}${a.training ? " training" : ""}${a.id === selected ? " selected" : ""}`,
      dataset: { id: a.id, state: a.state }, onclick: () => select(a.id),
    },
      el("div", { class: "alarm-main" },
        a.training ? trainingBadge() : null,
        DW.priorityBadge(a.priority),
        el("strong", { class: "patient-name" }, a.patient_name),
        el("span", { class: "kind" }, t("kind_" + a.kind))),
      el("div", { class: "alarm-sub" },
        DW.stateBadge(a.state),
        el("span", { class: "age", dataset: { opened: a.opened_at } }, ago(a.opened_at)),
        el("span", { class: "addr" }, a.patient_address || "")));
    return li;
  }

  // Training mode: a practice alarm says so before anything else, so nobody at 03:00 takes one
  // for a real patient (or a real one for practice).
  function trainingBadge() {
    return el("span", { class: "training-badge", title: t("training_banner") }, t("training_badge"));
  }

  function place(a) {
    const old = rows.get(a.id);
    if (old) old.remove();
    if (a.state === "resolved") { rows.delete(a.id); alarms.delete(a.id); return; }
    alarms.set(a.id, a);
    const li = rowFor(a);
    rows.set(a.id, li);
    // Binary search over the rendered order for the insertion point.
    const items = list.children;
    let lo = 0, hi = items.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const other = alarms.get(Number(items[mid].dataset.id));
      if (other && before(other, a)) lo = mid + 1; else hi = mid;
    }
    list.insertBefore(li, items[lo] || null);
  }

  function summarise() {
    let open = 0, ack = 0;
    for (const a of alarms.values()) {
      if (!a.acknowledged_at) open += 1; else ack += 1;
    }
    document.getElementById("count-open").textContent = t("count_unacknowledged", { n: open });
    document.getElementById("count-ack").textContent = t("count_acknowledged", { n: ack });
    document.getElementById("no-alarms").hidden = alarms.size > 0;
    document.title = (open ? `(${open}) ` : "") + t("nav_console") + " · dosewatch";
    AlarmSound.set([...alarms.values()].some((a) => a.state === "open"));
  }

  async function loadAll() {
    const data = await api("GET", "/api/v1/console/alarms");
    alarms.clear(); rows.clear();
    const frag = document.createDocumentFragment();
    for (const a of data) {
      alarms.set(a.id, a);
      const li = rowFor(a);
      rows.set(a.id, li);
      frag.append(li);
    }
    list.replaceChildren(frag);
    summarise();
    if (selected && !alarms.has(selected) && selected !== linked) selected = null;
    if (!selected && linked !== null && !linkShown) select(linked, false);
    else if (!selected && data.length) select(data[0].id, false);
    else if (selected) refreshDetail();
    document.body.dataset.loaded = String(data.length);
  }

  async function flush() {
    if (flushing || pending.size === 0) return;
    flushing = true;
    const batch = new Map(pending);
    pending.clear();
    try {
      if (batch.size > 500) { await loadAll(); return; }
      const found = await api("GET", "/api/v1/console/alarms?ids=" + [...batch.keys()].join(","));
      for (const a of found) {
        const isNew = !alarms.has(a.id) && a.state === "open";
        place(a);
        const info = batch.get(a.id);
        if (info) {
          const shown = performance.timeOrigin + performance.now();
          latency.push({ id: a.id, created_ms: info.at, received_ms: info.received, shown_ms: shown, latency_ms: shown - info.at });
        }
        if (isNew) announce(a);
        if (a.id === selected) refreshDetail();
      }
      summarise();
    } catch (e) {
      DW.flash(e.message, "error");
    } finally {
      flushing = false;
      if (pending.size) flush();
    }
  }

  function announce(a) {
    const box = document.getElementById("new-alarm");
    box.replaceChildren(
      el("span", { class: "bell", "aria-hidden": "true" }, "⚠"), " ",
      t("new_alarm"), ": ", a.training ? [trainingBadge(), " "] : null, DW.priorityBadge(a.priority), " ",
      el("strong", {}, a.patient_name), " – ", t("kind_" + a.kind), " ",
      el("button", { type: "button", class: "primary", onclick: () => { select(a.id); box.hidden = true; } }, t("show")));
    box.dataset.id = a.id;
    box.hidden = false;
  }

  function connect() {
    const live = document.getElementById("live");
    const source = new EventSource("/api/v1/alarms/stream");
    source.addEventListener("hello", () => {
      live.textContent = t("live"); live.className = "live live-on";
      loadAll().catch((e) => DW.flash(e.message, "error"));
    });
    source.addEventListener("reload", () => loadAll().catch(() => {}));
    source.addEventListener("alarm", (ev) => {
      const received = performance.timeOrigin + performance.now();
      const msg = JSON.parse(ev.data);
      if (!pending.has(msg.id)) pending.set(msg.id, { at: msg.at, received });
      flush();
    });
    source.onerror = () => {
      live.textContent = t("reconnecting"); live.className = "live live-off";
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
    };
  }

  // --- detail -----------------------------------------------------------------------------
  async function select(id, focus = true) {
    if (selected !== null && rows.get(selected)) rows.get(selected).classList.remove("selected");
    selected = id;
    resolveMode = false;
    const li = rows.get(id);
    if (li) { li.classList.add("selected"); if (focus) li.scrollIntoView({ block: "nearest" }); }
    await refreshDetail();
  }

  async function refreshDetail() {
    if (selected === null) return;
    const id = selected;
    try {
      const d = await api("GET", `/api/v1/console/alarms/${id}`);
      if (id !== selected) return;
      detail = d;
      renderDetail();
    } catch (e) {
      delete pane.dataset.alarmId;
      const text = e.status === 404 ? t("alarm_not_found", { id }) : e.message;
      pane.replaceChildren(el("p", { class: "error", id: "detail-error" }, text));
    }
  }

  function section(title, ...body) {
    return el("section", { class: "block" }, el("h3", {}, title), ...body);
  }

  function renderDetail() {
    const { alarm: a, patient: p, doses, health, history, notifications } = detail;
    pane.dataset.alarmId = String(a.id);
    const note = el("textarea", { id: "resolve-note", rows: 2, placeholder: t("note_optional"), maxlength: 2000 });
    const actions = el("div", { class: "actions" },
      a.acknowledged_at ? el("span", { class: "done" }, "✓ ", t("acknowledged_by", { who: a.acknowledged_by || "?", when: when(a.acknowledged_at, "time") }))
        : el("button", { type: "button", id: "ack", class: "primary big", onclick: () => acknowledge(a.id) }, t("acknowledge"), " ", el("kbd", {}, "a")));
    const outcomes = el("div", { class: "outcomes" + (resolveMode ? " armed" : ""), id: "outcomes" },
      el("span", { class: "label" }, t("resolve_with"), " ", el("kbd", {}, "r")),
      OUTCOMES.map((o, i) => el("button", { type: "button", class: "outcome", dataset: { outcome: o }, onclick: () => resolve(a.id, o) },
        el("kbd", {}, String(i + 1)), " ", t("outcome_" + o))));
    pane.replaceChildren(
      a.training ? el("div", { class: "training-banner", role: "note", id: "training-banner" }, el("span", {}, t("training_banner"))) : null,
      el("div", { class: "detail-head" },
        DW.priorityBadge(a.priority), DW.stateBadge(a.state),
        el("h2", {}, t("kind_" + a.kind)),
        el("span", { class: "when" }, t("opened_at", { when: when(a.opened_at), ago: ago(a.opened_at) })),
        a.slot_due_at ? el("span", { class: "when" }, t("dose_due", { when: when(a.slot_due_at, "time") })) : null),
      actions, note, outcomes,
      p ? section(t("patient"),
        el("p", { class: "patient-big" }, el("a", { href: `/patients/${p.id}` }, p.name)),
        el("p", {}, el("a", { class: "tel big", href: "tel:" + p.phone.replace(/[^+0-9]/g, "") }, "☎ ", p.phone)),
        p.contact_phone ? el("p", {}, t("relative"), ": ", el("a", { class: "tel", href: "tel:" + p.contact_phone.replace(/[^+0-9]/g, "") }, p.contact_phone)) : null,
        el("p", { class: "address" }, p.address || t("no_address")),
        el("p", { class: "note" }, el("strong", {}, t("notes"), ": "), p.note || "–")) : null,
      section(t("last_7_days"), doseGrid(doses)),
      section(t("dispenser_health"), healthList(health)),
      section(t("timeline"), timeline(history, notifications)));
    if (a.id === linked && !linkShown) {
      // On a phone the detail stacks under the list: bring the linked alarm into view.
      linkShown = true;
      pane.scrollIntoView({ block: "start" });
    }
  }

  const SLOT_ICON = { taken: "✓", taken_late: "◔", missed: "✗", unknown: "?", suspended: "–", pending: "○" };
  function doseGrid(doses) {
    if (!doses.length) return el("p", { class: "calm" }, t("no_doses"));
    const days = new Map();
    for (const s of doses) {
      const day = when(s.due_at, "day");
      if (!days.has(day)) days.set(day, []);
      days.get(day).push(s);
    }
    return el("table", { class: "doses" }, el("tbody", {}, [...days].map(([day, slots]) =>
      el("tr", {}, el("th", {}, day), el("td", {}, slots.map((s) =>
        el("span", { class: `slot slot-${s.state}`, title: t("slot_" + s.state) + (s.label ? " – " + s.label : "") },
          el("span", { "aria-hidden": "true" }, SLOT_ICON[s.state] || ""), " ", when(s.due_at, "time"), " ", t("slot_" + s.state))))))));
  }

  function healthList(h) {
    const online = h.online === false ? el("span", { class: "bad" }, "✗ ", t("offline")) : h.online ? el("span", { class: "good" }, "✓ ", t("online")) : t("unknown");
    const item = (label, value) => [el("dt", {}, label), el("dd", {}, value ?? "–")];
    return el("dl", { class: "health" },
      item(t("dispenser"), h.dispenser_id),
      item(t("connection"), online),
      item(t("last_seen"), h.last_seen_at ? ago(h.last_seen_at) : null),
      item(t("battery"), h.battery_pct != null ? `${h.battery_pct} %` + (h.on_mains === false ? ` – ${t("on_battery")}` : "") : null),
      item(t("temperature"), h.temperature_c != null ? `${h.temperature_c.toFixed(1)} °C` : null),
      item(t("doses_left"), h.doses_left),
      item(t("clock"), h.clock_offset_s != null ? `${Math.round(h.clock_offset_s)} s` + (h.clock_flagged ? " ⚠" : "") : null),
      item(t("device_alarms"), h.device_alarms.length ? h.device_alarms.map((d) => t("kind_" + d.kind)).join(", ") : t("none")));
  }

  function timeline(history, notifications) {
    const items = [
      ...history.map((h) => ({ at: h.at, text: `${t("action_" + h.action)} – ${h.actor} (${t("via_" + h.via)})` })),
      ...notifications.map((n) => ({ at: n.sent_at || n.created_at, text: `${t("channel_" + n.channel)} → ${n.nurse_name || n.to_number || "–"}: ${t("delivery_" + n.status)}` })),
    ].sort((x, y) => (x.at < y.at ? -1 : 1));
    if (!items.length) return el("p", { class: "calm" }, "–");
    return el("ol", { class: "timeline" }, items.map((i) => el("li", {}, el("time", {}, when(i.at, "time")), " ", i.text)));
  }

  // --- actions ----------------------------------------------------------------------------
  const me = () => (DW.page.user && DW.page.user.name) || "console";
  async function post(path, body) {
    try {
      return await api("POST", path, { ...body, by: me() });
    } catch (e) {
      if (e.status === 422) return api("POST", path, body); // the API names the user itself
      throw e;
    }
  }

  async function acknowledge(id) {
    try {
      const a = await post(`/api/v1/alarms/${id}/acknowledge`, {});
      DW.flash(t("acknowledged"), "ok");
      await refreshRow(a.id);
    } catch (e) { DW.flash(e.message, "error"); }
  }

  async function resolve(id, outcome) {
    const noteBox = document.getElementById("resolve-note");
    const note = noteBox && noteBox.value.trim();
    try {
      await post(`/api/v1/alarms/${id}/resolve`, note ? { outcome, note } : { outcome });
      DW.flash(t("resolved_as", { outcome: t("outcome_" + outcome) }), "ok");
      const order = [...list.children].map((li) => Number(li.dataset.id));
      const next = order[order.indexOf(id) + 1] ?? order[order.indexOf(id) - 1] ?? null;
      await refreshRow(id);
      if (next !== null && next !== id) select(next); else { selected = null; pane.replaceChildren(el("p", { class: "calm" }, t("select_alarm"))); }
    } catch (e) { DW.flash(e.message, "error"); }
  }

  async function refreshRow(id) {
    const found = await api("GET", "/api/v1/console/alarms?ids=" + id);
    for (const a of found) place(a);
    summarise();
    if (id === selected) refreshDetail();
  }

  // --- keys -------------------------------------------------------------------------------
  function move(step) {
    const order = [...list.children].map((li) => Number(li.dataset.id));
    if (!order.length) return;
    const i = order.indexOf(selected);
    const next = order[Math.min(order.length - 1, Math.max(0, i < 0 ? 0 : i + step))];
    select(next);
  }

  function armResolve(on) {
    resolveMode = on;
    const box = document.getElementById("outcomes");
    if (box) box.classList.toggle("armed", on);
  }

  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const tag = (ev.target && ev.target.tagName) || "";
    if (["INPUT", "TEXTAREA", "SELECT"].includes(tag)) { if (ev.key === "Escape") ev.target.blur(); return; }
    const help = document.getElementById("help");
    if (ev.key === "?") { help.open ? help.close() : help.showModal(); ev.preventDefault(); return; }
    if (ev.key === "Escape") { armResolve(false); return; }
    if (resolveMode && /^[1-6]$/.test(ev.key) && selected !== null) {
      armResolve(false);
      resolve(selected, OUTCOMES[Number(ev.key) - 1]);
      ev.preventDefault();
      return;
    }
    if (ev.key === "j") move(1);
    else if (ev.key === "k") move(-1);
    else if (ev.key === "a" && selected !== null) acknowledge(selected);
    else if (ev.key === "r" && selected !== null) armResolve(true);
    else return;
    ev.preventDefault();
  });

  document.addEventListener("DOMContentLoaded", () => {
    if (linked !== null) document.querySelector(".console-grid").classList.add("linked");
    document.getElementById("help-button").addEventListener("click", () => document.getElementById("help").showModal());
    connect();
    setInterval(() => {
      for (const span of list.querySelectorAll(".age")) span.textContent = ago(span.dataset.opened);
    }, 30000);
  });
})();
