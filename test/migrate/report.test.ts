/**
 * The --report page, opened in headless Chromium (Debian's `chromium` package): the page's
 * own script must draw the three charts, with ticks at nice values, axis titles,
 * colour-blind-safe colours, the downtime limit, and round labels that do not overlap. Skips only when Chromium is absent outside CI; under
 * CI=true a missing Chromium fails.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { CliIo } from "../../src/cli/command";
import { runMigrateCommand } from "../../src/cli/commands/migrate";
import { browserTestsRun } from "../helpers/chromium";

const { chromium, run: browserRuns } = browserTestsRun("headless-Chromium report test");
const withBrowser = browserRuns ? test : test.skip;

const io = (): CliIo & { text: string } => {
  const o = { text: "", isTTY: false, out: (s: string) => void (o.text += s), err: (s: string) => void (o.text += s) };
  return o;
};

describe("--report FILE.html", () => {
  const dir = mkdtempSync(join(tmpdir(), "vfio-sim-report-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("is one self-contained file with the run embedded", () => {
    const file = join(dir, "static.html");
    expect(runMigrateCommand(["--guest", "8G", "--report", file], io())).toBe(0);
    const html = readFileSync(file, "utf8");
    expect(html).not.toMatch(/<link|\ssrc=|url\(|@import/i);
    expect(html.replace(/http:\/\/www\.w3\.org\/2000\/svg/g, "")).not.toMatch(/https?:\/\//);
    expect(html).toContain('id="run-data"');
    expect(html).toMatch(/No-lost-page check: OK/);
  });

  /** The page after its script ran in headless Chromium: the DOM as the browser has it. */
  function renderInChromium(file: string): string {
    if (!chromium) throw new Error("CI=true but no chromium on PATH: .ci/run must install Debian's chromium package");
    const profile = mkdtempSync(join(dir, "profile-"));
    const r = spawnSync(
      chromium,
      [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        `--user-data-dir=${profile}`,
        "--virtual-time-budget=5000",
        "--dump-dom",
        `file://${file}`,
      ],
      { encoding: "utf8", timeout: 90_000 },
    );
    expect(r.error).toBeUndefined();
    const dom = r.stdout;
    expect(dom).toMatch(/<html[^>]*data-charts="rendered"/);
    expect(dom).toMatch(/<p id="errors" class="bad"><\/p>/);
    return dom;
  }

  /** Each chart's SVG, its bar count, scale, tick labels and axis titles. */
  function charts(dom: string) {
    return [...dom.matchAll(/<svg class="chart"[\s\S]*?<\/svg>/g)].map(([svg]) => ({
      svg,
      title: /<text[^>]*class="title"[^>]*>([^<]*)</.exec(svg)?.[1] ?? "",
      bars: Number(/data-bars="(\d+)"/.exec(svg)?.[1]),
      scale: /data-scale="(\w+)"/.exec(svg)?.[1],
      yTicks: [...svg.matchAll(/class="tick y"[^>]*>([^<]*)</g)].map((m) => m[1]),
      xTicks: [...svg.matchAll(/<text x="([\d.]+)"[^>]*class="tick x"[^>]*>([^<]*)</g)].map((m) => ({ x: Number(m[1]), text: m[2] })),
      xTitle: /class="axis-title x"[^>]*>([^<]*)</.exec(svg)?.[1],
      yTitle: /class="axis-title y"[^>]*>([^<]*)</.exec(svg)?.[1],
      fills: new Set([...svg.matchAll(/<rect [^>]*fill="(#[0-9A-Fa-f]{6})"[^>]*class="bar"/g)].map((m) => m[1].toUpperCase())),
    }));
  }

  /**
   * Tick labels at nice values: on a linear axis 0 and the multiples of one step that is
   * 1, 2 or 5 x 10^k in one unit; on a log axis 1, 10, 100... of a unit.
   */
  function expectNiceTicks(scale: string | undefined, ticks: string[]): void {
    expect(ticks.length).toBeGreaterThanOrEqual(2);
    const parsed = ticks.map((t) => /^(\d+(?:\.\d+)?)(?: (\S+))?$/.exec(t)).map((m) => ({ n: Number(m?.[1]), unit: m?.[2] }));
    for (const p of parsed) expect(Number.isFinite(p.n)).toBe(true);
    if (scale === "log") {
      for (const p of parsed) expect(Math.log10(p.n) % 1).toBe(0);
      return;
    }
    expect(scale).toBe("linear");
    expect(ticks[0]).toBe("0");
    const units = new Set(parsed.slice(1).map((p) => p.unit));
    expect(units.size).toBe(1);
    const step = parsed[1].n;
    const mantissa = Number((step / 10 ** Math.floor(Math.log10(step))).toPrecision(6));
    expect([1, 2, 5]).toContain(mantissa);
    parsed.forEach((p, k) => expect(p.n).toBeCloseTo(k * step, 9));
  }

  withBrowser("renders the three charts in headless Chromium: nice ticks, axis titles, Okabe-Ito colours, the downtime limit", () => {
    const file = join(dir, "report.html");
    const out = io();
    expect(runMigrateCommand(["--guest", "8G", "--scenario", "all-kinds", "--report", file], out)).toBe(0);
    const dom = renderInChromium(file);
    const c = charts(dom);
    expect(c.map((x) => x.title)).toEqual([
      "Dirty pages per round (4 KiB pages, as bytes)",
      "Remainder vs the downtime limit (pre-copy stops when a remainder fits)",
      "Harvest wall time per round (measured)",
    ]);
    // The run's own numbers decide how many bars each chart must have.
    const rounds = Number(/<pre>[\s\S]*?\n\s+(\d+)\s+stop-and-copy/.exec(dom)?.[1]);
    expect(rounds).toBeGreaterThan(1);
    expect(c.map((x) => x.bars)).toEqual([rounds * 2, rounds, rounds * 4]); // written vs reported; one remainder; four devices stacked
    expect((dom.match(/<rect [^>]*class="bar"/g) ?? []).length).toBe(rounds * 7);
    for (const x of c) {
      expectNiceTicks(x.scale, x.yTicks);
      expect(x.xTitle).toMatch(/^round/);
      expect(x.yTitle).toBeTruthy();
      expect(x.xTicks.map((t) => t.text)).toEqual([...Array.from({ length: rounds - 1 }, (_, i) => String(i + 1)), `${rounds} (stop)`]);
    }
    // Written vs reported: Okabe-Ito blue and orange, not the red and green of an error.
    expect([...c[0].fills].sort()).toEqual(["#0072B2", "#E69F00"]);
    for (const x of c) for (const f of x.fills) expect(["#D62728", "#2CA02C", "#FF0000", "#00FF00"]).not.toContain(f);
    // The convergence criterion: a limit line, labelled with the scenario's limit.
    expect(c[1].svg).toMatch(/<line [^>]*class="limit"/);
    expect(c[1].svg).toMatch(/class="limit-label"[^>]*>downtime limit 300 ms</);
  });

  withBrowser("thins the round labels of a long run so that they do not overlap", () => {
    const file = join(dir, "long.html");
    expect(runMigrateCommand(["--guest", "1G", "--scenario", "plain-type1", "--stall-rounds", "0", "--max-rounds", "20", "--report", file], io())).toBe(0);
    const c = charts(renderInChromium(file));
    expect(c.length).toBe(3);
    for (const x of c) {
      expect(x.bars).toBeGreaterThanOrEqual(21);
      const shown = x.xTicks;
      expect(shown.length).toBeLessThan(21);
      expect(shown[0].text).toBe("1");
      expect(shown[shown.length - 1].text).toBe("21 (stop)");
      // 11px labels: at most ~6.6px a character, so neighbours need half of each apart.
      for (let i = 1; i < shown.length; i++) expect(shown[i].x - shown[i - 1].x).toBeGreaterThanOrEqual((shown[i].text.length + shown[i - 1].text.length) * 3.3);
      expectNiceTicks(x.scale, x.yTicks);
    }
  });
});
