// Time-series charts for staff pages. Series are computed on the server and embedded as
// JSON (<script type="application/json" id="ID-data">, Django's json_script); this draws
// each into the element with id ID using uPlot.
// Shape: {"days": ["2026-11-04", ...], "series": [{"label": "...", "values": [...],
// "unit": "¥" | "%" | ""}]}. Without JavaScript the page's tables carry the same numbers.
(function () {
  "use strict";
  const COLOURS = ["#1f6feb", "#d9480f", "#2f9e44", "#9c36b5", "#e67700"];

  function format(unit, v) {
    if (v == null) return "—";
    if (unit === "¥") return "¥" + v.toLocaleString("zh-CN", {minimumFractionDigits: 2, maximumFractionDigits: 2});
    if (unit === "%") return v.toFixed(1) + "%";
    return String(v);
  }

  function draw(holder, spec) {
    const xs = spec.days.map((d) => Date.parse(d + "T00:00:00+08:00") / 1000);
    const unit = spec.series[0].unit || "";
    const opts = {
      width: Math.max(280, holder.clientWidth || 600),
      height: spec.height || 180,
      series: [{label: spec.xLabel || "",
                value: (u, ts) => ts == null ? "—" : new Date(ts * 1000 + 8 * 3600e3).toISOString().slice(0, 10)}].concat(
        spec.series.map((s, i) => ({
          label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2,
          points: {show: spec.days.length < 40},
          value: (u, v) => format(s.unit || "", v),
        }))
      ),
      axes: [{}, {values: (u, vals) => vals.map((v) => format(unit, v)), size: 84}],
      scales: unit === "%" ? {y: {range: [0, 100]}} : {},
    };
    const data = [xs].concat(spec.series.map((s) => s.values));
    holder.textContent = "";
    return new uPlot(opts, data, holder);
  }

  function init() {
    if (typeof uPlot === "undefined") return;
    document.querySelectorAll('script[type="application/json"][id$="-data"]').forEach((node) => {
      const holder = document.getElementById(node.id.slice(0, -"-data".length));
      if (!holder) return;
      let spec;
      try { spec = JSON.parse(node.textContent); } catch (e) { return; }
      const chart = draw(holder, spec);
      holder.dataset.drawn = "true";
      window.addEventListener("resize", () => chart.setSize({width: holder.clientWidth, height: spec.height || 180}));
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
