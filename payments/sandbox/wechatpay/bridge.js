// Sandbox stand-in for the WeixinJSBridge that the WeChat app injects into its browser.
// Only getBrandWCPayRequest is played: a confirm sheet over the page; "confirm" asks the
// simulator to verify the parameters (paySign included) and settle the order, "cancel"
// answers get_brand_wcpay_request:cancel, "fail" a simulated failure (:fail, nothing paid).
(() => {
  "use strict";
  if (window.WeixinJSBridge || !/MicroMessenger/.test(navigator.userAgent)) return;
  const script = document.currentScript;
  const payUrl = new URL("pay", script ? script.src : window.location.href).href;
  const PREFIX = "get_brand_wcpay_request:";

  function button(label, testid, primary) {
    const el = document.createElement("button");
    el.type = "button";
    el.textContent = label;
    el.dataset.testid = testid;
    Object.assign(el.style, {
      display: "block", width: "100%", minHeight: "44px", margin: "8px 0", fontSize: "16px",
      border: "0", borderRadius: "6px", cursor: "pointer",
      background: primary ? "#07c160" : "#f2f2f2", color: primary ? "#fff" : "#333",
    });
    return el;
  }

  function sheet(params, done) {
    const shade = document.createElement("div");
    shade.dataset.testid = "sandbox-wxpay-sheet";
    shade.setAttribute("role", "dialog");
    shade.setAttribute("aria-label", "WeChat Pay (sandbox)");
    Object.assign(shade.style, {
      position: "fixed", inset: "0", background: "rgba(0,0,0,.5)", zIndex: "10000",
      display: "flex", alignItems: "flex-end", justifyContent: "center",
    });
    const panel = document.createElement("div");
    Object.assign(panel.style, {
      background: "#fff", width: "100%", maxWidth: "420px", padding: "16px",
      borderRadius: "12px 12px 0 0", fontFamily: "system-ui, sans-serif",
    });
    const title = document.createElement("p");
    title.textContent = "微信支付 WeChat Pay · sandbox";
    title.style.fontWeight = "bold";
    const what = document.createElement("p");
    what.textContent = params && params.package ? params.package : "";
    what.style.fontSize = "12px";
    what.style.wordBreak = "break-all";
    const confirm = button("确认支付 Confirm", "sandbox-wxpay-confirm", true);
    const fail = button("模拟失败 Simulate a failure", "sandbox-wxpay-fail", false);
    const cancel = button("取消 Cancel", "sandbox-wxpay-cancel", false);
    panel.append(title, what, confirm, fail, cancel);
    shade.append(panel);
    document.body.append(shade);
    const finish = (answer) => { shade.remove(); done(answer); };
    const settle = (ok) => {
      confirm.disabled = fail.disabled = cancel.disabled = true;
      fetch(payUrl, {
        method: "POST",
        // text/plain: the simulators may be served on another origin (make serve), and a
        // plain post needs no CORS preflight; the simulator allows the shop's origin to read.
        headers: { "Content-Type": "text/plain;charset=UTF-8" },
        body: JSON.stringify({ request: params, confirm: ok }),
        credentials: "omit",
      })
        .then((r) => r.json())
        .then(finish)
        .catch(() => finish({ err_msg: PREFIX + "fail", err_desc: "network" }));
    };
    confirm.addEventListener("click", () => settle(true));
    fail.addEventListener("click", () => settle(false));
    cancel.addEventListener("click", () => finish({ err_msg: PREFIX + "cancel" }));
  }

  window.WeixinJSBridge = {
    invoke(name, params, callback) {
      const done = typeof callback === "function" ? callback : () => {};
      if (name !== "getBrandWCPayRequest") {
        done({ err_msg: name + ":fail", err_desc: "not simulated" });
        return;
      }
      sheet(params || {}, done);
    },
  };
  const ready = () => document.dispatchEvent(new Event("WeixinJSBridgeReady"));
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready);
  else ready();
})();
