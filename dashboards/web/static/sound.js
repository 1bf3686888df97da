/* The alarm sound: a soft two-tone beep from Web Audio (no file to load), repeated every few
   seconds while any alarm is unacknowledged. Browsers may block sound until the user interacts
   with the page: then a prominent banner says so, and the first click or key enables it. */
"use strict";
const AlarmSound = (() => {
  const REPEAT_MS = 4000;
  let ctx = null;
  let timer = null;
  let wanted = false;
  let beeps = 0;
  const banner = () => document.getElementById("sound-banner");

  function context() {
    if (!ctx) {
      const AC = window.AudioContext || window.webkitAudioContext;
      if (!AC) return null;
      ctx = new AC();
      ctx.onstatechange = showState;
    }
    return ctx;
  }

  function showState() {
    const b = banner();
    if (b) b.hidden = !(ctx && ctx.state !== "running");
  }

  function tone(freq, start, length) {
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.type = "sine";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, start);
    gain.gain.exponentialRampToValueAtTime(0.4, start + 0.03);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + length);
    osc.connect(gain).connect(ctx.destination);
    osc.start(start);
    osc.stop(start + length + 0.05);
  }

  function beep() {
    const c = context();
    showState();
    if (!c || c.state !== "running") return;
    const now = c.currentTime;
    tone(880, now, 0.25);
    tone(660, now + 0.32, 0.35);
    beeps += 1;
  }

  function set(on) {
    wanted = on;
    if (on && !timer) { beep(); timer = setInterval(beep, REPEAT_MS); }
    if (!on && timer) { clearInterval(timer); timer = null; }
  }

  async function unlock() {
    const c = context();
    if (c && c.state !== "running") {
      try { await c.resume(); } catch (_) { /* still blocked */ }
    }
    showState();
    if (wanted && c && c.state === "running") beep();
  }

  document.addEventListener("DOMContentLoaded", () => {
    context();
    showState();
    const b = banner();
    if (b) b.addEventListener("click", unlock);
    document.addEventListener("pointerdown", unlock, { capture: true });
    document.addEventListener("keydown", unlock, { capture: true });
  });

  return { set, unlock, state: () => (ctx ? ctx.state : "unavailable"), beeps: () => beeps, playing: () => wanted };
})();
