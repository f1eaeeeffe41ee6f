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

  // Inside WeChat: the silent OAuth that tells WeChat Pay who pays, followed at once on a
  // page load (after a failure in this session the link waits for the buyer instead).
  function followWechatOAuth() {
    const link = document.querySelector("a[data-wechat-oauth='auto']");
    if (link) window.location.replace(link.href);
  }

  // WeChat Pay JSAPI: WeChat's own bridge opens its payment sheet over this page. Whatever the
  // answer, the page stays: on ok the status poll brings the codes; cancel and fail say so and
  // leave the order payable.
  const BRIDGE_WAIT_MS = 5000;

  function withBridge(callback, onMissing) {
    if (window.WeixinJSBridge) return callback(window.WeixinJSBridge);
    const timer = setTimeout(onMissing, BRIDGE_WAIT_MS);
    document.addEventListener("WeixinJSBridgeReady", () => {
      clearTimeout(timer);
      callback(window.WeixinJSBridge);
    }, { once: true });
  }

  function invokeWechatPay(button) {
    const holder = document.getElementById(button.dataset.wechatJsapi);
    const panel = button.closest("[data-testid='payment-panel']") || document;
    const result = panel.querySelector("[data-testid='bridge-result']");
    const show = (text, isError) => {
      if (!result) return;
      result.textContent = text;
      result.hidden = false;
      result.classList.toggle("error", Boolean(isError));
    };
    if (!holder) return;
    const request = JSON.parse(holder.textContent);
    button.disabled = true;
    withBridge((bridge) => {
      bridge.invoke("getBrandWCPayRequest", request, (answer) => {
        const message = (answer && answer.err_msg) || "";
        if (message === "get_brand_wcpay_request:ok") {
          show(button.dataset.sent, false);  // the status poll brings the codes
          return;
        }
        button.disabled = false;
        show(message === "get_brand_wcpay_request:cancel" ? button.dataset.cancelled
          : button.dataset.failed, true);
      });
    }, () => {
      button.disabled = false;
      show(button.dataset.unavailable, true);
    });
  }

  function autoInvoke(root) {
    root.querySelectorAll("button[data-wechat-jsapi][data-auto-invoke]:not([data-invoked])")
      .forEach((button) => {
        button.dataset.invoked = "1";
        invokeWechatPay(button);
      });
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("button[data-wechat-jsapi]");
    if (button && !button.disabled) invokeWechatPay(button);
  });

  function enhance(root) {
    root.querySelectorAll("time[data-countdown]").forEach(startCountdown);
  }

  document.addEventListener("DOMContentLoaded", () => {
    enhance(document);
    followWechatOAuth();
  });
  document.addEventListener("htmx:afterSettle", (event) => {
    enhance(document);
    autoSubmit(event.detail.elt || document);
    autoInvoke(event.detail.elt || document);
  });
})();
