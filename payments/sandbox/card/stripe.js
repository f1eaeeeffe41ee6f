// Sandbox stand-in of Stripe.js v3 (https://js.stripe.com/v3/), served by the card simulator so
// the checkout page runs the same code against it as against Stripe. The surface played:
// Stripe(publishableKey, {locale}), stripe.elements({clientSecret, locale}),
// elements.create("payment") → mount / on("ready"|"change") / unmount / destroy / focus,
// elements.getElement("payment"), stripe.confirmPayment({elements, confirmParams, redirect}),
// stripe.retrievePaymentIntent(clientSecret); errors come back as Stripe's
// {error: {type, code, decline_code, message, payment_intent}}. The card fields post straight to
// the simulator (never to the merchant's server); 3-D Secure runs in a modal over the page whose
// tester can complete, fail or cancel it, as on Stripe's own 3-D Secure test page.
(() => {
  "use strict";
  if (window.Stripe) return;
  const script = document.currentScript;
  const base = new URL("../", script ? script.src : window.location.href).href;
  const ZERO_DECIMAL = ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf",
    "ugx", "vnd", "vuv", "xaf", "xof", "xpf"];

  const TEXTS = {
    en: {
      number: "Card number", expiry: "Expiration date", cvc: "Security code",
      sandbox: "Sandbox card element · test cards: 4242 4242 4242 4242 pays, " +
        "4000 0000 0000 3220 asks for 3-D Secure, 4000 0000 0000 9995 has insufficient funds",
      incomplete_number: "Your card number is incomplete.",
      invalid_number: "Your card number is invalid.",
      incomplete_expiry: "Your card's expiration date is incomplete.",
      invalid_expiry_month: "Your card's expiration date is invalid.",
      invalid_expiry_year_past: "Your card's expiration year is in the past.",
      incomplete_cvc: "Your card's security code is incomplete.",
      network: "We could not reach the card processor. Check your connection and try again.",
      title: "3D Secure 2 test page",
      ask: "Your bank asks you to confirm this payment of",
      complete: "Complete authentication", fail: "Fail authentication", cancel: "Cancel",
    },
    zh: {
      number: "卡号", expiry: "有效期", cvc: "安全码",
      sandbox: "沙箱银行卡组件 · 测试卡：4242 4242 4242 4242 支付成功，" +
        "4000 0000 0000 3220 需要 3-D Secure 验证，4000 0000 0000 9995 余额不足",
      incomplete_number: "您的卡号不完整。",
      invalid_number: "您的卡号无效。",
      incomplete_expiry: "您的银行卡有效期不完整。",
      invalid_expiry_month: "您的银行卡有效期无效。",
      invalid_expiry_year_past: "您的银行卡有效期年份已过。",
      incomplete_cvc: "您的银行卡安全码不完整。",
      network: "无法连接收单方，请检查网络后重试。",
      title: "3D Secure 2 测试页面",
      ask: "您的银行要求您确认这笔付款：",
      complete: "完成验证", fail: "验证失败", cancel: "取消",
    },
  };

  function language(locale) {
    const wanted = locale && locale !== "auto" ? locale : navigator.language || "en";
    return /^zh/i.test(wanted) ? "zh" : "en";
  }

  function encode(value, prefix, out) {
    if (value === undefined || value === null) return out;
    if (typeof value === "object") {
      Object.keys(value).forEach((key) => encode(value[key], prefix ? `${prefix}[${key}]` : key, out));
    } else {
      out.append(prefix, String(value));
    }
    return out;
  }

  // Form-encoded, no custom headers: a "simple" cross-origin request, as Stripe.js sends.
  async function call(method, path, data, texts) {
    const body = encode(data, "", new URLSearchParams());
    let url = new URL(path, base).href;
    const init = { method, credentials: "omit" };
    if (method === "GET") url += "?" + body.toString();
    else init.body = body;
    let response;
    try {
      response = await fetch(url, init);
    } catch (_error) {
      return { error: { type: "api_connection_error", message: texts.network } };
    }
    let answer = {};
    try {
      answer = await response.json();
    } catch (_error) {
      answer = {};
    }
    if (!response.ok) {
      return { error: answer.error || { type: "api_error", message: texts.network } };
    }
    return { intent: answer };
  }

  function intentId(clientSecret) {
    return String(clientSecret || "").split("_secret_")[0];
  }

  function money(intent) {
    const currency = String(intent.currency || "").toLowerCase();
    const zero = ZERO_DECIMAL.includes(currency);
    const major = zero ? intent.amount : (intent.amount / 100).toFixed(2);
    return `${major} ${currency.toUpperCase()}`;
  }

  function luhn(digits) {
    let sum = 0;
    for (let i = 0; i < digits.length; i += 1) {
      let d = Number(digits[digits.length - 1 - i]);
      if (i % 2 === 1) {
        d *= 2;
        if (d > 9) d -= 9;
      }
      sum += d;
    }
    return sum % 10 === 0;
  }

  function style(el, rules) {
    Object.assign(el.style, rules);
    return el;
  }

  function field(label, name, testid, attrs) {
    const wrap = style(document.createElement("label"), { display: "block", margin: "8px 0" });
    const text = style(document.createElement("span"), { display: "block", fontSize: "14px" });
    text.textContent = label;
    const input = document.createElement("input");
    input.name = name;
    input.dataset.testid = testid;
    Object.entries(attrs).forEach(([key, value]) => input.setAttribute(key, value));
    style(input, {
      width: "100%", boxSizing: "border-box", minHeight: "44px", fontSize: "16px",
      padding: "8px", border: "1px solid #ccc", borderRadius: "6px",
    });
    wrap.append(text, input);
    return { wrap, input };
  }

  class PaymentElement {
    constructor(elements, options) {
      this.elements = elements;
      this.options = options || {};
      this.handlers = {};
      this.root = null;
      this.inputs = {};
    }

    on(event, handler) {
      (this.handlers[event] = this.handlers[event] || []).push(handler);
      return this;
    }

    off(event, handler) {
      this.handlers[event] = (this.handlers[event] || []).filter((h) => h !== handler);
      return this;
    }

    emit(event, payload) {
      (this.handlers[event] || []).forEach((handler) => handler(payload));
    }

    mount(target) {
      const host = typeof target === "string" ? document.querySelector(target) : target;
      if (!host) throw new Error("IntegrationError: the Payment Element's container was not found");
      const texts = this.elements.texts;
      const root = style(document.createElement("div"), {
        border: "1px dashed #635bff", borderRadius: "8px", padding: "8px 12px", textAlign: "left",
      });
      root.dataset.testid = "sandbox-payment-element";
      const note = style(document.createElement("p"), { fontSize: "12px", color: "#555" });
      note.textContent = texts.sandbox;
      const number = field(texts.number, "number", "sandbox-card-number", {
        inputmode: "numeric", autocomplete: "cc-number", placeholder: "1234 1234 1234 1234",
      });
      const expiry = field(texts.expiry, "expiry", "sandbox-card-expiry", {
        inputmode: "numeric", autocomplete: "cc-exp", placeholder: "MM / YY",
      });
      const cvc = field(texts.cvc, "cvc", "sandbox-card-cvc", {
        inputmode: "numeric", autocomplete: "cc-csc", placeholder: "CVC",
      });
      const problem = style(document.createElement("p"), { color: "#df1b41", fontSize: "14px" });
      problem.setAttribute("role", "alert");
      problem.dataset.testid = "sandbox-element-error";
      problem.hidden = true;
      root.append(note, number.wrap, expiry.wrap, cvc.wrap, problem);
      this.inputs = { number: number.input, expiry: expiry.input, cvc: cvc.input };
      this.problem = problem;
      Object.values(this.inputs).forEach((input) => input.addEventListener("input", () => {
        problem.hidden = true;
        const error = this.check();
        this.emit("change", {
          elementType: "payment", empty: !this.inputs.number.value, complete: !error,
          collapsed: false, value: { type: "card" },
        });
      }));
      host.append(root);
      this.root = root;
      setTimeout(() => this.emit("ready", { elementType: "payment" }), 0);
      return this;
    }

    unmount() {
      if (this.root) this.root.remove();
      this.root = null;
    }

    destroy() {
      this.unmount();
      this.elements.payment = null;
    }

    focus() {
      if (this.inputs.number) this.inputs.number.focus();
    }

    card() {
      const digits = this.inputs.number.value.replace(/[\s-]/g, "");
      const [month, year] = this.inputs.expiry.value.split("/").map((part) => part.trim());
      return {
        number: digits,
        exp_month: month || "",
        exp_year: year && year.length === 2 ? `20${year}` : year || "",
        cvc: this.inputs.cvc.value.trim(),
      };
    }

    // What the real element checks in the browser before anything is sent.
    check() {
      if (!this.root) return { type: "validation_error", code: "incomplete_number" };
      const card = this.card();
      let code = "";
      if (!/^\d{12,19}$/.test(card.number)) code = "incomplete_number";
      else if (!luhn(card.number)) code = "invalid_number";
      else if (!/^\d{1,2}$/.test(card.exp_month) || !/^\d{4}$/.test(card.exp_year)) {
        code = "incomplete_expiry";
      } else if (Number(card.exp_month) < 1 || Number(card.exp_month) > 12) {
        code = "invalid_expiry_month";
      } else {
        const now = new Date();
        const year = Number(card.exp_year);
        const month = Number(card.exp_month);
        if (year < now.getFullYear() || (year === now.getFullYear() && month < now.getMonth() + 1)) {
          code = "invalid_expiry_year_past";
        } else if (!/^\d{3,4}$/.test(card.cvc)) {
          code = "incomplete_cvc";
        }
      }
      if (!code) return null;
      return { type: "validation_error", code, message: this.elements.texts[code] };
    }

    show(error) {
      if (!this.problem) return;
      this.problem.textContent = error.message;
      this.problem.hidden = false;
    }
  }

  class Elements {
    constructor(stripe, options) {
      this.stripe = stripe;
      this.clientSecret = (options || {}).clientSecret || "";
      this.texts = TEXTS[language((options || {}).locale || stripe.locale)];
      this.payment = null;
    }

    create(type, options) {
      if (type !== "payment") {
        throw new Error(`IntegrationError: the sandbox plays only the "payment" element, not "${type}"`);
      }
      if (!this.clientSecret) throw new Error("IntegrationError: elements() needs a clientSecret");
      this.payment = new PaymentElement(this, options);
      return this.payment;
    }

    getElement(type) {
      return type === "payment" ? this.payment : null;
    }

    update(options) {
      if (options && options.locale) this.texts = TEXTS[language(options.locale)];
    }

    async submit() {
      const error = this.payment ? this.payment.check() : null;
      if (error) this.payment.show(error);
      return error ? { error } : {};
    }
  }

  // The issuer's challenge, over the page: resolves "authenticated", "failed" or "canceled".
  function challenge(intent, texts) {
    return new Promise((resolve) => {
      const shade = style(document.createElement("div"), {
        position: "fixed", inset: "0", background: "rgba(0,0,0,.55)", zIndex: "10000",
        display: "flex", alignItems: "center", justifyContent: "center",
      });
      shade.dataset.testid = "sandbox-3ds-modal";
      shade.setAttribute("role", "dialog");
      shade.setAttribute("aria-modal", "true");
      shade.setAttribute("aria-label", texts.title);
      const panel = style(document.createElement("div"), {
        background: "#fff", width: "92%", maxWidth: "420px", padding: "20px", borderRadius: "10px",
        fontFamily: "system-ui, sans-serif",
      });
      const title = style(document.createElement("p"), { fontWeight: "bold" });
      title.textContent = `${texts.title} · sandbox`;
      const ask = document.createElement("p");
      ask.textContent = `${texts.ask} ${money(intent)}`;
      const done = (outcome) => {
        shade.remove();
        resolve(outcome);
      };
      const buttons = [
        ["authenticated", texts.complete, "sandbox-3ds-complete", "#635bff", "#fff"],
        ["failed", texts.fail, "sandbox-3ds-fail", "#f2f2f2", "#333"],
        ["canceled", texts.cancel, "sandbox-3ds-cancel", "#f2f2f2", "#333"],
      ].map(([outcome, label, testid, background, color]) => {
        const button = style(document.createElement("button"), {
          display: "block", width: "100%", minHeight: "44px", margin: "8px 0", fontSize: "16px",
          border: "0", borderRadius: "6px", cursor: "pointer", background, color,
        });
        button.type = "button";
        button.textContent = label;
        button.dataset.testid = testid;
        button.addEventListener("click", () => done(outcome));
        return button;
      });
      panel.append(title, ask, ...buttons);
      shade.append(panel);
      document.body.append(shade);
    });
  }

  function failure(intent) {
    const error = intent.last_payment_error || {};
    const answer = {
      type: error.type || "card_error",
      code: error.code,
      message: error.message,
      payment_intent: intent,
    };
    if (error.decline_code) answer.decline_code = error.decline_code;
    return answer;
  }

  function redirectTo(returnUrl, intent) {
    const url = new URL(returnUrl, window.location.href);
    url.searchParams.set("payment_intent", intent.id);
    url.searchParams.set("payment_intent_client_secret", intent.client_secret);
    url.searchParams.set("redirect_status", intent.status === "succeeded" ? "succeeded" : "failed");
    window.location.assign(url.href);
    return new Promise(() => {});  // the page is leaving, as with Stripe.js
  }

  class StripeStandIn {
    constructor(key, options) {
      if (!/^pk_/.test(String(key || ""))) {
        throw new Error("IntegrationError: Stripe() needs a publishable key (pk_…)");
      }
      this.key = key;
      this.locale = (options || {}).locale || "auto";
    }

    elements(options) {
      return new Elements(this, options);
    }

    async retrievePaymentIntent(clientSecret) {
      const texts = TEXTS[language(this.locale)];
      const answer = await call("GET", `v1/payment_intents/${intentId(clientSecret)}`, {
        key: this.key, client_secret: clientSecret,
      }, texts);
      return answer.error ? { error: answer.error } : { paymentIntent: answer.intent };
    }

    async confirmPayment(options) {
      const elements = (options || {}).elements;
      if (!(elements instanceof Elements) || !elements.payment) {
        throw new Error("IntegrationError: confirmPayment needs the elements with a mounted payment element");
      }
      const params = options.confirmParams || {};
      const ifRequired = options.redirect === "if_required";
      if (!ifRequired && !params.return_url) {
        throw new Error("IntegrationError: confirmPayment needs confirmParams.return_url");
      }
      const invalid = elements.payment.check();
      if (invalid) {
        elements.payment.show(invalid);
        return { error: invalid };
      }
      const texts = elements.texts;
      const clientSecret = elements.clientSecret;
      const confirmed = await call("POST", `v1/payment_intents/${intentId(clientSecret)}/confirm`, {
        key: this.key,
        client_secret: clientSecret,
        return_url: params.return_url,
        payment_method_data: { type: "card", card: elements.payment.card() },
        payment_method_options: params.payment_method_options,
      }, texts);
      if (confirmed.error) return { error: confirmed.error };
      let intent = confirmed.intent;
      if (intent.status === "requires_action" && intent.next_action
          && intent.next_action.type === "use_stripe_sdk") {
        const outcome = await challenge(intent, texts);
        const answered = await call("POST", "v1/3ds2/challenge_complete", {
          key: this.key, client_secret: clientSecret, payment_intent: intent.id, outcome,
        }, texts);
        if (answered.error) return { error: answered.error };
        intent = answered.intent;
      }
      if (intent.status === "requires_payment_method" && intent.last_payment_error) {
        return { error: failure(intent) };
      }
      if (!ifRequired && params.return_url) return redirectTo(params.return_url, intent);
      return { paymentIntent: intent };
    }
  }

  window.Stripe = function Stripe(key, options) {
    return new StripeStandIn(key, options);
  };
  window.Stripe.version = 3;
  window.Stripe.sandbox = true;
})();
