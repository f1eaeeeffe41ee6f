// Sandbox stand-in for PayPal's JS SDK (https://www.paypal.com/sdk/js). The client API the
// checkout page uses is the real one: paypal.Buttons({createOrder, onApprove, onCancel,
// onError}).render(container). A press of the button opens the approval window at once (as
// PayPal's popup opens), calls createOrder for the order id, shows that order, and the
// tester approves, declines (the funding source then fails at capture) or cancels; onApprove
// gets {orderID, payerID} as PayPal passes them.
(() => {
  "use strict";
  if (window.paypal && window.paypal.Buttons) return;
  const script = document.currentScript;
  const source = new URL(script ? script.src : window.location.href);
  const clientId = source.searchParams.get("client-id") || "";
  const api = (path) => new URL(path, source).href;

  function element(tag, text, style) {
    const el = document.createElement(tag);
    if (text) el.textContent = text;
    Object.assign(el.style, style || {});
    return el;
  }

  function button(label, testid, primary) {
    const el = element("button", label, {
      display: "block", width: "100%", minHeight: "44px", margin: "8px 0", fontSize: "16px",
      border: "0", borderRadius: "22px", cursor: "pointer",
      background: primary ? "#ffc439" : "#eceff1", color: "#111",
    });
    el.type = "button";
    el.dataset.testid = testid;
    return el;
  }

  function approvalWindow() {
    const shade = element("div", "", {
      position: "fixed", inset: "0", background: "rgba(0,0,0,.55)", zIndex: "10000",
      display: "flex", alignItems: "center", justifyContent: "center",
    });
    shade.dataset.testid = "sandbox-paypal-window";
    shade.setAttribute("role", "dialog");
    shade.setAttribute("aria-modal", "true");
    shade.setAttribute("aria-label", "PayPal (sandbox)");
    const panel = element("div", "", {
      background: "#fff", width: "100%", maxWidth: "400px", padding: "20px", margin: "12px",
      borderRadius: "12px", fontFamily: "system-ui, sans-serif", boxSizing: "border-box",
    });
    const title = element("p", "PayPal · sandbox", { fontWeight: "bold", fontSize: "18px" });
    const what = element("p", "…", { wordBreak: "break-all" });
    what.dataset.testid = "sandbox-paypal-order";
    panel.append(title, what);
    shade.append(panel);
    document.body.append(shade);
    return { shade, panel, what, close: () => shade.remove() };
  }

  function getOrder(orderID) {
    const url = api(`orders/${encodeURIComponent(orderID)}?client-id=${encodeURIComponent(clientId)}`);
    return fetch(url, { credentials: "omit" }).then((r) => (r.ok ? r.json() : Promise.reject(
      new Error(`order ${orderID}: HTTP ${r.status}`))));
  }

  function decide(orderID, decision, reason) {
    return fetch(api(`orders/${encodeURIComponent(orderID)}/approve`), {
      method: "POST",
      credentials: "omit",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ client_id: clientId, decision, reason }),
    }).then((r) => r.json().then((answer) => (r.ok ? answer : Promise.reject(
      new Error(answer.message || `HTTP ${r.status}`)))));
  }

  function Buttons(options) {
    const opts = options || {};
    const fail = (error) => {
      if (typeof opts.onError === "function") opts.onError(error);
      else console.error(error);  // eslint-disable-line no-console
    };
    let host = null;

    function start() {
      const win = approvalWindow();
      const actions = { restart: () => start(), order: {} };
      Promise.resolve()
        .then(() => (typeof opts.createOrder === "function"
          ? opts.createOrder({ paymentSource: "paypal" }, actions)
          : Promise.reject(new Error("createOrder is required"))))
        .then((orderID) => {
          if (!orderID) throw new Error("createOrder returned no order id");
          return getOrder(orderID).then((order) => ({ orderID, order }));
        })
        .then(({ orderID, order }) => {
          win.what.textContent = `${order.description || orderID} — ${order.amount} ${order.currency}`;
          const approve = button("Pay now 批准付款", "sandbox-approve", true);
          const decline = button("Funding source declined 付款方式被拒", "sandbox-decline", false);
          const cancel = button("Cancel and return 取消", "sandbox-cancel", false);
          win.panel.append(approve, decline, cancel);
          const choose = (decision) => {
            approve.disabled = decline.disabled = cancel.disabled = true;
            decide(orderID, decision, decision === "decline" ? "insufficient_funds" : "")
              .then((answer) => {
                win.close();
                const data = {
                  orderID, payerID: answer.payerID, paymentID: null,
                  facilitatorAccessToken: "", paymentSource: "paypal",
                };
                return Promise.resolve(typeof opts.onApprove === "function"
                  ? opts.onApprove(data, actions) : null);
              })
              .catch((error) => { win.close(); fail(error); });
          };
          approve.addEventListener("click", () => choose("approve"));
          decline.addEventListener("click", () => choose("decline"));
          cancel.addEventListener("click", () => {
            win.close();
            if (typeof opts.onCancel === "function") opts.onCancel({ orderID });
          });
        })
        .catch((error) => { win.close(); fail(error); });
    }

    return {
      isEligible: () => true,
      render(container) {
        host = typeof container === "string" ? document.querySelector(container) : container;
        if (!host) return Promise.reject(new Error(`container ${container} not found`));
        const el = button("PayPal", "paypal-button", true);
        el.style.fontWeight = "bold";
        el.style.fontStyle = "italic";
        el.setAttribute("aria-label", "PayPal");
        el.addEventListener("click", start);
        host.replaceChildren(el);
        if (typeof opts.onInit === "function") opts.onInit({}, {});
        return Promise.resolve();
      },
      close() {
        if (host) host.replaceChildren();
        return Promise.resolve();
      },
    };
  }

  window.paypal = { Buttons, version: "sandbox" };
})();
