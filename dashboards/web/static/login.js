"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("login");
  const error = document.getElementById("login-error");
  const lang = document.getElementById("lang");
  lang.addEventListener("change", () => {
    document.cookie = `dw_lang=${lang.value}; path=/; max-age=31536000; samesite=lax`;
    location.reload();
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    const body = { username: form.username.value.trim(), password: form.password.value };
    try {
      const me = await DW.api("POST", "/auth/login", body);
      if (me && me.language) document.cookie = `dw_lang=${me.language}; path=/; max-age=31536000; samesite=lax`;
      // The server already checked next (pages.local_path); checked again so that this page
      // never leaves the site even if it is served some other way.
      const next = form.dataset.next || "/";
      const local = next.startsWith("/") && !next.startsWith("//") && !/[\\\x00-\x1f\x7f]/.test(next);
      location.assign(local ? next : "/");
    } catch (e) {
      error.textContent = e.status === 429 ? DW.t("login_throttled") : DW.t("login_failed");
      error.hidden = false;
      form.password.select();
    }
  });
});
