// Checkout page enhancements. The page works without them: the countdown shows the end time,
// the bank form has a button, and the status line has a refresh link.
(() => {
  "use strict";

  // Reservation countdown, from the seconds the server counted (no clock-skew surprises).
  const timers = new WeakMap();
  const pad = (n) => String(n).padStart(2, "0");

  function startCountdown(el) {
    if (timers.has(el)) return;
    const end = Date.now() + Number(el.dataset.remaining || 0) * 1000;
    const tick = () => {
      const left = Math.max(0, Math.round((end - Date.now()) / 1000));
      if (left === 0) {
        el.textContent = el.dataset.expiredText || "00:00";
        el.classList.add("expired");
        clearInterval(timers.get(el));
        return;
      }
      el.textContent = pad(Math.floor(left / 60)) + ":" + pad(left % 60);
    };
    tick();
    timers.set(el, setInterval(tick, 1000));
  }

  // A channel that wants a form post (UnionPay) gets it right after the buyer pressed pay;
  // the button stays as the way on if the browser blocks it.
  function autoSubmit(root) {
    root.querySelectorAll("form[data-auto-submit]:not([data-submitted])").forEach((form) => {
      form.dataset.submitted = "1";
      form.submit();
    });
  }

  function enhance(root) {
    root.querySelectorAll("time[data-countdown]").forEach(startCountdown);
  }

  document.addEventListener("DOMContentLoaded", () => enhance(document));
  document.addEventListener("htmx:afterSettle", (event) => {
    enhance(document);
    autoSubmit(event.detail.elt || document);
  });
})();
