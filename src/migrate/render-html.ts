/**
 * The `--report FILE.html` page: one self-contained file (no external assets, no network)
 * with the verdict, the scenario, the round table, and two charts drawn as inline SVG by
 * the page's own script from the run's JSON embedded in the page: dirty pages per round
 * (written by the devices vs reported by the harvests) and harvest wall time per round,
 * stacked by device. When the charts are drawn the script sets
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
  var COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"];
  function el(name, attrs, parent, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function fmtPages(p) {
    var b = p * 4096, u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return (b >= 100 || i === 0 ? b.toFixed(0) : b.toFixed(1)) + " " + u[i];
  }
  function fmtMs(v) { return v < 10 ? v.toFixed(2) + " ms" : v.toFixed(1) + " ms"; }
  // A bar chart: series = [{name, color, values[]}], stacked or grouped, linear or log.
  function chart(host, title, labels, series, opts) {
    var W = 760, H = 300, L = 80, R = 16, T = 36, B = 52;
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
    if (maxV <= 0) maxV = 1;
    var log = opts.allowLog && minPos < Infinity && maxV / minPos > 100;
    var lo = log ? Math.pow(10, Math.floor(Math.log10(minPos))) : 0;
    var hi = log ? Math.pow(10, Math.ceil(Math.log10(maxV))) : maxV * 1.1;
    function y(v) {
      if (log) return T + (H - T - B) * (1 - (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)));
      return T + (H - T - B) * (1 - v / hi);
    }
    var ticks = [];
    if (log) for (var t = lo; t <= hi * 1.0001; t *= 10) ticks.push(t);
    else for (var k = 0; k <= 4; k++) ticks.push((hi * k) / 4);
    ticks.forEach(function (t) {
      el("line", { x1: L, x2: W - R, y1: y(t), y2: y(t), class: "grid" }, svg);
      el("text", { x: L - 6, y: y(t) + 4, class: "tick", "text-anchor": "end" }, svg, opts.fmt(t));
    });
    var slot = (W - L - R) / Math.max(n, 1), groups = opts.stacked ? 1 : series.length;
    var bw = Math.max(2, (slot * 0.7) / groups);
    var bars = 0;
    for (var j = 0; j < n; j++) {
      var x0 = L + j * slot + slot * 0.15, base = opts.stacked ? 0 : null;
      series.forEach(function (s, si) {
        var v = s.values[j] || 0;
        var x = opts.stacked ? x0 : x0 + si * bw;
        var top, bottom;
        if (opts.stacked) { bottom = y(base); top = y(base + v); base += v; }
        else { bottom = y(log ? lo : 0); top = y(v); }
        var r = el("rect", { x: x, y: Math.min(top, bottom), width: opts.stacked ? bw * groups : bw, height: Math.max(0, Math.abs(bottom - top)), fill: s.color, class: "bar" }, svg);
        el("title", {}, r, labels[j] + " - " + s.name + ": " + opts.fmt(v));
        bars++;
      });
      el("text", { x: L + j * slot + slot / 2, y: H - B + 16, class: "tick", "text-anchor": "middle" }, svg, labels[j]);
    }
    el("text", { x: L + (W - L - R) / 2, y: H - 8, class: "axis", "text-anchor": "middle" }, svg, "round" + (log ? "   (log scale)" : ""));
    var lx = L;
    series.forEach(function (s) {
      el("rect", { x: lx, y: H - 30, width: 10, height: 10, fill: s.color }, svg);
      el("text", { x: lx + 14, y: H - 21, class: "legend" }, svg, s.name);
      lx += 24 + s.name.length * 7;
    });
    svg.setAttribute("data-bars", String(bars));
    return svg;
  }
  try {
    var rounds = data.rounds;
    var labels = rounds.map(function (r) { return r.phase === "stop-and-copy" ? r.round + " (stop)" : String(r.round); });
    chart(document.getElementById("chart-dirty"), "Dirty pages per round (4 KiB pages, as bytes)", labels, [
      { name: "written by devices", color: COLORS[2], values: rounds.map(function (r) { return r.writtenPages; }) },
      { name: "reported by harvests", color: COLORS[3], values: rounds.map(function (r) { return r.reportedPages; }) }
    ], { stacked: false, allowLog: true, fmt: fmtPages });
    var devices = data.devices;
    chart(document.getElementById("chart-harvest"), "Harvest wall time per round (measured)", labels, devices.map(function (d, i) {
      return { name: d, color: COLORS[i % COLORS.length], values: rounds.map(function (r) {
        var x = r.devices.filter(function (e) { return e.device === d; })[0];
        return x ? x.harvestMs : 0;
      }) };
    }), { stacked: true, allowLog: false, fmt: fmtMs });
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
svg .title { font-weight: 600; font-size: 14px; } svg .tick, svg .legend, svg .axis { font-size: 11px; fill: #444; }
svg .grid { stroke: #e5e5e5; }
`;

/** The whole report page. */
export function renderHtmlReport(result: MigrationResult): string {
  const data = {
    rounds: result.rounds,
    devices: result.scenario.devices.map((d) => d.name),
    converged: result.converged,
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
