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
      const next = form.dataset.next || "/";
      location.assign(next.startsWith("/") && !next.startsWith("//") ? next : "/");
    } catch (e) {
      error.textContent = e.status === 429 ? DW.t("login_throttled") : DW.t("login_failed");
      error.hidden = false;
      form.password.select();
    }
  });
});
