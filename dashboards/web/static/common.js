/* dosewatch: what every page shares: texts, the API (cookies + CSRF header), time formatting,
   a tiny DOM helper and the header (navigation, sign-out). No framework, no CDN. */
"use strict";
const DW = (() => {
  const page = JSON.parse(document.getElementById("dw-page").textContent);
  const texts = JSON.parse(document.getElementById("dw-i18n").textContent);
  const locale = page.lang === "sv" ? "sv-SE" : "en-GB";

  function t(key, vars) {
    let s = texts[key] ?? key;
    if (vars) for (const [k, v] of Object.entries(vars)) s = s.split("{" + k + "}").join(String(v));
    return s;
  }

  function cookie(name) {
    for (const part of document.cookie.split(";")) {
      const [k, ...v] = part.trim().split("=");
      if (k === name) return decodeURIComponent(v.join("="));
    }
    return "";
  }

  class ApiError extends Error {
    constructor(status, detail) { super(detail || String(status)); this.status = status; }
  }

  async function api(method, path, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET") headers["X-CSRF-Token"] = cookie("dw_csrf");
    const res = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 401 && !path.startsWith("/auth/")) {
      location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
      throw new ApiError(401, t("signed_out"));
    }
    if (!res.ok) {
      let detail = res.statusText;
      // 422: FastAPI's list of {loc, msg}; every other error: one sentence.
      const line = (e) => `${(e.loc || []).filter((p) => p !== "body").join(".")}: ${e.msg}`;
      try { const j = await res.json(); detail = typeof j.detail === "string" ? j.detail : Array.isArray(j.detail) ? j.detail.map(line).join("; ") : JSON.stringify(j.detail); } catch (_) { /* not JSON */ }
      throw new ApiError(res.status, detail);
    }
    return res.status === 204 ? null : res.json();
  }

  const fmt = {
    time: new Intl.DateTimeFormat(locale, { timeZone: page.timezone, hour: "2-digit", minute: "2-digit" }),
    dayTime: new Intl.DateTimeFormat(locale, { timeZone: page.timezone, weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }),
    day: new Intl.DateTimeFormat(locale, { timeZone: page.timezone, weekday: "short", day: "numeric", month: "short" }),
  };
  const when = (iso, how = "dayTime") => (iso ? fmt[how].format(new Date(iso)) : "–");

  function ago(iso) {
    if (!iso) return "–";
    const min = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 60000));
    if (min < 1) return t("just_now");
    if (min < 60) return t("minutes_ago", { n: min });
    const h = Math.floor(min / 60);
    return h < 48 ? t("hours_ago", { n: h, m: min % 60 }) : t("days_ago", { n: Math.floor(h / 24) });
  }

  /* el("div", {class: "x", onclick: f}, "text", child, ...) */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  /* replaceChildren skipping what el() skips: a plain replaceChildren turns a null from a
     `cond ? node : null` into the text "null". */
  function fill(node, ...children) {
    node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
    return node;
  }

  const PRIORITY_ICON = { high: "‼", medium: "!", low: "·" };
  function priorityBadge(p) {
    return el("span", { class: `prio prio-${p}`, title: t("priority") },
      el("span", { class: "prio-icon", "aria-hidden": "true" }, PRIORITY_ICON[p] || "?"), " ", t("prio_" + p));
  }
  const STATE_ICON = { open: "●", acknowledged: "◐", cleared: "○", resolved: "✓" };
  function stateBadge(s) {
    return el("span", { class: `state state-${s}` }, el("span", { "aria-hidden": "true" }, STATE_ICON[s] || ""), " ", t("state_" + s));
  }

  function flash(message, kind = "info") {
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = message;
    box.className = "flash flash-" + kind;
    box.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 8000 : 4000);
  }

  async function signOut() {
    try { await api("POST", "/auth/logout"); } catch (_) { /* signed out anyway */ }
    location.assign("/login");
  }

  document.addEventListener("DOMContentLoaded", () => {
    const out = document.getElementById("sign-out");
    if (out) out.addEventListener("click", signOut);
  });

  return { page, t, api, ApiError, cookie, when, ago, el, fill, priorityBadge, stateBadge, flash };
})();
