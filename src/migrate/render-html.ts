/**
 * The `--report FILE.html` page: one self-contained file (no external assets, no network)
 * with the verdict, the scenario, the round table, and three charts drawn as inline SVG
 * by the page's own script from the run's JSON embedded in the page: dirty pages per round
 * (written by the devices vs reported by the harvests), the remainder after each round as
 * time to send at the link rate against the downtime limit (the convergence criterion), and
 * harvest wall time per round, stacked by device. Axes tick at 1, 2 or 5 x 10^k of the
 * unit shown (1, 10, 100 of each unit on a log axis); colours are Okabe-Ito's. When the charts are drawn the script sets
 * `<html data-charts="rendered">` (tests look for it).
 */
import type { MigrationResult } from "./engine";
import { renderHeader, renderTable, renderVerdict } from "./render-text";

const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** JSON that is safe inside a <script> element (no `</script>`, no `<!--`). */
function scriptJson(v: unknown): string {
  return JSON.stringify(v).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

/** The chart-drawing script; plain ES2017, runs in any current browser. */
const CHART_SCRIPT = String.raw`
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var data = JSON.parse(document.getElementById("run-data").textContent);
  // Okabe-Ito: told apart with every common colour-vision deficiency, and no red-means-error.
  var COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
  var PAGE = 4096;
  var BYTES = [[1, "B"], [1024, "KiB"], [1048576, "MiB"], [1073741824, "GiB"], [1099511627776, "TiB"]];
  var SECONDS = [[1e-6, "\u00b5s"], [1e-3, "ms"], [1, "s"]];
  var MILLIS = [[1, "ms"], [1000, "s"]];
  function el(name, attrs, parent, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function num(v) { return String(Number(v.toPrecision(12))); }
  // The largest unit the value reaches (the first one for 0).
  function unitOf(units, v) {
    var u = units[0];
    units.forEach(function (x) { if (v >= x[0]) u = x; });
    return u;
  }
  function label(units, v) { var u = unitOf(units, v); return num(v / u[0]) + " " + u[1]; }
  // Linear ticks: 0 and multiples of a 1, 2 or 5 x 10^k step in the unit of the largest value.
  function linearScale(units, max) {
    var u = unitOf(units, max > 0 ? max : units[0][0]);
    var m = max > 0 ? max / u[0] : 1;
    var raw = m / 4, p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
    var step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
    var n = Math.max(1, Math.ceil(m / step - 1e-9)), ticks = [];
    for (var k = 0; k <= n; k++) ticks.push({ v: k * step * u[0], text: k === 0 ? "0" : num(k * step) + " " + u[1] });
    return { log: false, lo: 0, hi: n * step * u[0], ticks: ticks };
  }
  // Log ticks: 1, 10 and 100 of each unit (1 KiB, 10 KiB, 100 KiB, 1 MiB, ...).
  function logScale(units, minPos, max) {
    var c = [];
    units.forEach(function (u, i) {
      var top = i === units.length - 1 ? 1e6 : 100;
      for (var m = 1; m <= top; m *= 10) c.push({ v: m * u[0], text: m + " " + u[1] });
    });
    var lo = 0, hi = c.length - 1;
    for (var i = 0; i < c.length; i++) { if (c[i].v <= minPos) lo = i; }
    for (var j = c.length - 1; j >= 0; j--) { if (c[j].v >= max) hi = j; }
    return { log: true, lo: c[lo].v, hi: c[hi].v, ticks: c.slice(lo, hi + 1) };
  }
  // A bar chart: series = [{name, color, values[]}], stacked or grouped; linear or log axis
  // in opts.units; opts.limit draws a horizontal line at that value.
  function chart(host, title, yTitle, labels, series, opts) {
    var W = 760, H = 320, L = 96, R = 16, T = 36, B = 70;
    var svg = el("svg", { class: "chart", viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", "aria-label": title }, host);
    el("text", { x: L, y: 20, class: "title" }, svg, title);
    var n = labels.length, maxV = 0, minPos = Infinity;
    for (var i = 0; i < n; i++) {
      var stack = 0;
      series.forEach(function (s) {
        var v = s.values[i] || 0;
        stack = opts.stacked ? stack + v : Math.max(stack, v);
        if (v > 0) minPos = Math.min(minPos, v);
      });
      maxV = Math.max(maxV, stack);
    }
    if (opts.limit !== undefined) { maxV = Math.max(maxV, opts.limit); minPos = Math.min(minPos, opts.limit); }
    var log = opts.allowLog && minPos < Infinity && maxV / minPos > 100;
    var sc = log ? logScale(opts.units, minPos, maxV) : linearScale(opts.units, maxV);
    function y(v) {
      if (sc.log) return T + (H - T - B) * (1 - (Math.log10(Math.max(v, sc.lo)) - Math.log10(sc.lo)) / (Math.log10(sc.hi) - Math.log10(sc.lo)));
      return T + (H - T - B) * (1 - v / sc.hi);
    }
    sc.ticks.forEach(function (t) {
      el("line", { x1: L, x2: W - R, y1: y(t.v), y2: y(t.v), class: "grid" }, svg);
      el("text", { x: L - 6, y: y(t.v) + 4, class: "tick y", "text-anchor": "end" }, svg, t.text);
    });
    var slot = (W - L - R) / Math.max(n, 1), groups = opts.stacked ? 1 : series.length;
    var bw = Math.max(2, (slot * 0.7) / groups);
    // Show every k-th round label so that none overlaps its neighbour (11px text is at
    // most ~6.6px a character), and always the last one (the stop-and-copy round).
    var widest = Math.max.apply(null, labels.map(function (t) { return t.length * 6.6 + 8; }));
    var every = Math.max(1, Math.ceil(widest / slot));
    var bars = 0;
    for (var j = 0; j < n; j++) {
      var x0 = L + j * slot + slot * 0.15, base = 0;
      series.forEach(function (s, si) {
        var v = s.values[j] || 0;
        var x = opts.stacked ? x0 : x0 + si * bw;
        var top, bottom;
        if (opts.stacked) { bottom = y(base); top = y(base + v); base += v; }
        else { bottom = y(sc.log ? sc.lo : 0); top = y(v); }
        var r = el("rect", { x: x, y: Math.min(top, bottom), width: opts.stacked ? bw * groups : bw, height: Math.max(0, Math.abs(bottom - top)), fill: s.color, class: "bar" }, svg);
        el("title", {}, r, labels[j] + " - " + s.name + ": " + label(opts.units, v));
        bars++;
      });
      var last = j === n - 1;
      if ((j % every === 0 && (last || n - 1 - j >= every)) || last)
        el("text", { x: L + j * slot + slot / 2, y: H - B + 16, class: "tick x", "text-anchor": "middle" }, svg, labels[j]);
    }
    if (opts.limit !== undefined) {
      el("line", { x1: L, x2: W - R, y1: y(opts.limit), y2: y(opts.limit), class: "limit" }, svg);
      el("text", { x: L + 6, y: y(opts.limit) - 5, class: "limit-label" }, svg, opts.limitName + " " + label(opts.units, opts.limit));
    }
    el("text", { x: L + (W - L - R) / 2, y: H - B + 36, class: "axis-title x", "text-anchor": "middle" }, svg, "round" + (sc.log ? "   (log scale)" : ""));
    el("text", { x: 16, y: T + (H - T - B) / 2, class: "axis-title y", "text-anchor": "middle", transform: "rotate(-90 16 " + (T + (H - T - B) / 2) + ")" }, svg, yTitle);
    var lx = L;
    series.forEach(function (s) {
      el("rect", { x: lx, y: H - 22, width: 10, height: 10, fill: s.color, class: "key" }, svg);
      el("text", { x: lx + 14, y: H - 13, class: "legend" }, svg, s.name);
      lx += 24 + s.name.length * 7;
    });
    svg.setAttribute("data-bars", String(bars));
    svg.setAttribute("data-scale", sc.log ? "log" : "linear");
    return svg;
  }
  try {
    var rounds = data.rounds;
    var labels = rounds.map(function (r) { return r.phase === "stop-and-copy" ? r.round + " (stop)" : String(r.round); });
    chart(document.getElementById("chart-dirty"), "Dirty pages per round (4 KiB pages, as bytes)", "dirty data", labels, [
      { name: "written by devices", color: COLORS[0], values: rounds.map(function (r) { return r.writtenPages * PAGE; }) },
      { name: "reported by harvests", color: COLORS[1], values: rounds.map(function (r) { return r.reportedPages * PAGE; }) }
    ], { stacked: false, allowLog: true, units: BYTES });
    // What pre-copy compares with the downtime limit after each round: the time to send the
    // reported remainder at the link rate; for the stop-and-copy round, the downtime itself.
    chart(document.getElementById("chart-remainder"), "Remainder vs the downtime limit (pre-copy stops when a remainder fits)", "time to send at link rate", labels, [
      { name: "remainder after the round (stop: the downtime)", color: COLORS[0], values: rounds.map(function (r) {
        return r.phase === "stop-and-copy" ? r.transferSeconds : (r.reportedPages * PAGE) / data.bandwidth;
      }) }
    ], { stacked: false, allowLog: true, units: SECONDS, limit: data.downtimeLimit, limitName: "downtime limit" });
    var devices = data.devices;
    chart(document.getElementById("chart-harvest"), "Harvest wall time per round (measured)", "harvest wall time", labels, devices.map(function (d, i) {
      return { name: d, color: COLORS[i % COLORS.length], values: rounds.map(function (r) {
        var x = r.devices.filter(function (e) { return e.device === d; })[0];
        return x ? x.harvestMs : 0;
      }) };
    }), { stacked: true, allowLog: false, units: MILLIS });
    document.documentElement.setAttribute("data-charts", "rendered");
  } catch (e) {
    document.getElementById("errors").textContent = "chart error: " + e;
    document.documentElement.setAttribute("data-charts", "error");
  }
})();
`;

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 980px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
.ok { color: #1a7f37; } .bad { color: #b42318; }
pre { background: #f6f8fa; padding: 12px; overflow-x: auto; font-size: 12.5px; }
pre.wrap { white-space: pre-wrap; }
svg.chart { display: block; margin: 8px 0 20px; background: #fff; border: 1px solid #ddd; }
svg .title { font-weight: 600; font-size: 14px; } svg .tick, svg .legend { font-size: 11px; fill: #444; }
svg .grid { stroke: #e5e5e5; }
svg .axis-title { font-size: 12px; fill: #222; }
svg .limit { stroke: #000; stroke-width: 1.5; stroke-dasharray: 6 4; } svg .limit-label { font-size: 11px; fill: #000; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
`;

/** The whole report page. */
export function renderHtmlReport(result: MigrationResult): string {
  const data = {
    rounds: result.rounds,
    devices: result.scenario.devices.map((d) => d.name),
    converged: result.converged,
    bandwidth: result.scenario.bandwidth,
    downtimeLimit: result.scenario.downtimeLimit,
    // Devices with state of their own (mlx5): the verdict text and the table show it too.
    deviceState: result.deviceState ?? null,
  };
  const verdictClass = result.converged ? "ok" : "bad";
  const verdict = result.converged ? "Converged" : "Did not converge";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>vfio-sim migrate: ${esc(verdict)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>vfio-sim migrate: <span class="${verdictClass}">${esc(verdict)}</span></h1>
<pre class="wrap">${esc(renderVerdict(result))}</pre>
<h2>Charts</h2>
<div id="chart-dirty"></div>
<div id="chart-remainder"></div>
<div id="chart-harvest"></div>
<p id="errors" class="bad"></p>
<noscript><p class="bad">The charts are drawn by this page's inline script; enable JavaScript to see them.</p></noscript>
<h2>Scenario</h2>
<pre>${esc(renderHeader(result.scenario, result))}</pre>
<h2>Rounds</h2>
<pre>${esc(renderTable(result))}</pre>
<script type="application/json" id="run-data">${scriptJson(data)}</script>
<script>${CHART_SCRIPT}</script>
</body>
</html>
`;
}
