// PayPal's JS SDK buttons on the order page. The panel names the SDK script (PayPal's own,
// or the sandbox's stand-in with the same client API) and our API calls: createOrder hands
// the SDK the PayPal order opened for this payment, onApprove asks us to capture it and then
// reloads the checkout body in place (the codes appear without leaving the page), onCancel
// and onError say why nothing was charged. Without JavaScript the panel's link goes to
// PayPal's own page instead.
(() => {
  "use strict";
  const self = document.currentScript;
  const nonce = self ? self.nonce || self.dataset.cspNonce || "" : "";
  const sdkLoads = new Map();

  function loadSdk(url) {
    if (!sdkLoads.has(url)) {
      sdkLoads.set(url, new Promise((resolve, reject) => {
        const script = document.createElement("script");
        script.src = url;
        script.async = true;
        if (nonce) {
          script.nonce = nonce;
          script.setAttribute("data-csp-nonce", nonce);  // PayPal puts it on what it writes
        }
        script.onload = () => (window.paypal && window.paypal.Buttons
          ? resolve(window.paypal) : reject(new Error("paypal.Buttons is missing")));
        script.onerror = () => {
          sdkLoads.delete(url);
          reject(new Error("the PayPal SDK did not load"));
        };
        document.head.append(script);
      }));
    }
    return sdkLoads.get(url);
  }

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (_error) {
      return "";
    }
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRFToken": csrfToken(),
      },
      body: JSON.stringify(body || {}),
    }).then((response) => response.json().catch(() => ({})).then((answer) => {
      if (!response.ok) {
        const error = new Error(answer.detail || `HTTP ${response.status}`);
        error.answer = answer;
        throw error;
      }
      return answer;
    }));
  }

  // The status fragment with an empty "seen" key answers the whole checkout body out of
  // band, as the poll does when something changed.
  function refresh(box) {
    if (window.htmx) {
      window.htmx.ajax("GET", `${box.dataset.statusUrl}?seen=`,
        { target: "#order-status", swap: "outerHTML" });
    } else {
      window.location.reload();
    }
  }

  // The reason, then what to do (the error tables write reasons without a full stop).
  function words(answer, fallback) {
    if (!answer || !answer.detail) return fallback;
    if (!answer.guidance) return answer.detail;
    const chinese = (document.documentElement.lang || "").startsWith("zh");
    const stop = /[.。!！?？]$/.test(answer.detail) ? "" : chinese ? "。" : ".";
    return `${answer.detail}${stop}${chinese ? "" : " "}${answer.guidance}`;
  }

  function render(box) {
    box.dataset.rendered = "1";
    const slot = box.querySelector("[data-testid='paypal-buttons']");
    const result = box.querySelector("[data-testid='paypal-result']");
    const show = (text, isError) => {
      result.textContent = text;
      result.hidden = false;
      result.classList.toggle("error", Boolean(isError));
    };
    const { cancelUrl } = box.dataset;
    loadSdk(box.dataset.sdkUrl).then((paypal) => paypal.Buttons({
      style: { layout: "vertical", label: "paypal", shape: "rect" },
      createOrder: () => post(box.dataset.createUrl).then((answer) => answer.id),
      onApprove: (data) => {
        show(box.dataset.capturing, false);
        return post(box.dataset.captureUrl, { order_id: data.orderID })
          .then(() => refresh(box))
          .catch((error) => show(words(error.answer, box.dataset.failed), true));
      },
      onCancel: (data) => post(cancelUrl, {
        order_id: (data && data.orderID) || box.dataset.orderId, reason: "cancel",
      })
        .then((answer) => show(words(answer, box.dataset.cancelled), true))
        .catch(() => show(box.dataset.cancelled, true)),
      onError: (error) => {
        show(box.dataset.failed, true);
        const detail = String((error && error.message) || error || "").slice(0, 255);
        post(cancelUrl, { order_id: box.dataset.orderId, reason: "error", detail })
          .then((answer) => show(words(answer, box.dataset.failed), true))
          .catch(() => {});
      },
    }).render(`#${slot.id}`)).catch(() => show(box.dataset.unavailable, true));
  }

  function renderAll() {
    document.querySelectorAll("[data-paypal-buttons]:not([data-rendered])").forEach(render);
  }

  document.addEventListener("DOMContentLoaded", renderAll);
  document.addEventListener("htmx:afterSettle", renderAll);
})();
