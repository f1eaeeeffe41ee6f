// The card panel of the checkout page: the acquirer's Payment Element mounted in the page
// (Stripe.js, or the sandbox's stand-in of the same API), confirmed with
// stripe.confirmPayment({elements, confirmParams: {return_url}, redirect: "if_required"}).
// 3-D Secure runs in the acquirer's own modal. The page never leaves: after the answer it asks
// the server to check the payment now (the acquirer's webhook stays the source of truth and
// the status poll brings the codes). A decline or a failed 3-D Secure is shown at once in the
// buyer's language from the order page's own table of card codes. Without JavaScript the panel
// keeps the link to the acquirer's hosted card page.
(() => {
  "use strict";

  const loading = new Map();

  function load(src) {
    if (window.Stripe) return Promise.resolve();
    if (!loading.has(src)) {
      loading.set(src, new Promise((resolve, reject) => {
        const tag = document.createElement("script");
        tag.src = src;
        tag.onload = resolve;
        tag.onerror = () => {
          loading.delete(src);
          reject(new Error("the card script did not load"));
        };
        document.head.append(tag);
      }));
    }
    return loading.get(src);
  }

  function messages(box) {
    const holder = document.getElementById(box.dataset.messages);
    try {
      return holder ? JSON.parse(holder.textContent) : {};
    } catch (_error) {
      return {};
    }
  }

  // Our words for the acquirer's code (decline code first, as the order page reads it), else
  // the acquirer's own message (Stripe.js localises it with the element's locale).
  function reasonFor(box, error) {
    const table = messages(box);
    const entry = table[error.decline_code] || table[error.code];
    if (!entry) return { reason: error.message || "", guidance: "" };
    return entry;
  }

  // A line of text, or {reason, guidance} shown as the order page shows a decline.
  function show(box, text, isError) {
    const result = box.querySelector("[data-testid='card-element-result']");
    if (!result) return;
    const words = typeof text === "string" ? { reason: text, guidance: "" } : text;
    result.replaceChildren();
    if (isError) {
      const reason = document.createElement("strong");
      reason.className = "reason";
      reason.textContent = words.reason;
      result.append(reason);
    } else {
      result.append(words.reason);
    }
    if (words.guidance) {
      const guidance = document.createElement("span");
      guidance.className = "guidance";
      guidance.textContent = ` ${words.guidance}`;
      result.append(guidance);
    }
    result.hidden = !words.reason;
    result.classList.toggle("error", Boolean(isError));
  }

  // "Paid already? Check now": the server asks the acquirer and re-renders the checkout body.
  function checkNow(box) {
    const panel = box.closest("[data-testid='payment-panel']") || document;
    const form = panel.querySelector("form.check-again");
    if (form) form.requestSubmit();
  }

  function confirmParams(box) {
    const params = { return_url: box.dataset.returnUrl || window.location.href };
    const count = Number(box.dataset.instalments || 0);
    if (count) {
      params.payment_method_options = {
        card: { installments: { plan: { count, interval: "month", type: "fixed_count" } } },
      };
    }
    return params;
  }

  async function pay(box, stripe, elements, button) {
    button.disabled = true;
    show(box, box.dataset.working, false);
    let result;
    try {
      result = await stripe.confirmPayment({
        elements, confirmParams: confirmParams(box), redirect: "if_required",
      });
    } catch (_error) {
      button.disabled = false;
      show(box, box.dataset.unavailable, true);
      return;
    }
    const error = result && result.error;
    if (!error) {
      show(box, box.dataset.sent, false);
      checkNow(box);
      return;
    }
    show(box, reasonFor(box, error), true);
    if (error.type === "validation_error" || error.type === "api_connection_error" || !error.payment_intent) {
      button.disabled = false;  // nothing reached the issuer: fix the card and pay again
      return;
    }
    checkNow(box);  // the attempt failed at the acquirer: the page shows the other ways to pay
  }

  function mount(box) {
    box.dataset.mounted = "1";
    const button = box.querySelector("[data-card-pay]");
    const target = box.querySelector("[data-card-element-mount]");
    load(box.dataset.js)
      .then(() => {
        const locale = box.dataset.locale || "auto";
        const stripe = window.Stripe(box.dataset.publishableKey, { locale });
        const elements = stripe.elements({ clientSecret: box.dataset.clientSecret, locale });
        const element = elements.create("payment", { layout: "tabs" });
        element.on("ready", () => {
          button.hidden = false;
        });
        element.mount(target);
        button.addEventListener("click", () => {
          if (!button.disabled) pay(box, stripe, elements, button);
        });
      })
      .catch(() => show(box, box.dataset.unavailable, true));
  }

  function enhance(root) {
    root.querySelectorAll("[data-card-element]:not([data-mounted])").forEach(mount);
  }

  document.addEventListener("DOMContentLoaded", () => enhance(document));
  document.addEventListener("htmx:afterSettle", () => enhance(document));
})();
